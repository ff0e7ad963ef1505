"""TTS failover: audio from the first provider that speaks well, sentence or text stream.

:class:`FailoverTTS` is a :class:`~callweaver.services.tts.TTS` on the stream failover of
:mod:`callweaver.services.failover.streams`. Its audio is checked before it is let through
(:func:`~callweaver.audio.levels.speech_problem`): a provider that returns noise, clipped
audio, or 1.5 s of silence (or a whole sentence of it) has failed. A sentence may be hedged
(``hedge_after_s``).

A text stream (:meth:`FailoverTTS.synthesize_stream`, an LLM's tokens) goes to one provider
at a time, as a stream if it takes one, else sentence by sentence
(:mod:`callweaver.services.text_stream`); its first-audio timeout runs from the first
complete sentence (or the end of the text), and it is not hedged. Before the first audio the
next provider gets the whole text so far, then the rest; after it (the one exception to the
rule that a stream stays with the provider that delivered) the next provider takes over at
the next sentence boundary after what the caller heard, as far as the provider tells
(ElevenLabs' alignment, Azure's word boundaries; otherwise estimated from the audio's
duration): the sentence in progress is cut rather than repeated.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from callweaver.audio.levels import level_dbfs, speech_problem
from callweaver.errors import ProviderError, ProvidersExhausted
from callweaver.services.failover.base import Switch, SwitchObserver, _reason
from callweaver.services.failover.streams import _StreamFailover
from callweaver.services.health import ProviderHealth
from callweaver.services.text_stream import TextStream, by_sentence, heard_chars, resume_at
from callweaver.services.tts import TTS, Speech, StreamingTTS, streams_text

_SILENCE_VERDICT_MS = 1500  # this much silence at the start of a sentence is a failure


class FailoverTTS(_StreamFailover[TTS]):
    """A TTS over several; the timeout is on the first audio, and the first ``check_ms`` of
    audio (or the whole sentence, if shorter) must pass the speech check before any of it
    is let through."""

    stage = "tts"

    def __init__(
        self,
        providers: Sequence[TTS],
        *,
        first_timeout_s: float,
        check_ms: int = 250,
        hedge_after_s: float | None = None,
        health: ProviderHealth | None = None,
        on_switch: SwitchObserver | None = None,
    ) -> None:
        super().__init__(
            providers, first_timeout_s=first_timeout_s, health=health, on_switch=on_switch
        )
        self.check_ms = check_ms
        if hedge_after_s is not None and not 0 < hedge_after_s < first_timeout_s:
            raise ValueError("hedge_after_s must be between 0 and first_timeout_s")
        self.hedge_after_s = hedge_after_s

    def prefer_output(self, sample_rate: int, mulaw: bool) -> None:
        """Tell every provider that chooses its output format the transport's (see
        :mod:`callweaver.services.tts`); call before :meth:`warm`."""
        for provider in self.providers:
            prefer = getattr(provider, "prefer_output", None)
            if prefer is not None:
                prefer(sample_rate, mulaw)

    def _cost(self, request: Any) -> int:
        if isinstance(request, _TextRequest):
            return len(request.stream.text) - request.start
        text, _ = request
        return len(text)

    def _hedgeable(self, request: Any) -> bool:
        return not isinstance(request, _TextRequest)

    def _arm(self, request: Any, timer: asyncio.Timeout) -> Callable[[], None]:
        """A text stream owes its first audio only once there is something to speak."""
        if not isinstance(request, _TextRequest):
            return super()._arm(request, timer)
        stream, start = request.stream, request.start
        if stream.speakable_from(start):
            return super()._arm(request, timer)

        def check() -> None:
            if stream.speakable_from(start):
                stop()
                super(FailoverTTS, self)._arm(request, timer)

        stop = stream.watch(check)
        return stop

    def _open(self, provider: TTS, request: Any) -> AsyncIterator[Speech]:
        if isinstance(request, _TextRequest):
            texts = request.stream.read(request.start)
            if streams_text(provider):
                streaming: StreamingTTS = provider  # type: ignore[assignment]
                return streaming.synthesize_stream(texts, request.language)
            return by_sentence(provider, texts, request.language)
        text, language = request
        return provider.synthesize(text, language)

    def _enough(self, first: list[Any]) -> bool:
        ms = sum(s.duration_s for s in first) * 1000
        if ms >= _SILENCE_VERDICT_MS:
            return True
        # leading silence is normal: judge once some of the audio is sound
        return ms >= self.check_ms and level_dbfs(b"".join(s.pcm for s in first)) > -60

    def _check(self, first: list[Any], done: bool) -> str | None:
        if not first:
            return "no audio"
        rates = {s.sample_rate for s in first}
        if len(rates) > 1:
            return f"sample rate changed mid-sentence ({sorted(rates)})"
        whole = done or sum(s.duration_s for s in first) * 1000 >= _SILENCE_VERDICT_MS
        return speech_problem(b"".join(s.pcm for s in first), first[0].sample_rate, final=whole)

    def synthesize(self, text: str, language: str = "") -> AsyncIterator[Speech]:
        return self._stream((text, language), language)

    @property
    def streams_text(self) -> bool:
        """Does the provider tried first take a text stream? (The others serve one too.)"""
        return streams_text(self._order()[0])

    async def synthesize_stream(
        self, texts: AsyncIterator[str], language: str = ""
    ) -> AsyncIterator[Speech]:
        """Speak a text stream (module docstring: failover of a text stream)."""
        stream = TextStream(texts)
        pump = asyncio.ensure_future(stream.pump())  # owned here, cancelled in `finally`
        failed: list[TTS] = []
        start = 0
        try:
            while True:
                if not await _anything_from(stream, start):
                    return  # nothing (more) to say: no provider is asked
                winner: list[TTS] = []
                heard: list[Speech] = []
                request = _TextRequest(stream, start, language)
                try:
                    async for speech in self._stream(
                        request, language, skip=failed, on_winner=winner.append
                    ):
                        heard.append(speech)
                        yield speech
                    return
                except ProviderError as exc:
                    if isinstance(exc, ProvidersExhausted) or not winner:
                        raise
                    failed.append(winner[0])
                    self.switches += 1
                    if self.on_switch is not None:
                        left = [p for p in self.providers if p not in failed]
                        nxt = self._name(left[0]) if left else None
                        reason = f"mid-stream: {_reason(exc)}"
                        self.on_switch(Switch(self.stage, self._name(winner[0]), nxt, reason))
                    start = await resume_at(stream, start + heard_chars(heard))
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)


async def _anything_from(stream: TextStream, start: int) -> bool:
    """Wait until the text from ``start`` has something to say (False: it ended without)."""
    while not any(c.isalnum() for c in stream.text[start:]):
        if stream.ended:
            return False
        await stream.changed()
    return True


@dataclass(frozen=True, slots=True)
class _TextRequest:
    """A text stream to speak from ``start`` (an offset into its text)."""

    stream: TextStream
    start: int
    language: str
