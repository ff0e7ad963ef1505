"""Signal level of PCM16 audio."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["NOISE_FLATNESS", "level_dbfs", "spectral_flatness", "speech_problem"]

NOISE_FLATNESS = 0.33
"""Above this, audio is noise, not speech: between speech's 0.25 and white noise's 0.41."""


def level_dbfs(pcm: bytes) -> float:
    """RMS level of PCM16 audio in dB relative to full scale (-inf for digital silence).

    Full scale is 32768, so a full-scale sine measures -3.01 dBFS and a full-scale square
    wave 0 dBFS.
    """
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    if samples.size == 0:
        return -math.inf
    rms = math.sqrt(float(np.mean(samples * samples)))
    return 20 * math.log10(rms / 32768) if rms > 0 else -math.inf


def spectral_flatness(pcm: bytes, frame: int = 512) -> float:
    """Wiener entropy of PCM16 audio, averaged over frames that are not silent: about 0.41
    for white noise through this Hann-windowed periodogram (0.56 without the window), at most
    0.25 for speech (the 100 ms pieces of flite, espeak-ng and piper sentences measured 0.00-
    0.25). 0 when there is no loud-enough frame."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768
    n = samples.size // frame
    if n == 0:
        return 0.0
    frames = samples[: n * frame].reshape(n, frame)
    loud = frames[np.sqrt(np.mean(frames * frames, axis=1)) > 10 ** (-45 / 20)]
    if loud.shape[0] == 0:
        return 0.0
    power = np.abs(np.fft.rfft(loud * np.hanning(frame), axis=1))[:, 1:] ** 2 + 1e-12
    flatness = np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)
    return float(np.mean(flatness))


def speech_problem(pcm: bytes, sample_rate: int, *, final: bool) -> str | None:
    """Why ``pcm`` cannot be a provider's synthesized speech, or None when it can: a torn
    sample, an impossible rate, mostly clipped, noise-like, or (``final``: the whole of
    it) silent."""
    if len(pcm) % 2:
        return f"odd byte count {len(pcm)}: not PCM16"
    if not 4000 <= sample_rate <= 96000:
        return f"sample rate {sample_rate} Hz"
    samples = np.frombuffer(pcm, dtype="<i2")
    if samples.size == 0:
        return "no audio" if final else None
    clipped = float(np.mean(np.abs(samples.astype(np.int32)) >= 32000))
    if clipped > 0.05:
        return f"{clipped:.0%} of samples clipped"
    flatness = spectral_flatness(pcm)
    if flatness > NOISE_FLATNESS:
        return f"noise, not speech (spectral flatness {flatness:.2f})"
    if final and level_dbfs(pcm) < -60:
        return "silence"
    return None
