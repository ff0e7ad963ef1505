"""The parrot: replies to each caller turn by playing it back.

A real voice-to-voice loop with no models: caller speech -> end of turn -> reply audio. It
exercises turn-taking, barge-in and latency accounting end to end, and is the default agent
until speech recognition and synthesis are configured.
"""

from __future__ import annotations

from collections import deque

from pydantic import BaseModel, ConfigDict, Field

from callweaver.frames.audio import InputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.control import InterruptFrame
from callweaver.frames.speech import EndOfTurnFrame, SpeechStartedFrame, SpeechStoppedFrame
from callweaver.frames.text import ReplyEndFrame
from callweaver.runtime.processor import Processor

_DETECTION_LAG_MS = 1000


class EchoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    preroll_ms: int = Field(100, ge=0, description="audio kept from before speech was detected")
    max_turn_ms: int = Field(15_000, gt=0, description="longest turn replayed")
    chunk_ms: int = Field(20, gt=0, description="size of the reply audio chunks")


class Echo(Processor):
    """Records each caller turn (from speech start, with pre-roll, to speech stop) and emits
    it as reply audio when the turn ends. Other frames pass through."""

    Params = EchoParams

    def __init__(self, params: EchoParams | None = None) -> None:
        super().__init__(params)
        self.p = params or EchoParams()
        self._recent: deque[InputAudioFrame] = deque()
        self._turn: list[InputAudioFrame] | None = None
        self._speech_end_pts: int | None = None

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, InputAudioFrame):
            self._keep(frame)
            return
        if isinstance(frame, SpeechStartedFrame):
            start = frame.pts_ns - self.p.preroll_ms * 1_000_000
            self._turn = [f for f in self._recent if f.pts_ns + f.duration_ns > start]
            self._speech_end_pts = None
        elif isinstance(frame, SpeechStoppedFrame):
            self._speech_end_pts = frame.pts_ns
        elif isinstance(frame, EndOfTurnFrame) and self._turn is not None:
            turn, self._turn = self._turn, None
            await self._reply(frame.turn_id, turn)
            return
        await self.emit(frame)

    def _keep(self, frame: InputAudioFrame) -> None:
        recent = self._recent
        recent.append(frame)
        # keep the pre-roll plus the VAD's decision lag, so the turn starts at its first sample
        keep_ns = (self.p.preroll_ms + _DETECTION_LAG_MS) * 1_000_000
        while recent and frame.pts_ns - recent[0].pts_ns > keep_ns:
            recent.popleft()
        turn = self._turn
        if turn is not None and sum(f.duration_ns for f in turn) < self.p.max_turn_ms * 1_000_000:
            turn.append(frame)

    async def _reply(self, turn_id: int, frames: list[InputAudioFrame]) -> None:
        if not frames:
            return
        end = self._speech_end_pts
        kept = [f for f in frames if end is None or f.pts_ns < end]
        rate = frames[0].sample_rate
        pcm = b"".join(f.pcm for f in kept if f.sample_rate == rate)
        step = max(2, rate * self.p.chunk_ms // 1000 * 2)
        await self.emit_audio(pcm, rate, turn_id, step)
        ctx = self.ctx
        await self.emit(ReplyEndFrame(call_id=ctx.call_id, turn_id=turn_id, ts_ns=ctx.now_ns()))

    async def on_interrupt(self, frame: InterruptFrame) -> None:
        self._speech_end_pts = None
