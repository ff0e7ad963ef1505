"""WAV (RIFF/WAVE) files held in memory, pure: what a provider that answers with a WAV
file (Google's LINEAR16 and MULAW) sent, in any chunk order."""

from __future__ import annotations

import struct
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WavAudio:
    """What a RIFF/WAVE file holds: its format tag (1: PCM, 7: mu-law), channels, rate, bits
    per sample, and the bytes of its ``data`` chunk."""

    format_tag: int
    channels: int
    sample_rate: int
    bits: int
    data: bytes


def parse_wav(blob: bytes) -> WavAudio:
    """Parse a WAV file held in memory (any chunk order; WAVE_FORMAT_EXTENSIBLE is read as its
    sub-format; a ``data`` size past the end is cut to what is there). Raises ValueError."""
    if len(blob) < 12 or blob[:4] != b"RIFF" or blob[8:12] != b"WAVE":
        raise ValueError("no RIFF/WAVE header")
    fmt: tuple[int, int, int, int] | None = None
    pos = 12
    while pos + 8 <= len(blob):
        kind, size = blob[pos : pos + 4], struct.unpack_from("<I", blob, pos + 4)[0]
        body = pos + 8
        if kind == b"fmt ":
            if size < 16 or body + 16 > len(blob):
                raise ValueError("short fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", blob, body)
            if tag == 0xFFFE and size >= 40 and body + 26 <= len(blob):
                tag = struct.unpack_from("<H", blob, body + 24)[0]
            fmt = (tag, channels, rate, bits)
        elif kind == b"data":
            if fmt is None:
                raise ValueError("data chunk before the fmt chunk")
            return WavAudio(*fmt, data=blob[body : body + size])
        pos = body + size + (size & 1)
    raise ValueError("no data chunk" if fmt else "no fmt chunk")
