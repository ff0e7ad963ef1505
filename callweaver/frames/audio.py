"""Audio frames: 16-bit little-endian PCM chunks, caller audio in and reply audio out."""

from __future__ import annotations

from dataclasses import dataclass

from callweaver.frames.base import Frame

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioFrame(Frame):
    """A chunk of PCM16 audio.

    ``pts_ns`` is the audio-clock time of the chunk's first sample, counted from the start of
    its stream: VAD and latency accounting use it to find the exact first and last voiced
    sample, whatever the network did to arrival times.
    """

    pcm: bytes
    sample_rate: int
    channels: int = 1
    pts_ns: int = 0

    @property
    def num_samples(self) -> int:
        """Samples per channel."""
        return len(self.pcm) // (2 * self.channels)

    @property
    def duration_ns(self) -> int:
        return self.num_samples * _NS_PER_S // self.sample_rate


@dataclass(frozen=True, slots=True, kw_only=True)
class InputAudioFrame(AudioFrame):
    """Caller audio. Real time: when an inbox overflows the oldest chunk is dropped."""

    lossy = True


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputAudioFrame(AudioFrame):
    """Reply audio for the caller; dropped if its turn is interrupted."""

    interruptible = True
