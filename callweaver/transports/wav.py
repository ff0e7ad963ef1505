"""WAV files <-> mono PCM16: pure functions, no I/O beyond the file handed in.

Reads 8/16/24/32-bit integer PCM at any sample rate, mono or multi-channel (mixed down to
mono); writes 16-bit mono.
"""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from callweaver.errors import CallweaverError


class WavError(CallweaverError):
    """A file is not a WAV this module can read."""


@dataclass(frozen=True, slots=True)
class Pcm:
    """Mono PCM16 little-endian audio and its sample rate."""

    data: bytes
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.data) / 2 / self.sample_rate


def read_wav(path: str | Path) -> Pcm:
    """Read a WAV file as mono PCM16, mixing channels down by averaging."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise WavError(f"{path}: not a PCM WAV file ({exc})") from exc
    return Pcm(_to_mono16(raw, channels, width), rate)


def _to_mono16(raw: bytes, channels: int, width: int) -> bytes:
    if width == 1:
        samples = (np.frombuffer(raw, np.uint8).astype(np.int32) - 128) << 8
    elif width == 2:
        samples = np.frombuffer(raw, "<i2").astype(np.int32)
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        samples = ((b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)) << 8) >> 16
    elif width == 4:
        samples = np.frombuffer(raw, "<i4").astype(np.int64) >> 16
    else:
        raise WavError(f"unsupported sample width: {width} bytes")
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    return np.asarray(samples).astype("<i2").tobytes()


def wav_bytes(pcm: Pcm) -> bytes:
    """Encode mono PCM16 as a WAV file's bytes."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(pcm.sample_rate)
        w.writeframes(pcm.data)
    return buf.getvalue()


def write_wav(path: str | Path, pcm: Pcm) -> None:
    Path(path).write_bytes(wav_bytes(pcm))
