"""The speech-to-text interface: one utterance of caller audio in, its transcript out.

An STT provider (local whisper, later the cloud ones) implements :class:`STT`. The STT node
(:mod:`callweaver.processors.stt`) cuts the caller's audio into utterances at the turn's
edges and hands each one to its provider, which may be a :class:`~.failover.FailoverSTT`
holding several.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Utterance:
    """Caller speech to transcribe: mono PCM16 and its rate; ``language`` is a hint (BCP-47
    or a bare ISO 639-1 code, empty for "the provider's default")."""

    pcm: bytes
    sample_rate: int
    language: str = ""

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


@dataclass(frozen=True, slots=True)
class Transcript:
    """What the caller said. ``language`` is what the provider heard (may be empty)."""

    text: str
    language: str = ""
    confidence: float | None = None


class STT(Protocol):
    """A speech-to-text provider. ``name`` keys its circuit breaker."""

    name: str

    async def aclose(self) -> None:
        """Release what the provider holds (connections); the process-wide models stay."""
        ...

    async def transcribe(self, utterance: Utterance) -> Transcript:
        """Transcribe one utterance. Raises :class:`~callweaver.errors.ProviderError`."""
        ...
