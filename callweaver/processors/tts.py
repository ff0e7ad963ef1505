"""The text-to-speech node: reply text in, reply audio out at the transport's rate.

Each complete sentence (:class:`ReplyTextFrame` with ``sentence``; streamed pieces are joined
into sentences first) is synthesized at once and its audio leaves in ``chunk_ms`` frames as
the provider delivers it, at the rate the transport announced in its :class:`StartFrame` (or
``sample_rate``): cloud providers whose format is ``auto`` are asked for that rate, and for
mu-law when the transport sends it; other audio is resampled. So the first sentence plays
while the next is being synthesized. A long first sentence is spoken clause first
(``lead_clause``): synthesis time grows with the text, so the caller hears the reply start
sooner. The first chunk marks ``first_tts_audio`` in the turn's latency.

Providers fail over (:class:`~callweaver.services.failover.FailoverTTS`: an error, no first
audio within ``first_audio_timeout_s``, or audio that is not speech moves the sentence to the
next provider). When every provider has failed, the caller hears ``fallback_text``, spoken
once at start-up (cached per process) for exactly this case, and the call goes on; each
failed sentence is recorded in the call's report.

With ``stream_text`` and a provider that takes text as it is written
(:class:`~callweaver.services.tts.StreamingTTS`: ElevenLabs' WebSocket, Azure), a turn's
text goes into *one* provider stream as it arrives instead: the LLM's tokens when the reply
node streams them (its ``stream_tokens``), else its sentences. The provider starts speaking
once it has enough text (ElevenLabs: the first sentence or ``chunk_length_schedule``
characters), so a long first sentence is heard before it is written to its end. Failover
keeps its guarantees (:meth:`FailoverTTS.synthesize_stream`); barge-in closes the stream.

Reply text frames are passed on ahead of their audio (a transport may show them), always as
sentences: streamed pieces are joined first, so no transport shows a reply twice or in
tokens. Every other frame passes through.

With ``audio_cache``, a sentence any caller may hear (``ReplyTextFrame.cacheable``: declared
answers, cached replies, an LLM marked cacheable) plays from the store when this voice said it
before, and is kept once the first provider has said it whole. A :class:`PrefetchFrame`
(consumed here) names reply texts likely to be said soon: their sentences not held yet are
made with the first provider while no reply is being spoken (a reply that starts cancels the
one in flight, made again later), within the ``prefetch`` budget the process's calls share
per voice (:mod:`callweaver.processors.tts_prefetch`). The ``preload`` ones (declared answers,
sent during the server's warm call) are finished before the call ends, so their audio is ready
before ``/health`` says the server is; the others are dropped with the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from callweaver.audio.resample import Resampler, resample
from callweaver.errors import ProviderError
from callweaver.frames.base import Frame
from callweaver.frames.control import EndFrame, InterruptFrame, StartFrame
from callweaver.frames.text import PrefetchFrame, ReplyEndFrame, ReplyTextFrame
from callweaver.processors.switches import report_switches
from callweaver.processors.tts_prefetch import SpeechPrefetch
from callweaver.runtime.latency import Stage
from callweaver.runtime.processor import Processor
from callweaver.runtime.spoken import SpokenLog
from callweaver.services.cache.prefetch import shared_prefetch
from callweaver.services.cache.speech import SpeechCache, shared_store, voice_of
from callweaver.services.cache.store import CacheStoreParams
from callweaver.services.catalog import TTSProviders
from callweaver.services.failover import FailoverTTS, Switch
from callweaver.services.locales import LocalizedText
from callweaver.services.tts import Speech
from callweaver.text.languages import pick
from callweaver.text.sentences import SentenceSplitter, lead_clause

log = logging.getLogger("callweaver.tts")

_FALLBACK = "Sorry, I'm having a technical problem. Please hold on or call back shortly."


class PrefetchParams(BaseModel):
    """How much a ``tts`` node with an ``audio_cache`` may spend making reply audio ahead of
    need. The budget is per process and voice: every call of the process that speaks with
    the same first provider and rate shares it (the first node to start sets it)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        True, description="make expected replies' audio in idle time (only with audio_cache)"
    )
    max_chars_per_min: int = Field(
        3000,
        ge=0,
        description="provider budget: characters sent to the provider for prefetching per "
        "minute, per process and voice (0: none)",
    )
    max_busy: float = Field(
        0.25,
        gt=0,
        le=1,
        description="CPU budget: share of wall time over the last 60 s this process may spend "
        "synthesizing prefetches, per voice, above 0 and at most 1 (preloading declared "
        "answers at start-up is not held to it, but counts)",
    )
    preload_timeout_s: float = Field(
        60.0, gt=0, description="longest wait at a call's end for start-up audio to be made"
    )


class TTSParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: TTSProviders = Field(
        ["piper", "flite"],
        validate_default=True,
        description="TTS providers in failover order: a type name or {type: ..., params}",
    )
    first_audio_timeout_s: float = Field(
        2.0, gt=0, description="per provider: no first audio by then moves to the next one"
    )
    check_ms: int = Field(250, ge=0, description="audio checked for speech before it plays")
    hedge_after_s: float | None = Field(
        None,
        gt=0,
        description="no first audio by then: start the next provider too, keep the first to "
        "answer (must be below first_audio_timeout_s; sentences only: a text stream is not "
        "hedged); default: no hedging",
    )
    sample_rate: int | None = Field(
        None, ge=8000, le=48000, description="output rate; default: the transport's"
    )
    chunk_ms: int = Field(20, ge=10, le=200, description="size of the reply audio frames")
    fallback_text: LocalizedText = Field(
        _FALLBACK,
        description="said when every provider failed; or one per language: {en: ..., es: ...}",
    )
    language: str = Field("", description="default language of the reply")
    lead_clause: bool = Field(
        True, description="synthesize a long first sentence's first clause alone (heard sooner)"
    )
    audio_cache: CacheStoreParams | None = Field(
        None,
        description="keep the audio of sentences any caller may hear (declared answers) per "
        "voice and rate, and play it from this store the next time: {type: memory} or "
        "{type: redis, url: ...}; default: off",
    )
    prefetch: PrefetchParams = Field(
        default_factory=PrefetchParams,
        description="with audio_cache: make the audio of replies upstream nodes expect (declared "
        "answers at start-up, the cache's predictions) in idle time, within this budget",
    )
    stream_text: bool = Field(
        True,
        description="feed a turn's text into one stream of a provider that takes text as it "
        "is written (elevenlabs websocket, azure); measured: first audio sooner",
    )

    @model_validator(mode="after")
    def _hedge_before_timeout(self) -> TTSParams:
        if self.hedge_after_s is not None and self.hedge_after_s >= self.first_audio_timeout_s:
            raise ValueError("hedge_after_s must be below first_audio_timeout_s")
        return self


_fallback_audio: dict[tuple[str, str, tuple[tuple[str, str, str], ...], int], bytes] = {}


