"""A voice activity detector on signal energy: no model, microseconds per frame.

It decides per incoming chunk whether the caller is speaking (level above
``threshold_dbfs``), opens a turn after ``start_ms`` of speech and closes it after
``stop_ms`` of silence. It is the lightweight fallback when no neural VAD is configured and the
detector the tests use; it does not tell speech from loud noise.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from callweaver.frames.audio import InputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.speech import EndOfTurnFrame, SpeechStartedFrame, SpeechStoppedFrame
from callweaver.runtime.latency import Stage
from callweaver.runtime.processor import Processor


class EnergyVADParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold_dbfs: float = Field(-35.0, le=0, description="level above which a chunk is speech")
    start_ms: int = Field(60, ge=0, description="speech needed to open a turn")
    stop_ms: int = Field(200, ge=20, description="silence needed to close a turn")
    barge_in: bool = Field(True, description="caller speech interrupts the bot's reply")


def level_dbfs(pcm: bytes) -> float:
    """RMS level of PCM16 audio in dB relative to full scale (-inf for digital silence)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(samples * samples)))
    return 20 * math.log10(rms / 32768) if rms > 0 else -math.inf


class EnergyVAD(Processor):
    """Emits speech started/stopped and end-of-turn frames around the audio it forwards."""

    Params = EnergyVADParams

    def __init__(self, params: EnergyVADParams | None = None) -> None:
        super().__init__(params)
        self.p = params or EnergyVADParams()
        self._speaking = False
        self._run_ns = 0
        self._run_start_pts = 0
        self._last_voiced: InputAudioFrame | None = None

    async def process(self, frame: Frame) -> None:
        await self.emit(frame)
        if isinstance(frame, InputAudioFrame):
            await self._detect(frame)

    async def _detect(self, frame: InputAudioFrame) -> None:
        voiced = level_dbfs(frame.pcm) >= self.p.threshold_dbfs
        ctx = self.ctx
        if voiced:
            self._last_voiced = frame
        if voiced != self._speaking:
            if self._run_ns == 0:
                self._run_start_pts = frame.pts_ns
            self._run_ns += frame.duration_ns
        else:
            self._run_ns = 0
        if not self._speaking and self._run_ns >= self.p.start_ms * 1_000_000:
            self._speaking, self._run_ns = True, 0
            turn = ctx.begin_turn()
            await self.emit(
                SpeechStartedFrame(
                    call_id=ctx.call_id,
                    turn_id=turn,
                    ts_ns=ctx.now_ns(),
                    pts_ns=self._run_start_pts,
                )
            )
            if self.p.barge_in:
                ctx.interrupt(turn)
        elif self._speaking and self._run_ns >= self.p.stop_ms * 1_000_000:
            self._speaking, self._run_ns = False, 0
            last = self._last_voiced
            assert last is not None
            now = ctx.now_ns()
            turn = ctx.turn_id
            speech_end = last.ts_ns
            ctx.mark(turn, Stage.SPEECH_END, speech_end)
            ctx.mark(turn, Stage.ENDPOINT, now)
            pts_end = last.pts_ns + last.duration_ns
            await self.emit(
                SpeechStoppedFrame(
                    call_id=ctx.call_id,
                    turn_id=turn,
                    ts_ns=now,
                    pts_ns=pts_end,
                    speech_end_ns=speech_end,
                )
            )
            await self.emit(
                EndOfTurnFrame(
                    call_id=ctx.call_id, turn_id=turn, ts_ns=now, speech_end_ns=speech_end
                )
            )
