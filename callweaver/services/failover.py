"""Failover: several providers of a stage behind the interface of one.

``FailoverTTS([piper, flite])`` is a :class:`~.tts.TTS`, ``FailoverSTT`` an
:class:`~.stt.STT` and ``FailoverLLM`` an :class:`~.llm.LLM`: a node holds one provider and
never knows whether it is a wrapper. For each request the wrapper tries its providers in
order:

- a provider whose circuit breaker (:mod:`.health`, shared by every call of the process) is
  open is skipped at no cost, and so is one that cannot speak the request's language
  (``languages`` attribute; not a failure);
- an error, or no first result within the first-result timeout (the first audio chunk, the
  first token, the whole transcript), moves the same request to the next provider: the
  caller hears no gap beyond that timeout;
- TTS audio is checked before it is let through (:func:`~callweaver.audio.levels.
  speech_problem`): a provider that returns noise, clipped audio, or 1.5 s of silence (or a
  whole sentence of it) has failed;
- after a switch, the provider that took over stays first for this wrapper's (the call's)
  later requests until the breakers' ``reset_after_s`` has passed, then the configured order
  is tried again (failback): a call does not pay a failing provider's timeout sentence after
  sentence, whether or not enough failures have opened its shared breaker;
- once a stream has delivered its first result the request stays with that provider: a later
  failure is recorded on its breaker and raised (the pieces already spoken cannot be taken
  back, and repeating them on another provider would be worse);
- TTS hedging (``hedge_after_s``): when the provider has sent no audio after that long, the
  next one starts on the same sentence too; the first to pass wins, the other is cancelled
  and its cost counted;
- a TTS text stream (:meth:`FailoverTTS.synthesize_stream`, an LLM's tokens) goes to one
  provider at a time, as a stream if it takes one, else sentence by sentence
  (:mod:`.text_stream`); its first-audio timeout runs from the first complete sentence (or
  the end of the text), and it is not hedged. Before the first audio the next provider gets
  the whole text so far, then the rest; after it (the one exception to the rule above) the
  next provider takes over at the next sentence boundary after what the caller heard, as far
  as the provider tells (ElevenLabs' alignment, Azure's word boundaries; otherwise estimated
  from the audio's duration): the sentence in progress is cut rather than repeated;
- an STT stream (``FailoverSTT.open``) goes to the first provider that may take the request
  if it streams; when that stream fails, up to and including its ``finish`` (an error, no
  final transcript within the timeout), the whole utterance goes to the next providers'
  ``transcribe``: the caller's words are never lost to a broken stream;
- when every provider failed or was skipped, :class:`~callweaver.errors.ProvidersExhausted`
  says what each one did; the node then falls back (spoken fallback audio, a fallback reply).

Each move from one provider to the next is reported to ``on_switch`` (the nodes turn it into
a metric and a log line with the call id) and counted in :attr:`Failover.switches`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from callweaver.audio.levels import level_dbfs, speech_problem
from callweaver.errors import ProviderError, ProvidersExhausted
from callweaver.services.health import CircuitBreaker, ProviderHealth, shared_health
from callweaver.services.llm import LLM, Message
from callweaver.services.stt import STT, STTStream, Transcript, Utterance, streaming
from callweaver.services.text_stream import TextStream, by_sentence, heard_chars, resume_at
from callweaver.services.tts import TTS, Speech, StreamingTTS, streams_text

P = TypeVar("P")

_SILENCE_VERDICT_MS = 1500  # this much silence at the start of a sentence is a failure
_WARM_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Switch:
    """The request left ``from_provider`` (for ``reason``) for ``to_provider`` (None: none
    was left)."""

    stage: str
    from_provider: str
    to_provider: str | None
    reason: str


SwitchObserver = Callable[[Switch], None]


_CANTONESE = ("yue", "zh-hk", "zh-mo", "zh-yue")


def _speaks(provider: object, language: str) -> bool:
    """Does ``provider`` serve ``language``? Its ``languages`` hold primary subtags ("en":
    every English) and full locales ("zh-HK"). Cantonese is not Chinese in general: a
    provider whose "zh" is Mandarin serves zh-HK, zh-MO and yue only if it lists one of them
    (or "yue")."""
    languages: frozenset[str] | None = getattr(provider, "languages", None)
    if not language or languages is None:
        return True
    wanted = language.lower()
    served = {lang.lower() for lang in languages}
    if wanted in served:
        return True
    if wanted.startswith(_CANTONESE):
        return "yue" in served or any(
            lang.startswith(("yue-", "zh-hk", "zh-mo")) for lang in served
        )
    return wanted.split("-")[0] in served


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return str(exc) or type(exc).__name__


class Failover(Generic[P]):
    """The part the three wrappers share: provider order, breakers, switch reports."""

    stage = "provider"

    def __init__(
        self,
        providers: Sequence[P],
        *,
        first_timeout_s: float,
        health: ProviderHealth | None = None,
        on_switch: SwitchObserver | None = None,
    ) -> None:
        if not providers:
            raise ValueError(f"a failover {self.stage} needs at least one provider")
        names = [self._name(p) for p in providers]
        if len(set(names)) != len(names):
            raise ValueError(f"provider names must differ (got {names}): give each a name:")
        self.providers = list(providers)
        self.first_timeout_s = first_timeout_s
        self.health = health or shared_health()
        self.on_switch = on_switch
        self.switches = 0
        self.name = "+".join(names)
        self._stuck: P | None = None  # after a switch: where requests start, until...
        self._stuck_until_ns = 0

    @staticmethod
    def _name(provider: P) -> str:
        name: str = getattr(provider, "name")  # noqa: B009 - the protocols' attribute
        return name

    @property
    def languages(self) -> frozenset[str] | None:
        """What at least one provider speaks (None: any)."""
        found: set[str] = set()
        for p in self.providers:
            langs: frozenset[str] | None = getattr(p, "languages", None)
            if langs is None:
                return None
            found |= langs
        return frozenset(found)

    def _candidates(self, language: str, attempts: list[tuple[str, str]]) -> list[P]:
        """Providers that may take the request, in order; the others noted in attempts.
        Breakers are asked lazily in :meth:`_admit`, so a half-open probe is only reserved
        for the provider that is actually tried."""
        out = []
        for p in self._order():
            if _speaks(p, language):
                out.append(p)
            else:
                attempts.append((self._name(p), f"does not speak {language}"))
        return out

    def _order(self) -> list[P]:
        """The providers in the order to try: the configured one, except that after a switch
        the provider that took over goes first until the breakers' ``reset_after_s`` has
        passed (a call does not bounce back to a provider that just failed it); then the
        configured order is tried again (failback)."""
        stuck = self._stuck
        if stuck is None:
            return self.providers
        if self.health.clock.now_ns() >= self._stuck_until_ns:
            self._stuck = None
            return self.providers
        return [stuck, *(p for p in self.providers if p is not stuck)]

    def _succeeded(self, provider: P, breaker: CircuitBreaker, switched: bool) -> None:
        breaker.record_success()
        if switched and provider is not self.providers[0]:
            self._stuck = provider
            reset_ns = int(self.health.policy.reset_after_s * 1_000_000_000)
            self._stuck_until_ns = self.health.clock.now_ns() + reset_ns

    def _admit(self, provider: P, attempts: list[tuple[str, str]]) -> CircuitBreaker | None:
        breaker = self.health.breaker(self._name(provider))
        if breaker.allow():
            return breaker
        attempts.append((self._name(provider), f"circuit {breaker.state.value}"))
        return None

    def _failed(
        self,
        provider: P,
        breaker: CircuitBreaker,
        exc: BaseException,
        attempts: list[tuple[str, str]],
        rest: Sequence[P],
    ) -> None:
        breaker.record_failure(exc)
        reason = _reason(exc)
        attempts.append((self._name(provider), reason))
        self.switches += 1
        if self.on_switch is not None:
            nxt = self._name(rest[0]) if rest else None
            self.on_switch(Switch(self.stage, self._name(provider), nxt, reason))

    async def warm(self, timeout_s: float = _WARM_TIMEOUT_S) -> None:
        """Open every provider's connection ahead of the first request (their ``warm``
        methods, at once), so that the call's first turn pays no handshake. Best effort,
        bounded by ``timeout_s``: a provider that cannot be reached now is not blamed for it
        (its breaker is untouched); the first real request finds out."""
        warmers = [w for p in self.providers if (w := getattr(p, "warm", None)) is not None]
        if not warmers:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*(w() for w in warmers), return_exceptions=True)

    async def aclose(self) -> None:
        for p in self.providers:
            with contextlib.suppress(Exception):
                await getattr(p, "aclose")()  # noqa: B009


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


@dataclass(slots=True)
class _Opened:
    """A provider's stream whose first items arrived in time and passed the check."""

    stream: AsyncIterator[Any]
    first: list[Any]
    done: bool


