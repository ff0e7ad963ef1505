"""The text-to-speech interface: a sentence in, its audio out as a stream of chunks.

A TTS provider (piper, flite, espeak-ng, the cloud ones) implements :class:`TTS`. The TTS node
(:mod:`callweaver.processors.tts`) speaks the reply sentence by sentence, resampling each
chunk to the transport's rate; the provider may be a :class:`~.failover.FailoverTTS`.

A provider that can take text while it is still being written (ElevenLabs' ``stream-input``
WebSocket, Azure's text stream) also implements :class:`StreamingTTS`: one stream of text
pieces in (an LLM's tokens), audio out as soon as the provider has enough text to speak, so
a long first sentence starts playing before it has been written to its end. Such a provider
says so with ``streams_text`` (ElevenLabs over HTTP has the method but only gathers the text).

A cloud provider whose output format is left to ``auto`` in its params speaks what the
transport sends, so the audio is not resampled on its way out: the TTS node calls its
``prefer_output(sample_rate, mulaw)`` at call start with the transport's rate, and whether the
transport sends 8 kHz mu-law (Twilio). The provider asks its service for that rate
(:func:`nearest_rate` of what the service offers) and for mu-law where the service has it
(half the bytes on the provider's connection; decoded here, encoded again by the transport,
which gives the same bytes back).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Speech:
    """A chunk of synthesized speech: mono PCM16 at ``sample_rate``."""

    pcm: bytes
    sample_rate: int
    text: str = ""
    """The text whose speech starts in this chunk, when the provider tells (ElevenLabs'
    alignment, Azure's word boundaries); a text stream that breaks mid-way resumes after it."""
    words: tuple[tuple[float, str], ...] = ()
    """Where the words of ``text`` start, when the provider says: (seconds from the start of
    this chunk, negative for a word reported after its audio had begun; the word)."""

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


class StreamingTTS(TTS, Protocol):
    """A provider that speaks text as it is written (see the module docstring)."""

    streams_text: bool
    """False when :meth:`synthesize_stream` only gathers the text first (no gain)."""

    def synthesize_stream(
        self, texts: AsyncIterator[str], language: str = ""
    ) -> AsyncIterator[Speech]:
        """Speak the pieces of ``texts`` as one utterance: each piece goes to the provider as
        it arrives (pieces join as they are: spaces are the pieces' own), audio comes back
        as soon as there is some; the end of ``texts`` ends the utterance. An error of
        ``texts`` itself is raised as it is; the provider's are
        :class:`~callweaver.errors.ProviderError`. The first-audio timeout runs from the end
        of the input, or earlier from the provider's own rule (enough text buffered)."""
        ...


def streams_text(provider: object) -> bool:
    """Does ``provider`` speak text as it arrives (:class:`StreamingTTS` with
    ``streams_text``)?"""
    return bool(getattr(provider, "streams_text", False)) and callable(
        getattr(provider, "synthesize_stream", None)
    )


def nearest_rate(offered: Iterable[int], want: int) -> int:
    """The rate to ask a provider for when the transport plays ``want``: ``want`` itself if
    offered, else the lowest offered rate above it (resampled down, no detail lost), else the
    highest offered."""
    rates = sorted(set(offered))
    if not rates:
        raise ValueError("no rates offered")
    return next((r for r in rates if r >= want), rates[-1])
