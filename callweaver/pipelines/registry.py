"""The processor registry: node ``type:`` names -> processor classes and their params.

An object, not a global: a server, a test or a tool builds the registry it needs. Three
sources fill it:

1. built-ins (:data:`BUILTINS`);
2. entry points in the group ``callweaver.processors`` of installed packages (name -> class),
   loaded only when a config uses them;
3. ``package.module:Class`` paths written directly as a node's ``type:``.

A processor class declares its ``Params`` (a pydantic model, or any class taking keyword
arguments) and ``ports``; :meth:`Registry.params` validates a node's raw params against it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from callweaver.errors import RegistryError
from callweaver.processors.cache import ResponseCacheNode
from callweaver.processors.denoise import Denoise
from callweaver.processors.echo import Echo
from callweaver.processors.energy_vad import EnergyVAD
from callweaver.processors.language import LanguageNode
from callweaver.processors.passthrough import Identity, Passthrough
from callweaver.processors.reply import AnswersReply, LLMReply
from callweaver.processors.silero_vad import SileroVAD
from callweaver.processors.stt import SpeechToText
from callweaver.processors.tts import TextToSpeech
from callweaver.runtime.processor import NoParams, Processor

ENTRY_POINT_GROUP = "callweaver.processors"

BUILTINS: Mapping[str, type[Processor]] = {
    "passthrough": Passthrough,
    "identity": Identity,
    "energy_vad": EnergyVAD,
    "silero_vad": SileroVAD,
    "echo": Echo,
    "denoise": Denoise,
    "stt": SpeechToText,
    "llm": LLMReply,
    "answers": AnswersReply,
    "cache": ResponseCacheNode,
    "language": LanguageNode,
    "tts": TextToSpeech,
}


class ParamsError(Exception):
    """A node's params do not validate; ``problems`` are (key path, message) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{k}: {m}" for k, m in problems))


class Registry:
    """Maps node type names to processor classes."""

    def __init__(self, types: Mapping[str, type[Processor]] | None = None) -> None:
        self._types: dict[str, type[Processor]] = dict(types or {})
        self._lazy: dict[str, EntryPoint] = {}

    @classmethod
    def default(cls, *, entry_points_group: str | None = ENTRY_POINT_GROUP) -> Registry:
        """Built-ins plus every installed entry point of ``entry_points_group``."""
        registry = cls(BUILTINS)
        if entry_points_group:
            registry.add_entry_points(entry_points_group)
        return registry

    def register(self, name: str, processor: type[Processor]) -> None:
        """Add a type; a name may be registered once."""
        if name in self._types or name in self._lazy:
            raise RegistryError(f"node type {name!r} is already registered")
        if not (isinstance(processor, type) and issubclass(processor, Processor)):
            raise RegistryError(f"node type {name!r}: {processor!r} is not a Processor class")
        self._types[name] = processor

    def add_entry_points(self, group: str) -> None:
        """Register (lazily) every entry point of ``group``; built-in names win."""
        for ep in entry_points(group=group):
            if ep.name not in self._types:
                self._lazy[ep.name] = ep

    def names(self) -> list[str]:
        return sorted({*self._types, *self._lazy})

    def resolve(self, type_name: str) -> type[Processor]:
        """The processor class for a ``type:``, importing an entry point or a
        ``module:Class`` path when needed."""
        found = self._types.get(type_name)
        if found is not None:
            return found
        if type_name in self._lazy:
            ep = self._lazy[type_name]
            try:
                loaded = ep.load()
            except Exception as exc:
                raise RegistryError(
                    f"entry point {type_name!r} ({ep.value}) failed to load: {exc!r}"
                ) from exc
            return self._checked(type_name, loaded)
        if ":" in type_name:
            module_name, _, attr = type_name.partition(":")
            if not module_name or not attr:
                raise RegistryError(f"node type {type_name!r}: expected 'package.module:Class'")
            try:
                module = importlib.import_module(module_name)
            except ImportError as exc:
                raise RegistryError(f"cannot import module {module_name!r}: {exc}") from exc
            except Exception as exc:  # the module raised while being imported
                raise RegistryError(f"importing module {module_name!r} failed: {exc!r}") from exc
            try:
                loaded = getattr(module, attr)
            except AttributeError:
                raise RegistryError(f"module {module_name!r} has no {attr!r}") from None
            return self._checked(type_name, loaded)
        known = ", ".join(self.names())
        raise RegistryError(
            f"unknown node type {type_name!r} (known: {known}; or use 'package.module:Class')"
        )

    def _checked(self, name: str, obj: object) -> type[Processor]:
        if not (isinstance(obj, type) and issubclass(obj, Processor)):
            raise RegistryError(f"{name!r} is {obj!r}, not a Processor class")
        self._types[name] = obj
        self._lazy.pop(name, None)
        return obj

    @staticmethod
    def params(processor: type[Processor], raw: Mapping[str, Any]) -> Any:
        """Validate raw params against ``processor.Params``; raise :class:`ParamsError`."""
        model = processor.Params
        if isinstance(model, type) and issubclass(model, BaseModel):
            try:
                return model.model_validate(dict(raw))
            except ValidationError as exc:
                raise ParamsError(
                    [(".".join(str(p) for p in e["loc"]), e["msg"]) for e in exc.errors()]
                ) from None
        if model is NoParams and raw:
            raise ParamsError([(k, "this node type takes no params") for k in raw])
        try:
            return model(**raw)
        except (TypeError, ValueError) as exc:
            raise ParamsError([("", str(exc))]) from None
