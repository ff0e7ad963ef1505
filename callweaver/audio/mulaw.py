"""G.711 mu-law, the telephone network's 8-bit audio, to and from 16-bit linear PCM.

Both directions are one table lookup per sample. The tables are built once at import from the
G.711 algorithm: the magnitude of a sample, clipped to 32635 and biased by 0x84, falls into one
of eight segments (the position of its leading one bit); the code keeps the sign, the segment
and the next four bits of the magnitude, all bits inverted. Decoding returns the middle of the
interval a code stands for, so the error of a round trip is at most half a quantisation step:
4 near zero, 512 in the loudest segment (plus whatever was clipped above 32635).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["pcm16_to_ulaw", "ulaw_to_pcm16"]

_BIAS = 0x84
_CLIP = 32635


def _decode_table() -> npt.NDArray[np.int16]:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    negative = (code & 0x80) != 0
    segment = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << segment) - _BIAS
    return np.where(negative, -magnitude, magnitude).astype("<i2")


def _encode_table() -> npt.NDArray[np.uint8]:
    # Index i is the uint16 view of a little-endian sample: i >= 0x8000 is negative.
    sample = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    sign = np.where(sample < 0, 0x80, 0)
    biased = np.minimum(np.abs(sample), _CLIP) + _BIAS  # 132 ..= 32767
    # The segment is the index of the leading one bit among bits 7..14: frexp is exact here.
    segment = np.frexp((biased >> 7).astype(np.float64))[1] - 1
    mantissa = (biased >> (segment + 3)) & 0x0F
    code: npt.NDArray[np.int32] = ~(sign | (segment << 4) | mantissa) & 0xFF
    return code.astype(np.uint8)


_DECODE = _decode_table()
_ENCODE = _encode_table()


def ulaw_to_pcm16(data: bytes) -> bytes:
    """Decode mu-law bytes to PCM16 little-endian: n bytes in, 2n bytes out."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)].tobytes()


def pcm16_to_ulaw(data: bytes) -> bytes:
    """Encode PCM16 little-endian to mu-law: 2n bytes in, n bytes out.

    Raises ValueError for an odd number of bytes, which cannot be whole samples.
    """
    if len(data) % 2:
        raise ValueError(f"PCM16 audio must be whole 2-byte samples, got {len(data)} bytes")
    index: npt.NDArray[np.uint16] = np.frombuffer(data, dtype="<u2")
    return _ENCODE[index].tobytes()
