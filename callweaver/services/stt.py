"""The speech-to-text interface: one utterance of caller audio in, its transcript out.

An STT provider (local whisper, later the cloud ones) implements :class:`STT`. The STT node
(:mod:`callweaver.processors.stt`) cuts the caller's audio into utterances at the turn's
edges and hands each one to its provider, which may be a :class:`~.failover.FailoverSTT`
holding several.

A provider that can also hear the caller while they speak (Azure) implements
:class:`StreamingSTT` beside it: :meth:`~StreamingSTT.open` at the start of speech gives an
:class:`STTStream`; the node pushes the caller's audio into it as it arrives, reads interim
transcripts from :meth:`~STTStream.partials` while the caller speaks, and calls
:meth:`~STTStream.finish` at the end of the turn for the final transcript. The service has
heard the utterance by then, so the final result comes sooner than from a whole utterance
sent at the end; a provider without it (whisper) is simply not streamed to.

A stream's life::

    stream = provider.open("en-US", 16000)    # never blocks: connecting happens behind it
    stream.push(pcm)                          # each chunk as it arrives, never blocks
    async for partial in stream.partials():   # (another task) the utterance so far
        ...
    final = await stream.finish()             # end of the audio: the whole transcript
    await stream.cancel()                     # or: not wanted after all (always safe)

A stream's failure (a refused connection, a socket cut mid-turn, no result in time) ends its
partials and is raised by :meth:`~STTStream.finish`, as a
:class:`~callweaver.errors.ProviderError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


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


class STTStream(Protocol):
    """One utterance heard as it is spoken (see the module docstring)."""

    def push(self, pcm: bytes) -> None:
        """The next chunk of the utterance: mono PCM16 (whole samples) at the rate given to
        ``open``. Never blocks and never raises; audio pushed after :meth:`finish` is
        ignored."""
        ...

    def partials(self) -> AsyncIterator[Transcript]:
        """Interim transcripts, each of the whole utterance so far, as the provider revises
        them. Ends when the stream is finished, fails or is cancelled; one reader."""
        ...

    async def finish(self) -> Transcript:
        """The utterance has ended: its final transcript. Raises
        :class:`~callweaver.errors.ProviderError`; cancelling it cancels the stream."""
        ...

    async def cancel(self) -> None:
        """Abandon the utterance and release what it holds; safe at any time, and twice."""
        ...


@runtime_checkable
class StreamingSTT(STT, Protocol):
    """An STT provider that can also transcribe while the caller speaks."""

    def open(self, language: str, sample_rate: int) -> STTStream:
        """Start an utterance in ``language`` (a hint, as :attr:`Utterance.language`) of
        PCM16 at ``sample_rate``. Needs a running event loop; never blocks."""
        ...


def streaming(provider: STT) -> StreamingSTT | None:
    """``provider`` as a :class:`StreamingSTT`, or None when it cannot stream."""
    return provider if isinstance(provider, StreamingSTT) else None
