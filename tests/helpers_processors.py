"""Processors (and non-processors) for the registry tests, loaded by ``module:Class`` path.

Importable as ``helpers_processors`` because ``tests/`` is on ``sys.path`` (pytest's
``pythonpath = ["tests"]``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from callweaver.errors import ModelUnavailable
from callweaver.frames.base import Frame
from callweaver.frames.speech import SpeechPausedFrame, SpeechStoppedFrame
from callweaver.frames.text import ReplyTextFrame
from callweaver.runtime.processor import Processor, Transform


class SuffixParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    suffix: str = Field("!", min_length=1, max_length=3)


class Suffix(Transform):
    """Appends ``suffix`` to every reply text."""

    Params = SuffixParams

    def __init__(self, params: SuffixParams | None = None) -> None:
        super().__init__(params)
        self.p = params or SuffixParams()

    def transform(self, frame: Frame) -> Frame | None:
        if isinstance(frame, ReplyTextFrame):
            return dataclasses.replace(frame, text=frame.text + self.p.suffix)
        return frame


@dataclass(frozen=True)
class RepeatParams:
    """Params as a plain class taking keyword arguments (no pydantic)."""

    times: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.times, int) or self.times < 1:
            raise ValueError(f"times must be a positive integer, got {self.times!r}")


class Repeat(Processor):
    """Emits every data frame ``times`` times."""

    Params = RepeatParams

    async def process(self, frame: Frame) -> None:
        params: RepeatParams = self.params or RepeatParams()
        for _ in range(params.times):
            await self.emit(frame)


class NotAProcessor:
    """A class, but not a Processor."""


ANSWER = 42


def assert_pause_before_each_stop(events: list[Frame]) -> None:
    """Every end of turn was announced as a pause first, at the same audio time."""
    pause = None
    for f in events:
        if isinstance(f, SpeechPausedFrame):
            pause = f.pts_ns
        elif isinstance(f, SpeechStoppedFrame):
            assert pause == f.pts_ns
            pause = None


class BrokenModel(Processor):
    """A node whose model is missing: its start fails, as a real model node's would."""

    async def start(self, frame: object) -> None:  # type: ignore[override]
        raise ModelUnavailable("model file missing: pip install the-model")
