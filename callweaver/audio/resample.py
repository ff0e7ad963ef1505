"""Sample-rate conversion of PCM16 mono audio, one stateful resampler per stream.

A call converts between the rates of its ends (8 kHz telephony, 16 kHz for most speech models,
22.05/24 kHz from TTS engines, 48 kHz WebRTC) chunk by chunk, as the audio arrives. The
filtering is libsoxr's (through the ``soxr`` package), which keeps a filter state across
chunks: feeding a stream in chunks of any size gives exactly the output of feeding it whole,
so chunk borders leave no clicks.

Timing. The output is time-aligned with the input: its sample k is the input signal at
``k / out_rate`` seconds after the first input sample, with no lag (libsoxr trims the filter's
own delay). What a stream does have is latency: libsoxr filters in blocks and holds back what
it cannot finish yet, so output arrives in bursts and trails the input by ``delay_s``, which
moves within a fixed range chunk by chunk and never grows. ``flush`` returns what is held back
at the end of a stream. In total a stream of n input samples gives the whole number of
output samples nearest to ``n * out_rate / in_rate`` (libsoxr rounds an exact half either way).

Samples are filtered as float32 and rounded to int16 here. libsoxr's own int16 output is not
used: it adds dither noise, which would turn digital silence into noise and make the output
depend on how the input was chunked.
"""

from __future__ import annotations

from typing import Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt
import soxr

__all__ = ["Quality", "Resampler", "resample"]

Quality = Literal["VHQ", "HQ", "MQ", "LQ"]
"""libsoxr's quality presets, best (and most latency) first.

The fifth preset, "QQ" (cubic interpolation, no anti-alias filter), is left out: it is not
fit for speech, and soxr 1.0 streaming with it fails (``MemoryError``) when a chunk is flushed
while libsoxr reports a negative delay.
"""

_QUALITIES: Final = frozenset(get_args(Quality))
_EMPTY: Final = np.zeros(0, dtype=np.float32)


class Resampler:
    """Converts one stream of PCM16 mono audio from ``in_rate`` to ``out_rate``.

    Keep one per stream and direction: it carries the filter state from chunk to chunk. With
    equal rates it is a pass-through that returns its input unchanged.
    """

    __slots__ = ("_in_rate", "_out_rate", "_quality", "_stream")

    def __init__(self, in_rate: int, out_rate: int, *, quality: Quality = "HQ") -> None:
        for name, rate in (("in_rate", in_rate), ("out_rate", out_rate)):
            if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
                raise ValueError(f"{name} must be a positive int (Hz), got {rate!r}")
        if quality not in _QUALITIES:
            raise ValueError(f"quality must be one of {sorted(_QUALITIES)}, got {quality!r}")
        self._in_rate = in_rate
        self._out_rate = out_rate
        self._quality = quality
        self._stream: Any = None if in_rate == out_rate else self._new_stream()

    def _new_stream(self) -> Any:
        return soxr.ResampleStream(
            self._in_rate, self._out_rate, 1, dtype="float32", quality=self._quality
        )

    @property
    def in_rate(self) -> int:
        return self._in_rate

    @property
    def out_rate(self) -> int:
        return self._out_rate

    @property
    def delay_s(self) -> float:
        """Seconds of audio fed in but not yet returned: the latency this stream adds now.

        Input seconds fed equal output seconds returned plus ``delay_s``. It is 0 before the
        first chunk, after ``flush`` and for a pass-through. It is not a shift of the output
        in time, which has none (see the module docstring).
        """
        if self._stream is None:
            return 0.0
        return float(self._stream.delay()) / self._out_rate

    def process(self, pcm: bytes) -> bytes:
        """Convert the next chunk of the stream; the output may be shorter, longer or empty.

        Raises ValueError for an odd number of bytes, which cannot be whole samples.
        """
        if len(pcm) % 2:
            raise ValueError(f"PCM16 audio must be whole 2-byte samples, got {len(pcm)} bytes")
        if self._stream is None or not pcm:
            return pcm
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
        return _to_pcm16(self._stream.resample_chunk(samples))

    def flush(self) -> bytes:
        """End the stream: return the audio still held back, and start afresh.

        After a flush the resampler takes a new stream, as if just created.
        """
        if self._stream is None:
            return b""
        tail = _to_pcm16(self._stream.resample_chunk(_EMPTY, last=True))
        self._stream.clear()
        return tail


def resample(pcm: bytes, in_rate: int, out_rate: int, *, quality: Quality = "HQ") -> bytes:
    """Convert a whole buffer of PCM16 mono audio: ``process`` and ``flush`` in one call."""
    resampler = Resampler(in_rate, out_rate, quality=quality)
    return resampler.process(pcm) + resampler.flush()


def _to_pcm16(samples: npt.NDArray[np.float32]) -> bytes:
    # The filter overshoots near full scale (Gibbs ringing), so clip before narrowing.
    return np.clip(np.rint(samples), -32768, 32767).astype("<i2").tobytes()
