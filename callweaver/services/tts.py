"""The text-to-speech interface: a sentence in, its audio out as a stream of chunks.

A TTS provider (piper, flite, espeak-ng, later the cloud ones) implements :class:`TTS`. The
TTS node (:mod:`callweaver.processors.tts`) speaks the reply sentence by sentence, resampling
each chunk to the transport's rate; the provider may be a :class:`~.failover.FailoverTTS`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Speech:
    """A chunk of synthesized speech: mono PCM16 at ``sample_rate``."""

    pcm: bytes
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


class TTS(Protocol):
    """A text-to-speech provider. ``name`` keys its circuit breaker."""

    name: str

    async def aclose(self) -> None:
        """Release what the provider holds (connections); the process-wide models stay."""
        ...

    def synthesize(self, text: str, language: str = "") -> AsyncIterator[Speech]:
        """Speak ``text``: an async iterator of audio chunks, the first as soon as the
        provider has it. Raises :class:`~callweaver.errors.ProviderError` (on the first
        ``__anext__`` or later)."""
        ...
