"""Voice activity from the silero model, batched across all calls of the process.

Caller audio is resampled to the model's rate (8 kHz audio, such as a phone call's, is used
as is; anything else goes to 16 kHz), cut into 32 ms windows and scored by the process-wide
model (:mod:`callweaver.resources.silero`). A window is voiced when its probability reaches
``threshold`` (``threshold - 0.15`` once speech has started, so a turn does not flicker) and
its level reaches ``min_volume_dbfs``. Turn-taking is the shared logic of
:mod:`callweaver.processors.vad`.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from callweaver.audio.levels import level_dbfs
from callweaver.audio.resample import Resampler
from callweaver.frames.audio import InputAudioFrame
from callweaver.frames.control import StartFrame
from callweaver.processors.vad import TurnParams, VoiceActivity, Window
from callweaver.resources.silero import VADStream, shared_model

_NS = 1_000_000_000


class SileroVADParams(TurnParams):
    threshold: float = Field(0.5, gt=0, lt=1, description="speech probability of a voiced window")
    min_volume_dbfs: float = Field(-60.0, le=0, description="quieter windows are never speech")


class SileroVAD(VoiceActivity):
    """Scores caller audio with silero, 32 ms at a time."""

    Params = SileroVADParams

    def __init__(self, params: SileroVADParams | None = None) -> None:
        self.p = params or SileroVADParams()
        super().__init__(self.p)
        self._stream: VADStream | None = None
        self._resampler: Resampler | None = None
        self._buffer = np.zeros(0, dtype=np.int16)
        self._consumed = 0  # model-rate samples already scored
        self._origin_pts = 0

    async def start(self, frame: StartFrame) -> None:
        shared_model()  # load the model when the call starts, not on its first audio

    async def close(self) -> None:
        if self._stream is not None:
            self._stream.model.release(self._stream)  # the shared model stops waiting for us

    def _open(self, frame: InputAudioFrame) -> VADStream:
        rate = 8000 if frame.sample_rate == 8000 else 16000
        self._resampler = Resampler(frame.sample_rate, rate)
        self._origin_pts = frame.pts_ns - round(self._resampler.delay_s * _NS)
        self._stream = shared_model().stream(rate)
        return self._stream

    async def classify(self, frame: InputAudioFrame) -> list[Window]:
        stream = self._stream or self._open(frame)
        assert self._resampler is not None
        pcm = self._resampler.process(frame.pcm)
        if pcm:
            self._buffer = np.concatenate([self._buffer, np.frombuffer(pcm, dtype="<i2")])
        size, rate = stream.window_samples, stream.sample_rate
        frame_end = frame.pts_ns + frame.duration_ns
        windows = []
        while self._buffer.size >= size:
            chunk, self._buffer = self._buffer[:size], self._buffer[size:]
            start = self._origin_pts + self._consumed * _NS // rate
            self._consumed += size
            end = self._origin_pts + self._consumed * _NS // rate
            prob = await stream.probability(chunk.astype(np.float32) / 32768.0)
            threshold = self.p.threshold - (0.15 if self.speaking else 0.0)
            voiced = prob >= threshold and level_dbfs(chunk.tobytes()) >= self.p.min_volume_dbfs
            windows.append(Window(voiced, start, end, frame.ts_ns - max(frame_end - end, 0)))
        return windows
