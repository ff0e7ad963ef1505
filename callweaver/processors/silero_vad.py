"""Voice activity from the silero model, batched across all calls of the process.

Caller audio is resampled to the model's rate (8 kHz audio, such as a phone call's, is used
as is; anything else goes to 16 kHz), cut into 32 ms windows and scored by the process-wide
model (:mod:`callweaver.resources.silero`). A window is voiced when its probability reaches
``threshold`` (``threshold - 0.15`` once speech has started, so a turn does not flicker) and
its level reaches ``min_volume_dbfs``; a quieter window is not scored at all, which on a quiet
line saves most of a call's inference (the caller listening). Turn-taking is the shared logic of
:mod:`callweaver.processors.vad`.
"""

from __future__ import annotations

import functools
import math
from collections import deque

import numpy as np
import numpy.typing as npt
from pydantic import Field

from callweaver.audio.resample import Resampler
from callweaver.frames.audio import InputAudioFrame
from callweaver.frames.control import StartFrame
from callweaver.processors.vad import TurnParams, VoiceActivity, Window
from callweaver.resources.silero import VADStream, shared_model

_NS = 1_000_000_000
_LOOKBACK_WINDOWS = 2


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
        self._buffer = b""  # model-rate PCM16 not scored yet
        # the windows before the current one (their block energies are needed only for an onset)
        self._history: deque[npt.NDArray[np.float32]] = deque(maxlen=_LOOKBACK_WINDOWS)
        self._noise_energy = float("inf")  # mean square of the background (unvoiced windows)
        self._history_levels: deque[tuple[float, bool]] = deque()  # (energy, voiced) of the history
        self._consumed = 0  # model-rate samples already scored
        self._origin_pts = 0

    async def start(self, frame: StartFrame) -> None:
        shared_model()  # load the model when the call starts, not on its first audio

    async def close(self) -> None:
        if self._stream is not None:
            self._stream.model.release(self._stream)  # the shared model stops waiting for us

    def _learn_background(self, mean_energy: float, voiced: bool) -> None:
        """Track the background level from unvoiced windows once they are older than the
        look-back (a word's unvoiced start must not raise the floor it is measured against):
        it follows quieter windows down at once and louder ones up slowly."""
        self._history_levels.append((mean_energy, voiced))
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
        self._buffer += self._resampler.process(frame.pcm)
        size, rate = stream.window_samples, stream.sample_rate
        frame_end = frame.pts_ns + frame.duration_ns
        windows = []
        while len(self._buffer) >= 2 * size:
            chunk, self._buffer = self._buffer[: 2 * size], self._buffer[2 * size :]
            start = self._origin_pts + self._consumed * _NS // rate
            self._consumed += size
            end = self._origin_pts + self._consumed * _NS // rate
            window = np.frombuffer(chunk, dtype="<i2").astype(np.float32)
            window *= 1 / 32768
            mean_energy = float(np.dot(window, window)) / size  # full scale = 1
            level = 10 * math.log10(mean_energy) if mean_energy > 0 else -math.inf
            if level >= self.p.min_volume_dbfs:
                prob = await stream.probability(window)
                threshold = self.p.threshold - (0.15 if self.speaking else 0.0)
                voiced = prob >= threshold
            else:  # never speech at this level: the model is not asked
                stream.skip(window)
                voiced = False
            arrival = frame.ts_ns - max(frame_end - end, 0)
            if voiced:
                # the model needs a window or two of speech before it is sure: the onset is
                # searched for over the windows before this one too
                span = functools.partial(
                    _span_pts, [*self._history, window], rate // 500, self._noise_energy, start,
                    (end - start) / size * (rate // 500),
                )  # fmt: skip
                windows.append(Window(True, start, end, arrival, span))
            else:
                windows.append(Window(False, start, end, arrival))
            self._learn_background(mean_energy, voiced)
            self._history.append(window)
        return windows


def _span_pts(
    windows: list[npt.NDArray[np.float32]],
    block: int,
    noise_energy: float,
    start: int,
    ns_per_block: float,
) -> tuple[int, int]:
    energies = []
    for window in windows:  # mean square per 2 ms block, full scale = 1
        blocks = window.reshape(-1, block)
        energies.append(np.einsum("ij,ij->i", blocks, blocks) / block)
    first, last = _speech_span(energies, noise_energy)
    return start + round(first * ns_per_block), start + round(last * ns_per_block)


def _speech_span(energies: list[npt.NDArray[np.float32]], noise_energy: float) -> tuple[int, int]:
    """Where the speech of a voiced window lies, in 2 ms blocks from the window's start (a
    negative first block lies in the windows before it). ``energies`` are the mean squares of
    the blocks of the windows before it, then of the window itself.

    Speech is the blocks within 30 dB of the window's loudest and 6 dB over the background,
    extended back over the earlier windows while they stay that loud (gaps up to 4 ms bridged).
    A window scores as voiced when speech starts or ends anywhere in it, and the model only
    becomes sure a window or two after the speech began: this puts the turn's edges on the
    samples."""
    own = energies[-1]
    background = 0.0 if math.isinf(noise_energy) else noise_energy
    floor = max(float(own.max()) * 0.001, background * 4)
    loud = np.concatenate(energies) >= floor if floor > 0 else np.ones(1, dtype=bool)
    earlier = sum(e.size for e in energies[:-1])
    if floor == 0 or not loud[earlier:].any():
        return 0, own.size
    first = earlier + int(np.argmax(loud[earlier:]))
    while first > 0 and loud[max(first - 3, 0) : first].any():
        first -= 1
    while not loud[first]:
        first += 1
    last = loud.size - 1 - int(np.argmax(loud[::-1]))
    return first - earlier, last + 1 - earlier
