"""Voice activity from the silero model, batched across all calls of the process.

Caller audio is resampled to the model's rate (8 kHz audio, such as a phone call's, is used
as is; anything else goes to 16 kHz), cut into 32 ms windows and scored by the process-wide
model (:mod:`callweaver.resources.silero`). A window is voiced when its probability reaches
``threshold`` (``threshold - 0.15`` once speech has started, so a turn does not flicker) and
its level reaches ``min_volume_dbfs``. Turn-taking is the shared logic of
:mod:`callweaver.processors.vad`.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt
from pydantic import Field

from callweaver.audio.levels import level_dbfs
from callweaver.audio.resample import Resampler
from callweaver.frames.audio import InputAudioFrame
from callweaver.frames.control import StartFrame
from callweaver.processors.vad import TurnParams, VoiceActivity, Window
from callweaver.resources.silero import VADStream, shared_model

_NS = 1_000_000_000
_LOOKBACK_WINDOWS = 2
WINDOW_BLOCKS = {rate: size // (rate // 500) for rate, size in {16000: 512, 8000: 256}.items()}


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
        self._history = np.zeros(0, dtype=np.int16)  # the windows before the current one
        self._noise_energy = float("inf")  # mean square of the background (unvoiced windows)
        self._history_levels: deque[tuple[float, bool]] = deque()  # (energy, voiced) of the history
        self._consumed = 0  # model-rate samples already scored
        self._origin_pts = 0

    async def start(self, frame: StartFrame) -> None:
        shared_model()  # load the model when the call starts, not on its first audio

    async def close(self) -> None:
        if self._stream is not None:
            self._stream.model.release(self._stream)  # the shared model stops waiting for us

    def _learn_background(self, chunk: npt.NDArray[np.int16], voiced: bool) -> None:
        """Track the background level from unvoiced windows once they are older than the
        look-back (a word's unvoiced start must not raise the floor it is measured against):
        it follows quieter windows down at once and louder ones up slowly."""
        x = chunk.astype(np.float32)
        self._history_levels.append((float(np.mean(x * x)), voiced))
        if len(self._history_levels) <= _LOOKBACK_WINDOWS:
            return
        energy, was_voiced = self._history_levels.popleft()
        if not was_voiced:
            noise = self._noise_energy
            self._noise_energy = energy if energy < noise else noise + 0.05 * (energy - noise)

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
            arrival = frame.ts_ns - max(frame_end - end, 0)
            if voiced:
                # the model needs a window or two of speech before it is sure: look back over
                # the windows before this one for where the speech really began
                first, last = _speech_span(
                    np.concatenate([self._history, chunk]), rate, self._noise_energy
                )
                first -= self._history.size
                last -= self._history.size
                scale = (end - start) / size
                windows.append(
                    Window(True, start, end, arrival, start + round(first * scale),
                           start + round(last * scale))
                )  # fmt: skip
            else:
                windows.append(Window(False, start, end, arrival))
            self._learn_background(chunk, voiced)
            self._history = np.concatenate([self._history, chunk])[-_LOOKBACK_WINDOWS * size :]
        return windows


def _speech_span(
    samples: npt.NDArray[np.int16], rate: int, noise_energy: float = 0.0
) -> tuple[int, int]:
    """Where the speech of a voiced window lies, in samples of ``samples`` (the window, after
    the windows before it): 2 ms blocks within 30 dB of the window's loudest block and 6 dB
    over the background, extended back over the earlier windows while their blocks stay that
    loud. A window scores as voiced
    when speech starts or ends anywhere in it, and the model only becomes sure a window or two
    after the speech began: this puts the turn's edges on the samples."""
    block = rate // 500
    x = samples[: samples.size // block * block].astype(np.float32).reshape(-1, block)
    energy = np.mean(x * x, axis=1)
    own = WINDOW_BLOCKS[rate]
    background = 0.0 if noise_energy == float("inf") else noise_energy
    floor = max(energy[-own:].max() * 0.001, background * 4)  # and 6 dB over the background
    loud = energy >= floor
    if not loud[-own:].any() or floor == 0:
        return samples.size - own * block, samples.size
    first = len(energy) - own + int(np.argmax(loud[-own:]))
    while first > 0 and loud[max(first - 3, 0) : first].any():  # bridging gaps up to 4 ms
        first -= 1
    while not loud[first]:
        first += 1
    last = len(energy) - 1 - int(np.argmax(loud[::-1]))
    return first * block, (last + 1) * block
