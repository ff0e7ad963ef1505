"""Provider types by name, for configs: ``providers: [piper, {type: flite, voice: slt}]``.

A provider class takes its params model (``Params``, pydantic) and a ``name`` keyword (the
name its circuit breaker goes by; the type name unless the spec says ``name:``). Classes are
named by import path and imported only when a config uses them, so that a deployment never
imports a model runtime it does not use.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ValidationError

Kind = Literal["stt", "llm", "tts"]

PROVIDERS: Mapping[Kind, Mapping[str, str]] = {
    "stt": {
        "whisper": "callweaver.services.whisper_stt:WhisperSTT",
        "azure": "callweaver.services.azure_stt:AzureSTT",
    },
    "llm": {
        "openai": "callweaver.services.openai_llm:OpenAILLM",
        "answers": "callweaver.services.answers:AnswersLLM",
    },
    "tts": {
        "piper": "callweaver.services.local_tts:PiperTTS",
        "flite": "callweaver.services.local_tts:FliteTTS",
        "espeak": "callweaver.services.local_tts:EspeakTTS",
        "azure": "callweaver.services.azure_tts:AzureTTS",
        "google": "callweaver.services.google_tts:GoogleTTS",
        "elevenlabs": "callweaver.services.elevenlabs_tts:ElevenLabsTTS",
    },
}


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One provider of a stage, validated: its class, params and breaker name."""

    kind: Kind
    type_name: str
    name: str
    cls: Any
    params: Any

    def build(self) -> Any:
        return self.cls(self.params, name=self.name)


def provider_class(kind: Kind, type_name: str) -> type[Any]:
    path = PROVIDERS[kind].get(type_name)
    if path is None:
        known = ", ".join(sorted(PROVIDERS[kind]))
        raise ValueError(f"unknown {kind} provider {type_name!r} (known: {known})")
    module, _, attr = path.partition(":")
    cls: type[Any] = getattr(importlib.import_module(module), attr)
    return cls


def parse_spec(kind: Kind, raw: object) -> ProviderSpec:
    """``"piper"`` or ``{"type": "flite", "name": "flite-slt", "voice": "slt"}`` -> a spec.
    Raises ValueError with a readable message."""
    if isinstance(raw, str):
        type_name, fields = raw, {}
    elif isinstance(raw, Mapping) and isinstance(raw.get("type"), str):
        fields = {str(k): v for k, v in raw.items() if k != "type"}
        type_name = raw["type"]
    else:
        raise ValueError(f"a {kind} provider is a type name or a mapping with 'type:', got {raw!r}")
    name = fields.pop("name", type_name)
    if not isinstance(name, str) or not name:
        raise ValueError(f"provider name must be a non-empty string, got {name!r}")
    cls = provider_class(kind, type_name)
    params_cls: type[BaseModel] = cls.Params
    try:
        params = params_cls.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or type_name}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"{kind} provider {name!r}: {problems}") from None
    return ProviderSpec(kind, type_name, name, cls, params)


def _spec_list(kind: Kind) -> BeforeValidator:
    def parse(raw: object) -> list[ProviderSpec]:
        if isinstance(raw, str | Mapping):
            raw = [raw]
        if not isinstance(raw, list) or not raw:
            raise ValueError(f"a non-empty list of {kind} providers, in failover order")
        specs = [s if isinstance(s, ProviderSpec) else parse_spec(kind, s) for s in raw]
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"{kind} provider names repeat ({names}): give each a name:")
        return specs

    return BeforeValidator(parse)


STTProviders = Annotated[list[ProviderSpec], _spec_list("stt")]
LLMProviders = Annotated[list[ProviderSpec], _spec_list("llm")]
TTSProviders = Annotated[list[ProviderSpec], _spec_list("tts")]
"""Param types of the stage nodes: a provider or a list of them, validated on load."""
