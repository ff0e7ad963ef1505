"""STT failover: a transcript from the first provider that gives one.

:class:`FailoverSTT` is an :class:`~callweaver.services.stt.STT`; its first-result timeout
covers the whole transcription. An STT stream (:meth:`FailoverSTT.open`) goes to the first
provider that may take the request if it streams; when that stream fails, up to and including
its ``finish`` (an error, no final transcript within the timeout), the whole utterance goes to
the next providers' ``transcribe``: the caller's words are never lost to a broken stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from callweaver.errors import ProvidersExhausted
from callweaver.services.failover.base import Failover
from callweaver.services.health import CircuitBreaker
from callweaver.services.stt import STT, STTStream, Transcript, Utterance, streaming


class FailoverSTT(Failover[STT]):
    """An STT over several; the first-result timeout covers the whole transcription (for a
    stream: from its ``finish`` to the final transcript)."""

    stage = "stt"

    async def transcribe(self, utterance: Utterance) -> Transcript:
        attempts: list[tuple[str, str]] = []
        candidates = self._candidates(utterance.language, attempts)
        return await self._transcribe(utterance, candidates, 0, attempts)

    def open(self, language: str, sample_rate: int) -> FailoverSTTStream:
        """Stream an utterance through the first provider that may take it, when that one
        streams (:attr:`FailoverSTTStream.live`); otherwise the stream only keeps the audio
        and ``finish`` transcribes it as :meth:`transcribe` would."""
        return FailoverSTTStream(self, language, sample_rate)

    async def _transcribe(
        self,
        utterance: Utterance,
        candidates: Sequence[STT],
        start: int,
        attempts: list[tuple[str, str]],
    ) -> Transcript:
        """Transcribe with ``candidates[start:]`` in turn."""
        for i in range(start, len(candidates)):
            provider = candidates[i]
            breaker = self._admit(provider, attempts)
            if breaker is None:
                continue
            try:
                async with asyncio.timeout(self.first_timeout_s):
                    result = await provider.transcribe(utterance)
            except (Exception, TimeoutError) as exc:
                self._failed(provider, breaker, exc, attempts, candidates[i + 1 :])
                continue
            except asyncio.CancelledError:
                breaker.release()
                raise
            self._succeeded(provider, breaker, switched=i > 0)
            return result
        raise ProvidersExhausted(self.stage, attempts)


class FailoverSTTStream:
    """An utterance streamed through a :class:`FailoverSTT` (see :meth:`FailoverSTT.open`).

    It keeps the audio pushed, for the providers after a failed stream; ``finish`` may be
    given the utterance to hand them instead (the STT node's, cut at the end of speech)."""

    def __init__(self, failover: FailoverSTT, language: str, sample_rate: int) -> None:
        self._failover = failover
        self.language, self.sample_rate = language, sample_rate
        self._attempts: list[tuple[str, str]] = []
        self._candidates = failover._candidates(language, self._attempts)
        self._audio = bytearray()
        self._next = len(self._candidates)  # where transcribe() takes over
        self._inner: tuple[STT, CircuitBreaker, STTStream] | None = None  # until its verdict
        self._stream: STTStream | None = None  # the provider's stream, for its partials
        self._done = False
        for i, provider in enumerate(self._candidates):
            breaker = failover._admit(provider, self._attempts)
            if breaker is None:
                continue
            streamer = streaming(provider)
            if streamer is None:  # the provider to try first does not stream
                breaker.release()
                self._next = i
            else:
                self._stream = streamer.open(language, sample_rate)
                self._inner = (provider, breaker, self._stream)
                self._next = i + 1
            break

    @property
    def live(self) -> bool:
        """Is a provider hearing the utterance as it is pushed?"""
        return self._stream is not None

    def push(self, pcm: bytes) -> None:
        if self._done:
            return
        self._audio += pcm
        if self._inner is not None:
            self._inner[2].push(pcm)

    async def partials(self) -> AsyncIterator[Transcript]:
        """The streaming provider's interim transcripts; none once it has failed."""
        if self._stream is None:
            return
        with contextlib.suppress(Exception):
            async for partial in self._stream.partials():
                yield partial

    async def finish(self, utterance: Utterance | None = None) -> Transcript:
        """The final transcript: from the stream, else from the next providers, which get
        ``utterance`` (default: the audio pushed). Raises
        :class:`~callweaver.errors.ProvidersExhausted`."""
        self._done = True
        failover = self._failover
        if utterance is None:
            utterance = Utterance(bytes(self._audio), self.sample_rate, self.language)
        self._audio = bytearray()
        inner, self._inner = self._inner, None
        if inner is not None:
            provider, breaker, stream = inner
            at = self._next - 1
            try:
                async with asyncio.timeout(failover.first_timeout_s):
                    result = await stream.finish()
            except (Exception, TimeoutError) as exc:
                await stream.cancel()
                rest = self._candidates[self._next :]
                failover._failed(provider, breaker, exc, self._attempts, rest)
            except asyncio.CancelledError:
                breaker.release()
                raise
            else:
                failover._succeeded(provider, breaker, switched=at > 0)
                return result
        return await failover._transcribe(utterance, self._candidates, self._next, self._attempts)

    async def cancel(self) -> None:
        """Abandon the utterance: the streaming provider is not blamed."""
        self._done = True
        self._audio = bytearray()
        inner, self._inner = self._inner, None
        if inner is not None:
            _, breaker, stream = inner
            breaker.release()
            await stream.cancel()
