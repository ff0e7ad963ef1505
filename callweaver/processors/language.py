"""The ``language`` node: the call's language, decided per final transcript, on the frames.

It sits between the ``stt`` node and the reply node. Each final transcript goes on stamped
with the call's locale (``TranscriptFrame.language``), which the reply node passes to its
reply text and so to the ``tts`` node; an ``llm`` node adds the locale's prompt line
(:mod:`callweaver.services.locales`). When the language changes
(:class:`~callweaver.services.language.LanguageTracker`: an explicit request at once, a run of
turns in another language, never one short word), a :class:`LanguageFrame` goes downstream
(ConversationRelay switches Twilio's voice and recognizer) and upstream (the ``stt`` node
hears the next turns in it). At the start of the call the same frame says the first locale
(the default, or the one the number dialled implies).

Text detection (``detect``, on by default) runs lingua over the languages of ``allowed``
(with none listed: the default's and a dozen common ones, see :data:`COMMON`); its models are
loaded once per process at the first call's start (about 25 MB and 70 ms per language at
``accuracy: high``). A language lingua has no model for is left to the STT's report.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from callweaver.errors import ModelUnavailable
from callweaver.frames.base import Frame
from callweaver.frames.control import StartFrame
from callweaver.frames.text import LanguageFrame, TranscriptFrame
from callweaver.runtime.processor import Processor
from callweaver.services.language import LanguageTracker
from callweaver.services.language_detect import (
    Accuracy,
    TextDetector,
    lingua_languages,
    shared_detector,
)
from callweaver.services.locales import LocaleTable, check, default_table
from callweaver.text.languages import language_key

#: The languages told apart when a node lists no ``allowed`` locales (besides its default's):
#: those a caller can ask for by name.
COMMON = ("en", "es", "fr", "de", "pt", "it", "zh", "ja", "ko", "vi", "hi", "ar", "ru")


class LanguageParams(BaseModel):
    """Parameters of the ``language`` node."""

    model_config = ConfigDict(extra="forbid")

    default: str = Field("en-US", description="the call's locale until the caller shows another")
    allowed: list[str] = Field(
        default_factory=list,
        description="the locales this deployment speaks, preferred first; empty: any in the table",
    )
    min_words: int = Field(3, ge=1, description="shorter turns never move the call")
    switch_after: int = Field(
        2, ge=1, description="turns in a row in another language that move the call"
    )
    detect: bool = Field(
        True, description="tell the language from the text (lingua); off: the STT's report only"
    )
    accuracy: Accuracy = Field(
        "high", description="lingua's models: high (better on short turns) or low (less memory)"
    )
    locales: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="locales to add to the table or change (voices, codes, prompt lines)",
    )

    @model_validator(mode="after")
    def _known(self) -> LanguageParams:
        table = self.table()
        problems = check(table) if self.locales else []
        for code in [self.default, *self.allowed]:
            if code not in table:
                problems.append(f"unknown locale {code!r} (add it under locales:)")
        if self.detect:
            try:
                lingua_languages()
            except ModelUnavailable as exc:
                problems.append(f"{exc}; or set detect: false (the STT's report only)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def table(self) -> LocaleTable:
        return default_table().extend(self.locales) if self.locales else default_table()

    def detected_languages(self) -> list[str]:
        """The languages text detection tells apart (those lingua knows), sorted."""
        codes = self.allowed or [self.default, *COMMON]
        keys = {"zh" if (k := language_key(code)) == "yue" else k for code in codes}
        return sorted(keys & lingua_languages()) if self.detect else []


class LanguageNode(Processor):
    """See the module docstring."""

    Params = LanguageParams

    def __init__(self, params: LanguageParams | None = None) -> None:
        super().__init__(params)
        self.p = params or LanguageParams()
        self.tracker: LanguageTracker | None = None

    async def start(self, frame: StartFrame) -> None:
        p = self.p
        languages = p.detected_languages()
        detector: TextDetector | None = None
        if len(languages) > 1:
            detector = await shared_detector(languages, p.accuracy)
        self.tracker = LanguageTracker(
            p.default,
            allowed=p.allowed,
            parameters=self.ctx.parameters,
            table=p.table(),
            min_words=p.min_words,
            switch_after=p.switch_after,
            detector=detector,
        )
        await self._announce(self.tracker.locale, "", "start")

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, TranscriptFrame) and frame.final and self.tracker is not None:
            before = self.tracker.locale
            decision = self.tracker.observe(frame.text, frame.language)
            if decision.switched:
                await self._announce(decision.locale, before, decision.reason)
                await self.emit_metric("language.switch", 1.0, frame.turn_id)
                await self.emit_metric(f"language.switch.{decision.reason}", 1.0, frame.turn_id)
            await self.emit_metric(f"language.turn.{decision.locale}", 1.0, frame.turn_id)
            await self.emit(dataclasses.replace(frame, language=decision.locale))
            return
        await self.emit(frame)

    async def _announce(self, locale: str, previous: str, reason: str) -> None:
        ctx = self.ctx
        frame = LanguageFrame(
            call_id=ctx.call_id,
            turn_id=ctx.turn_id,
            ts_ns=ctx.now_ns(),
            locale=locale,
            previous=previous,
            reason=reason,
        )
        await self.emit(frame)
        await self.emit_upstream(frame)
