"""Sample-rate conversion of PCM16 mono audio, one stateful resampler per stream.

A call converts between the rates of its ends (8 kHz telephony, 16 kHz for speech models,
22.05/24 kHz from TTS engines, 48 kHz WebRTC) chunk by chunk, as the audio arrives, so the
resampler's *latency* is paid on every turn: it must hand out each chunk's audio at once.

This is a polyphase windowed-sinc resampler. Output sample ``n`` is the input signal
interpolated at ``n * in_rate / out_rate`` input samples, by a Kaiser-windowed sinc whose
cutoff sits a little below the lower of the two Nyquist frequencies. The kernel reaches
``zero_crossings`` zero crossings (of the lower rate) each side, so an output sample needs
that much input *after* it: that look-ahead is the whole latency, about 2 ms with the
default 16 crossings, whatever the chunk size. (libsoxr, measured here first, filters in
blocks and released 20 ms chunks 64 ms late on average between 8 and 16 kHz, 115 ms at
worst: too late for turn-taking.)

Guarantees (tested): feeding a stream in chunks of any size gives exactly the bytes of feeding
it whole; the output is time-aligned with the input (no lag: the kernel is symmetric); a
stream of n input samples gives ``round(n * out_rate / in_rate)`` output samples once flushed;
digital silence stays digital silence; full scale clips instead of wrapping.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["Resampler", "resample"]

F64 = npt.NDArray[np.float64]

_CUTOFF: Final = 0.92  # of the lower Nyquist frequency: leaves a transition band for the window
_BETA: Final = 9.0  # Kaiser window: about 90 dB of stopband
_BLOCK: Final = 4096  # output samples computed at a time


@cache
def _kernel(up: int, down: int, zero_crossings: int) -> tuple[F64, int]:
    """The polyphase table [phase, tap] for the ratio up/down, and the taps each side."""
    scale = min(1.0, up / down) * _CUTOFF  # cutoff in cycles per input sample, times 2
    half = math.ceil(zero_crossings / scale)  # input samples each side
    taps = np.arange(-half + 1, half + 1, dtype=np.float64)  # offsets from floor(t)
    phases = np.arange(up, dtype=np.float64)[:, None] / up  # fractional part of t
    u = taps[None, :] - phases  # distance from t, in input samples
    window = np.kaiser(2 * half + 1, _BETA)
    # evaluate the window continuously at u (it is defined on [-half, half])
    w = np.interp(u, np.linspace(-half, half, 2 * half + 1), window, left=0.0, right=0.0)
    table = scale * np.sinc(scale * u) * w
    table /= table.sum(axis=1, keepdims=True)  # unit gain at DC for every phase
    return np.ascontiguousarray(table), half


class Resampler:
    """Converts one stream of PCM16 mono audio from ``in_rate`` to ``out_rate``.

    Keep one per stream and direction: it carries the input it still needs from chunk to
    chunk. With equal rates it is a pass-through that returns its input unchanged.
    """

    __slots__ = (
        "_buffer",
        "_down",
        "_fed",
        "_half",
        "_in_rate",
        "_made",
        "_origin",
        "_out_rate",
        "_table",
        "_up",
    )  # fmt: skip

    def __init__(self, in_rate: int, out_rate: int, *, zero_crossings: int = 16) -> None:
        for name, rate in (("in_rate", in_rate), ("out_rate", out_rate)):
            if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
                raise ValueError(f"{name} must be a positive int (Hz), got {rate!r}")
        if zero_crossings < 2:
            raise ValueError("zero_crossings must be at least 2")
        self._in_rate, self._out_rate = in_rate, out_rate
        g = math.gcd(in_rate, out_rate)
        self._up, self._down = out_rate // g, in_rate // g
        self._table, self._half = _kernel(self._up, self._down, zero_crossings)
        self._reset()

    def _reset(self) -> None:
        # input samples kept, starting at absolute input index _origin (negative: zeros
        # before the stream, so the first outputs have their look-behind)
        self._buffer: F64 = np.zeros(self._half, dtype=np.float64)
        self._origin = -self._half
        self._fed = 0  # input samples received
        self._made = 0  # output samples produced

    @property
    def in_rate(self) -> int:
        return self._in_rate

    @property
    def out_rate(self) -> int:
        return self._out_rate

    @property
    def delay_s(self) -> float:
        """Seconds of audio fed in but not yet returned (the look-ahead still missing)."""
        if self._up == self._down:
            return 0.0
        return max(self._fed / self._in_rate - self._made / self._out_rate, 0.0)

    def process(self, pcm: bytes) -> bytes:
        """Convert the next chunk of the stream: every output sample it makes computable.

        Raises ValueError for an odd number of bytes, which cannot be whole samples.
        """
        if len(pcm) % 2:
            raise ValueError(f"PCM16 audio must be whole 2-byte samples, got {len(pcm)} bytes")
        if self._up == self._down or not pcm:
            return pcm
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
        self._buffer = np.concatenate([self._buffer, samples])
        self._fed += samples.size
        # output n needs input up to floor(n * down / up) + half
        last = ((self._fed - self._half) * self._up - 1) // self._down
        return self._produce(last)

    def flush(self) -> bytes:
        """End the stream: the remaining output (silence is assumed after the last sample),
        then start afresh, ready for a new stream."""
        if self._up == self._down:
            return b""
        self._buffer = np.concatenate([self._buffer, np.zeros(self._half, dtype=np.float64)])
        total = (2 * self._fed * self._up + self._down) // (2 * self._down)  # round half up
        tail = self._produce(total - 1)
        self._reset()
        return tail

    def _produce(self, last: int) -> bytes:
        # in blocks, so a long buffer never builds one huge [outputs, taps] matrix
        parts = []
        while self._made <= last:
            parts.append(self._produce_block(min(last, self._made + _BLOCK - 1)))
        return b"".join(parts)

    def _produce_block(self, last: int) -> bytes:
        first = self._made
        n = np.arange(first, last + 1, dtype=np.int64)
        base = n * self._down // self._up
        phase = n * self._down - base * self._up
        index = base[:, None] + np.arange(-self._half + 1, self._half + 1) - self._origin
        out: F64 = np.einsum("ij,ij->i", self._buffer[index], self._table[phase])
        self._made = last + 1
        # keep only what the next output still needs
        keep_from = (self._made * self._down // self._up) - self._half + 1
        drop = keep_from - self._origin
        if drop > 0:
            self._buffer = self._buffer[drop:]
            self._origin = keep_from
        return bytes(np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes())


def resample(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    """Convert a whole buffer of PCM16 mono audio: ``process`` and ``flush`` in one call."""
    resampler = Resampler(in_rate, out_rate)
    return resampler.process(pcm) + resampler.flush()
