"""Two processors of the kind a team writes for its own deployments.

- :class:`Shout` is a :class:`~callweaver.runtime.processor.Transform`: a pure, synchronous
  frame -> frame function, which the graph may run fused inside the actor upstream of it.
- :class:`Gain` is a full :class:`~callweaver.runtime.processor.Processor` (an actor of its
  own) with validated params.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from callweaver.frames.audio import OutputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.text import ReplyTextFrame
from callweaver.runtime.processor import Processor, Transform


class Shout(Transform):
    """Upper-cases the text of every :class:`~callweaver.frames.text.ReplyTextFrame`; every
    other frame passes unchanged. Takes no params."""

    def transform(self, frame: Frame) -> Frame | None:
        if isinstance(frame, ReplyTextFrame):
            return dataclasses.replace(frame, text=frame.text.upper())
        return frame


class GainParams(BaseModel):
    """Params of :class:`Gain`, validated when a config is loaded."""

    model_config = ConfigDict(extra="forbid")

    gain_db: float = Field(
        0.0,
        ge=-40.0,
        le=20.0,
        allow_inf_nan=False,
        description="level change applied to reply audio, in dB (-40 to +20)",
    )


def scale_pcm16(pcm: bytes, factor: float) -> bytes:
    """Multiply PCM16 little-endian samples by ``factor``, rounding and clipping to 16 bits."""
    usable = len(pcm) - len(pcm) % 2
    samples = np.frombuffer(pcm, dtype="<i2", count=usable // 2).astype(np.float32)
    scaled: bytes = np.clip(np.rint(samples * factor), -32768, 32767).astype("<i2").tobytes()
    return scaled + pcm[usable:]


class Gain(Processor):
    """Scales the samples of every :class:`~callweaver.frames.audio.OutputAudioFrame` by
    ``gain_db`` (clipping at full scale); every other frame passes unchanged.

    Written as a full processor to show the general form; a pure per-frame function like this
    one could equally be a :class:`~callweaver.runtime.processor.Transform`.
    """

    Params = GainParams

    def __init__(self, params: GainParams | None = None) -> None:
        super().__init__(params)
        self.p = params or GainParams()
        self.factor = float(10 ** (self.p.gain_db / 20))

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, OutputAudioFrame) and self.p.gain_db != 0:
            frame = dataclasses.replace(frame, pcm=scale_pcm16(frame.pcm, self.factor))
        await self.emit(frame)
