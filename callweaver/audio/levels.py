"""Signal level of PCM16 audio."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["level_dbfs"]


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