class TextToSpeech(Processor):
    """See the module docstring."""

    Params = TTSParams

    def __init__(self, params: TTSParams | None = None) -> None:
        super().__init__(params)
        self.p = params or TTSParams()
        self.tts: FailoverTTS | None = None
        self.rate = self.p.sample_rate or 16000
        self._splitter = SentenceSplitter()
        self._switches: list[Switch] = []
        self._fallback: dict[str, bytes] = {}  # per fallback text
        self._fell_back: set[int] = set()
        self._turn_started = -1  # the last turn whose first sentence was spoken
        self._hedges_reported = (0, 0)  # (hedges lost, characters) already reported
        self._live: _LiveStream | None = None  # the turn's text stream, in stream mode
        self._speech: SpeechCache | None = None  # audio of cacheable sentences (audio_cache)
        self._prefetch: SpeechPrefetch | None = None  # audio made ahead (with audio_cache)

    async def start(self, frame: StartFrame) -> None:
        self.rate = self.p.sample_rate or frame.out_sample_rate
        # building a provider may load a model: off the event loop, other calls keep going
        providers = await asyncio.to_thread(lambda: [spec.build() for spec in self.p.providers])
        self.tts = FailoverTTS(
            providers,
            first_timeout_s=self.p.first_audio_timeout_s,
            check_ms=self.p.check_ms,
            hedge_after_s=self.p.hedge_after_s,
            on_switch=self._switches.append,
        )
        # providers left to choose speak the transport's rate (and mu-law): no resampling
        self.tts.prefer_output(self.rate, self.rate == 8000 and frame.out_encoding == "mulaw")
        await self.tts.warm()  # cloud providers connect now, not on the first sentence
        self._fallback = await self._fallback_audio()
        if self.p.audio_cache is not None and self.p.providers:
            first = self.p.providers[0]
            voice = voice_of(first.type_name, first.name, first.params)
            self._speech = SpeechCache(shared_store(self.p.audio_cache), voice, self.rate)
            budget = self.p.prefetch
            if budget.enabled and self.tts.providers:
                # per voice and rate; named for /health by the provider's name
                prefetcher = shared_prefetch(
                    f"{first.name}@{self.rate}:{voice}", budget.max_chars_per_min, budget.max_busy
                )
                self._prefetch = SpeechPrefetch(
                    self._speech, self.tts.providers[0], self.rate, prefetcher
                )

    async def _fallback_audio(self) -> dict[str, bytes]:
        """The audio of each fallback text (one per language, or one), made once per process
        and kept; a text none of the providers can speak now is left out (the next call
        tries again)."""
        assert self.tts is not None
        providers = tuple(
            (spec.type_name, spec.name, repr(spec.params)) for spec in self.p.providers
        )
        texts = self.p.fallback_text
        by_language = texts.items() if isinstance(texts, dict) else [(self.p.language, texts)]
        made: dict[str, bytes] = {}
        for language, text in by_language:
            key = (text, language, providers, self.rate)
            found = _fallback_audio.get(key)
            if found is None:
                try:
                    found = await self._synthesize_all(text, language)
                except ProviderError as exc:
                    log.error("fallback audio could not be synthesized (%r): %s", text, exc)
                    continue
                finally:
                    self._switches.clear()
                _fallback_audio[key] = found
            made[text] = found
        return made

    async def _synthesize_all(self, text: str, language: str) -> bytes:
        assert self.tts is not None
        parts = []
        async for speech in self.tts.synthesize(text, language):
            parts.append(resample(speech.pcm, speech.sample_rate, self.rate))
        return b"".join(parts)

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, PrefetchFrame):  # consumed: audio to make, nothing to play
            if self._prefetch is not None:
                language = frame.language or self.p.language
                self._prefetch.add(frame.texts, language, preload=frame.preload)
            return
        if isinstance(frame, ReplyTextFrame):
            if self._prefetch is not None:
                self._prefetch.busy(frame.turn_id)  # the reply first
            language = frame.language or self.p.language
            sentences = [frame.text] if frame.sentence else self._splitter.push(frame.text)
            streaming = self._live is not None and self._live.turn == frame.turn_id
            kept = frame.cacheable and self._speech is not None and not streaming
            if not kept and self._streaming(frame.turn_id):
                live = await self._stream_for(frame.turn_id, language)
                for sentence in sentences:  # shown as sentences, spoken as they come
                    await self.emit(_sentence(frame, sentence))
                live.feed.put_nowait(f" {frame.text} " if frame.sentence else frame.text)
                return
            for sentence in sentences:
                await self.emit(_sentence(frame, sentence))
                if kept:
                    await self._speak_cacheable(frame.turn_id, sentence, language)
                    continue
                for part in self._parts(frame.turn_id, sentence):
                    await self._speak(frame.turn_id, part, language)
            return
        if isinstance(frame, ReplyEndFrame):
            rest = self._splitter.flush()
            if self._live is not None and self._live.turn == frame.turn_id:
                for sentence in rest:
                    await self.emit(_sentence(frame, sentence))
                await self._finish_stream()
            else:
                for sentence in rest:
                    await self.emit(_sentence(frame, sentence))
                    for part in self._parts(frame.turn_id, sentence):
                        await self._speak(frame.turn_id, part, self.p.language)
            if self._prefetch is not None:
                self._prefetch.idle(frame.turn_id)
        await self.emit(frame)

    # -- stream mode ----------------------------------------------------------------------

    def _streaming(self, turn: int) -> bool:
        live = self._live
        if live is not None and live.turn == turn:
            return True  # the turn stays in the mode it started in
        return self.p.stream_text and self.tts is not None and self.tts.streams_text

    async def _stream_for(self, turn: int, language: str) -> _LiveStream:
        """The turn's text stream, opened at its first text (a stream of an earlier turn
        that did not end is finished first)."""
        if self._live is not None and self._live.turn != turn:
            await self._finish_stream()
        if self._live is None:
            feed: asyncio.Queue[str | None] = asyncio.Queue()
            # owned by the node: awaited at the reply's end, cancelled on barge-in and close
            task = asyncio.ensure_future(self._speak_stream(turn, feed, language))
            self._live = _LiveStream(turn, feed, task)
        return self._live

    async def _speak_stream(
        self, turn: int, feed: asyncio.Queue[str | None], language: str
    ) -> None:
        assert self.tts is not None
        if turn in self._fell_back:
            return
        said = _Said("")
        stream = self.tts.synthesize_stream(_pieces(feed, said), language)
        await self._play(turn, stream, said, language=language)

    async def _finish_stream(self) -> None:
        """End the turn's text and wait until all of its audio has gone out."""
        live, self._live = self._live, None
        if live is not None:
            live.feed.put_nowait(None)
            await live.task

    async def _drop_stream(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.task.cancel()
            await asyncio.gather(live.task, return_exceptions=True)

    def _parts(self, turn: int, sentence: str) -> list[str]:
        """The turn's first sentence goes clause first when that is heard sooner."""
        if turn == self._turn_started or not self.p.lead_clause:
            return [sentence]
        self._turn_started = turn
        return lead_clause(sentence)

    async def _speak(
        self, turn: int, text: str, language: str, capture: list[bytes] | None = None
    ) -> bool:
        assert self.tts is not None
        if not text.strip() or turn in self._fell_back:
            return False
        audio = self.tts.synthesize(text, language)
        return await self._play(turn, audio, _Said(text), capture, language=language)

    async def _speak_cacheable(self, turn: int, sentence: str, language: str) -> None:
        """A sentence any caller may hear (:attr:`ReplyTextFrame.cacheable`): played from the
        audio cache when this voice said it before; else spoken, and kept if the first
        provider spoke it whole."""
        assert self.tts is not None and self._speech is not None
        if not sentence.strip() or turn in self._fell_back:
            return
        ctx = self.ctx
        pcm = await self._speech.get(sentence)
        if pcm is not None:
            ctx.mark(turn, Stage.FIRST_TTS_AUDIO)
            ctx.spoken.add(turn, sentence, len(pcm) / 2 * 1000 / self.rate)
            await self.emit_audio(pcm, self.rate, turn, self.rate * self.p.chunk_ms // 1000 * 2)
            await self.emit_metric("cache.audio.hit", 1.0, turn)
            return
        switches = self.tts.switches
        capture: list[bytes] = []
        whole = True
        for part in self._parts(turn, sentence):
            whole = await self._speak(turn, part, language, capture) and whole
        primary = self.tts.providers[0] if self.tts.providers else None
        if (
            whole
            and self.tts.switches == switches
            and primary is not None
            and self.tts.last_served == getattr(primary, "name", None)
        ):
            await self._speech.put(sentence, b"".join(capture))

    async def _play(
        self,
        turn: int,
        audio: AsyncIterator[Speech],
        said: _Said,
        capture: list[bytes] | None = None,
        *,
        language: str = "",
    ) -> bool:
        """Send ``audio`` out in ``chunk_ms`` frames at the output rate; a provider failure
        (every provider failed) plays the fallback (in ``language``, when there is one per
        language) if nothing of it was heard. What is said
        goes into the call's spoken log (:class:`_Said`), for barge-in accounting; the audio
        sent also into ``capture``. True when the audio came whole."""
        ctx = self.ctx
        resampler: Resampler | None = None
        pending = b""
        step = self.rate * self.p.chunk_ms // 1000 * 2
        spoke = False
        try:
            async for speech in audio:
                if not spoke:
                    ctx.mark(turn, Stage.FIRST_TTS_AUDIO)
                    spoke = True
                said.chunk(speech)
                if resampler is None or resampler.in_rate != speech.sample_rate:
                    resampler = self._resampler(speech)
                pending += resampler.process(speech.pcm) if resampler else speech.pcm
                cut = len(pending) - len(pending) % step
                if cut:
                    if capture is not None:
                        capture.append(pending[:cut])
                    await self.emit_audio(pending[:cut], self.rate, turn, step)
                    pending = pending[cut:]
            if resampler is not None:
                pending += resampler.flush()
            if capture is not None:
                capture.append(pending)
            await self.emit_audio(pending, self.rate, turn, step)
        except ProviderError as exc:
            ctx.record_error(self.name, exc, "fallback")
            await report_switches(self, self._switches, turn)
            if not spoke:
                # nothing of this sentence was heard: the caller hears the fallback instead,
                # once per turn (the turn's next sentences would fail the same way)
                self._fell_back.add(turn)
                said.log(ctx.spoken, turn)
                text = pick(self.p.fallback_text, language or self.p.language)
                fallback = self._fallback.get(text) or next(iter(self._fallback.values()), b"")
                said = _Said(text)
                said.ms = len(fallback) / 2 * 1000 / self.rate
                await self.emit_audio(fallback, self.rate, turn, step)
            return False
        finally:  # at once, not when collected: a provider's connection may hang on it
            said.log(ctx.spoken, turn)
            closer = getattr(audio, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        await report_switches(self, self._switches, turn)
        await self._report_hedges(turn)
        return True

    async def _report_hedges(self, turn: int) -> None:
        """Metrics for hedges lost since the last report: their count and wasted text."""
        assert self.tts is not None
        lost, chars = self.tts.hedges_lost, self.tts.hedge_cost_chars
        if lost > self._hedges_reported[0]:
            await self.emit_metric("hedge.tts.lost", lost - self._hedges_reported[0], turn)
            await self.emit_metric("hedge.tts.wasted_chars", chars - self._hedges_reported[1], turn)
            self._hedges_reported = (lost, chars)

    def _resampler(self, speech: Speech) -> Resampler | None:
        if speech.sample_rate == self.rate:
            return None
        return Resampler(speech.sample_rate, self.rate)

    async def on_interrupt(self, frame: InterruptFrame) -> None:
        self._splitter = SentenceSplitter()
        await self._drop_stream()
        if self._prefetch is not None:
            self._prefetch.idle()  # the interrupted reply's end will not come

    async def on_end(self, frame: EndFrame) -> None:
        if self._prefetch is not None:
            await self._prefetch.finish(self.p.prefetch.preload_timeout_s)

    async def close(self) -> None:
        if self._prefetch is not None:
            await self._prefetch.aclose()
        await self._drop_stream()
        if self.tts is not None:
            with contextlib.suppress(Exception):
                await self.tts.aclose()


class _Said:
    """What one synthesis said, for the call's spoken log: the text and its audio length, and
    where its words start when the provider says (Azure's word boundaries, as exact offsets;
    ElevenLabs' alignment, as the text each chunk starts). A text stream's text is only known
    from the provider's chunks."""

    __slots__ = ("bounds", "ms", "pieces", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.ms = 0.0
        self.pieces: list[list[Any]] = []  # [text, ms] from the provider's chunk texts
        self.bounds: list[tuple[float, str]] = []  # (ms from the start, word)

    def chunk(self, speech: Speech) -> None:
        at = self.ms
        ms = speech.duration_s * 1000
        self.ms += ms
        self.bounds.extend((at + offset * 1000, word) for offset, word in speech.words)
        if speech.text or not self.pieces:
            self.pieces.append([speech.text, 0.0])
        self.pieces[-1][1] += ms

    def log(self, spoken: SpokenLog, turn: int) -> None:
        """Add it to ``spoken`` once (at the end, or where a barge-in stopped it). A text
        stream the provider said nothing about is laid over its audio by length: only the
        text it took, which may run ahead of the audio, so the cut may fall late."""
        told = "".join(text for text, _ in self.pieces)
        if self.bounds:
            spoken.add(turn, self.text or told, self.ms, self.bounds)
        elif told.strip():
            for text, ms in self.pieces:
                spoken.add(turn, text, ms)
        elif self.ms > 0:
            spoken.add(turn, " ".join(self.text.split()), self.ms)
        self.pieces, self.bounds, self.ms = [], [], 0.0


@dataclass(slots=True)
class _LiveStream:
    """A turn's text stream in flight: its text goes into ``feed`` (None ends it), ``task``
    speaks it."""

    turn: int
    feed: asyncio.Queue[str | None]
    task: asyncio.Future[None]


async def _pieces(feed: asyncio.Queue[str | None], said: _Said) -> AsyncIterator[str]:
    """The turn's text as it is written; what the provider took goes into ``said``."""
    while (piece := await feed.get()) is not None:
        said.text += piece
        yield piece


def _sentence(frame: ReplyTextFrame | ReplyEndFrame, text: str) -> ReplyTextFrame:
    """A whole sentence of the reply, to pass on (the frame itself if it is one)."""
    if isinstance(frame, ReplyTextFrame) and frame.sentence and frame.text == text:
        return frame
    language = frame.language if isinstance(frame, ReplyTextFrame) else ""
    return ReplyTextFrame(
        call_id=frame.call_id,
        turn_id=frame.turn_id,
        ts_ns=frame.ts_ns,
        text=text,
        sentence=True,
        language=language,
        cacheable=isinstance(frame, ReplyTextFrame) and frame.cacheable,
    )