class _StreamFailover(Failover[P]):
    """LLM and TTS: a stream whose first item must come within the timeout.

    With ``hedge_after_s`` set, a provider with no first result after that long gets
    company: the next provider starts on the same request too, and whichever passes first
    wins; the other is cancelled (its stream closed) and counted in :attr:`hedges_lost`
    and :attr:`hedge_cost_chars` (text sent to a provider whose audio was thrown away)."""

    hedge_after_s: float | None = None

    def __init__(self, providers: Sequence[P], **kwargs: Any) -> None:
        super().__init__(providers, **kwargs)
        self.hedges = 0
        self.hedges_lost = 0
        self.hedge_cost_chars = 0

    def _open(self, provider: P, request: Any) -> AsyncIterator[Any]:
        raise NotImplementedError

    def _check(self, first: list[Any], done: bool) -> str | None:
        """A problem with the stream's first items (None: let them through)."""
        return None

    def _enough(self, first: list[Any]) -> bool:
        """Have enough items arrived to judge the stream?"""
        return True

    def _cost(self, request: Any) -> int:
        """What a thrown-away request cost, in characters."""
        return 0

    def _hedgeable(self, request: Any) -> bool:
        return True

    def _arm(self, request: Any, timer: asyncio.Timeout) -> Callable[[], None]:
        """Start the first-result timeout (now, by default); returns what undoes the arming."""
        timer.reschedule(asyncio.get_running_loop().time() + self.first_timeout_s)
        return lambda: None

    async def _acquire(self, provider: P, request: Any) -> _Opened:
        """Open ``provider``'s stream and wait for its first items (within the timeout) and
        their check; on any failure or cancellation the stream is closed."""
        stream = self._open(provider, request)
        first: list[Any] = []
        done = False
        disarm: Callable[[], None] = lambda: None  # noqa: E731
        try:
            async with asyncio.timeout(None) as timer:
                disarm = self._arm(request, timer)
                while not self._enough(first):
                    try:
                        first.append(await anext(stream))
                    except StopAsyncIteration:
                        done = True
                        break
            problem = self._check(first, done)
            if problem is not None:
                raise ProviderError(self._name(provider), problem, retryable=True)
        except BaseException:
            await _close(stream)
            raise
        finally:
            disarm()
        return _Opened(stream, first, done)

    async def _stream(
        self,
        request: Any,
        language: str,
        *,
        skip: Sequence[P] = (),
        on_winner: Callable[[P], None] | None = None,
    ) -> AsyncIterator[Any]:
        """The request's items from the first provider that delivers (module docstring);
        ``skip``: providers not to try (they failed this request already); ``on_winner`` is
        told which provider delivers."""
        attempts: list[tuple[str, str]] = []
        candidates = [p for p in self._candidates(language, attempts) if p not in skip]
        queue = list(enumerate(candidates))  # (index among the candidates, provider)
        running: dict[asyncio.Task[_Opened], tuple[int, P, CircuitBreaker]] = {}
        winner: tuple[int, P, CircuitBreaker, _Opened] | None = None

        def start_next() -> bool:
            while queue:
                i, provider = queue.pop(0)
                breaker = self._admit(provider, attempts)
                if breaker is not None:
                    task = asyncio.ensure_future(self._acquire(provider, request))
                    running[task] = (i, provider, breaker)
                    return True
            return False

        try:
            start_next()
            while running and winner is None:
                hedge = None
                if len(running) == 1 and queue and self._hedgeable(request):
                    hedge = self.hedge_after_s
                done, _ = await asyncio.wait(
                    running, timeout=hedge, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:  # no first result yet: hedge with the next provider
                    if start_next():
                        self.hedges += 1
                    continue
                for task in done:
                    i, provider, breaker = running.pop(task)
                    exc = task.exception()
                    if exc is None and winner is None:
                        winner = (i, provider, breaker, task.result())
                    elif exc is None:  # a second success in the same instant: not needed
                        await _close(task.result().stream)
                        breaker.release()
                    else:
                        # the request is still with a hedge, or goes to the next in line
                        rest = [p for _, p, _ in running.values()] or [p for _, p in queue]
                        self._failed(provider, breaker, exc, attempts, rest)
                if winner is None and not running:
                    start_next()
        finally:
            for task, (_, _, breaker) in running.items():  # hedges that lost, or abandoned
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                breaker.release()
                if winner is not None:
                    self.hedges_lost += 1
                    self.hedge_cost_chars += self._cost(request)
            running.clear()
        if winner is None:
            raise ProvidersExhausted(self.stage, attempts)
        i, provider, breaker, opened = winner
        if on_winner is not None:
            on_winner(provider)
        # the stream is this provider's now
        try:
            for item in opened.first:
                yield item
            if not opened.done:
                async for item in opened.stream:
                    yield item
        except (Exception, TimeoutError) as exc:
            breaker.record_failure(exc)
            raise
        except BaseException:  # the consumer went away (barge-in): the provider worked
            self._succeeded(provider, breaker, switched=i > 0)
            raise
        finally:
            await _close(opened.stream)
        self._succeeded(provider, breaker, switched=i > 0)


_CLOSE_TIMEOUT_S = 1.0


async def _close(stream: AsyncIterator[Any]) -> None:
    """Close a provider's stream; one that takes longer than a second to close is left to
    the garbage collector rather than holding up the next provider."""
    closer = getattr(stream, "aclose", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                await closer()


class FailoverLLM(_StreamFailover[LLM]):
    """An LLM over several; the timeout is on the first token. An empty reply is a
    failure."""

    stage = "llm"

    def _open(self, provider: LLM, request: Any) -> AsyncIterator[str]:
        return provider.stream(request)

    def _enough(self, first: list[Any]) -> bool:
        return any(piece.strip() for piece in first)

    def _check(self, first: list[Any], done: bool) -> str | None:
        return "empty reply" if not any(piece.strip() for piece in first) else None

    def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        return self._stream(messages, "")


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
