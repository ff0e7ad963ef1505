"""Failover wrappers: order, timeouts, breakers, audio checks, language skips.

These use small in-process providers to pin the wrapper's rules down exactly; the same rules
against real engines (flite, piper, espeak-ng and real broken processes) are in
test_failover_engines.py.
"""

import asyncio
from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest

from callweaver.errors import ProviderError, ProvidersExhausted
from callweaver.runtime.clock import VirtualClock
from callweaver.services.failover import FailoverLLM, FailoverSTT, FailoverTTS, Switch
from callweaver.services.health import BreakerPolicy, BreakerState, ProviderHealth
from callweaver.services.llm import Message
from callweaver.services.stt import STTStream, Transcript, Utterance, streaming
from callweaver.services.tts import Speech

RATE = 16000


def voice(ms: int = 400) -> bytes:
    """A harmonic, speech-like signal (not noise, not silence, not clipped)."""
    t = np.arange(RATE * ms // 1000) / RATE
    wave = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 12))
    return (wave / np.max(np.abs(wave)) * 9000).astype("<i2").tobytes()


class Tts:
    def __init__(self, name: str, mode: str = "ok", languages: frozenset[str] | None = None):
        self.name, self.mode, self.languages = name, mode, languages
        self.calls = 0
        self.closed_streams = 0
        self.delay = 0.3

    async def aclose(self) -> None:
        pass

    async def synthesize(self, text: str, language: str = "") -> AsyncIterator[Speech]:
        self.calls += 1
        try:
            if self.mode == "raise":
                raise ProviderError(self.name, "synthesis failed", retryable=True)
            if self.mode == "bad_key":
                raise ProviderError(self.name, "401 unauthorized", retryable=False)
            if self.mode == "hang":
                await asyncio.sleep(3600)
            if self.mode == "slow":
                await asyncio.sleep(self.delay)
            if self.mode == "slow_raise":
                await asyncio.sleep(self.delay)
                raise ProviderError(self.name, "synthesis failed late", retryable=True)
            if self.mode == "noise":
                rng = np.random.default_rng(1)
                yield Speech((rng.standard_normal(RATE) * 6000).astype("<i2").tobytes(), RATE)
                return
            if self.mode == "silence":
                yield Speech(bytes(RATE), RATE)
                return
            if self.mode == "odd":
                yield Speech(b"\x01\x02\x03", RATE)
                return
            for _ in range(3):
                yield Speech(voice(200), RATE)
            if self.mode == "cut":
                raise ProviderError(self.name, "socket closed", retryable=True)
        finally:
            self.closed_streams += 1


def tts(*providers: Tts, timeout: float = 0.2) -> tuple[FailoverTTS, list[Switch], VirtualClock]:
    clock = VirtualClock()
    health = ProviderHealth(BreakerPolicy(failure_threshold=2, reset_after_s=30), clock)
    switches: list[Switch] = []
    wrapper = FailoverTTS(
        list(providers), first_timeout_s=timeout, health=health, on_switch=switches.append
    )
    return wrapper, switches, clock


async def speak(wrapper: FailoverTTS, text: str = "Hello.", language: str = "") -> bytes:
    return b"".join([s.pcm async for s in wrapper.synthesize(text, language)])


@pytest.mark.parametrize("mode", ["raise", "hang", "noise", "silence", "odd", "bad_key"])
async def test_a_failing_provider_hands_the_same_sentence_to_the_next(mode: str) -> None:
    bad, good = Tts("bad", mode), Tts("good")
    wrapper, switches, _ = tts(bad, good)
    loop = asyncio.get_running_loop()
    started = loop.time()
    audio = await speak(wrapper)
    assert len(audio) == 3 * len(voice(200))
    assert good.calls == 1
    assert [(s.from_provider, s.to_provider) for s in switches] == [("bad", "good")]
    assert bad.closed_streams == 1  # the failed stream was closed, not leaked
    if mode == "hang":
        assert switches[0].reason == "timeout"
        assert loop.time() - started < 2  # the gap is the timeout, not the hang


async def test_breaker_opens_skips_then_probes_and_fails_back() -> None:
    flaky, good = Tts("flaky", "raise"), Tts("good")
    wrapper, _, clock = tts(flaky, good)
    # another call of the process, sharing the breakers
    other = FailoverTTS([flaky, good], first_timeout_s=0.2, health=wrapper.health)
    await speak(wrapper)
    await speak(other)
    assert wrapper.health.breaker("flaky").state is BreakerState.OPEN  # 2 failures in a row
    third = FailoverTTS([flaky, good], first_timeout_s=0.2, health=wrapper.health)
    await speak(third)
    assert flaky.calls == 2  # skipped while open: no timeout paid
    flaky.mode = "ok"
    await clock.advance(31)
    await speak(third)  # the half-open probe succeeds: failback
    assert flaky.calls == 3 and good.calls == 3
    assert wrapper.health.breaker("flaky").state is BreakerState.CLOSED
    await speak(third)
    assert good.calls == 3


async def test_after_a_switch_the_call_stays_on_the_new_provider_until_reset() -> None:
    flaky, good = Tts("flaky", "hang"), Tts("good")
    wrapper, switches, clock = tts(flaky, good)
    await speak(wrapper)  # the first sentence pays the timeout once...
    assert wrapper.health.breaker("flaky").state is BreakerState.CLOSED  # 1 failure of 2
    for _ in range(3):
        await speak(wrapper)  # ...the following ones go straight to the second provider
    assert flaky.calls == 1 and good.calls == 4 and len(switches) == 1
    flaky.mode = "ok"
    await clock.advance(31)  # the breakers' reset_after_s: try the first again
    await speak(wrapper)
    assert flaky.calls == 2 and good.calls == 4
    await speak(wrapper)
    assert flaky.calls == 3  # failed back for good


async def test_non_retryable_error_opens_at_once_with_the_reason() -> None:
    bad, good = Tts("bad", "bad_key"), Tts("good")
    wrapper, _, _ = tts(bad, good)
    await speak(wrapper)
    snap = wrapper.health.breaker("bad").snapshot()
    assert snap["state"] == "open" and "401" in snap["last_error"]
    assert snap["open_reason"].startswith("an error no retry can fix: ")


async def test_every_provider_failing_says_what_each_did() -> None:
    wrapper, _, _ = tts(Tts("a", "raise"), Tts("b", "noise"))
    with pytest.raises(ProvidersExhausted) as err:
        await speak(wrapper)
    names = [name for name, _ in err.value.attempts]
    assert names == ["a", "b"]
    assert "noise" in err.value.attempts[1][1]


async def test_a_failure_after_audio_went_out_stays_with_that_provider() -> None:
    cut, good = Tts("cut", "cut"), Tts("good")
    wrapper, _, _ = tts(cut, good)
    got: list[Speech] = []
    with pytest.raises(ProviderError):
        async for s in wrapper.synthesize("Hello."):
            got.append(s)
    assert len(got) == 3 and good.calls == 0
    assert wrapper.health.breaker("cut").snapshot()["failures"] == 1


async def test_a_provider_that_cannot_speak_the_language_is_skipped_without_blame() -> None:
    english, anything = Tts("en-only", languages=frozenset({"en"})), Tts("any")
    wrapper, switches, _ = tts(english, anything)
    await speak(wrapper, language="zh-HK")
    assert english.calls == 0 and anything.calls == 1 and switches == []
    assert wrapper.health.breaker("en-only").snapshot()["failures"] == 0
    await speak(wrapper, language="en-US")
    assert english.calls == 1


@pytest.mark.parametrize(
    ("served", "language", "speaks"),
    [
        ({"zh", "en"}, "zh-CN", True),
        ({"zh", "en"}, "zh-HK", False),  # its "zh" is Mandarin: no Cantonese
        ({"zh", "en"}, "yue", False),
        ({"zh", "en"}, "zh-MO", False),
        ({"zh-HK", "en"}, "zh-HK", True),
        ({"zh-HK"}, "zh-MO", True),  # a Cantonese voice serves Macau too
        ({"yue"}, "zh-HK", True),
        ({"yue-HK"}, "yue", True),
        ({"en"}, "EN-gb", True),
    ],
)
async def test_cantonese_is_not_served_by_a_mandarin_provider(
    served: set[str], language: str, speaks: bool
) -> None:
    provider, fallback = Tts("p", languages=frozenset(served)), Tts("any")
    wrapper, switches, _ = tts(provider, fallback)
    await speak(wrapper, language=language)
    assert provider.calls == (1 if speaks else 0)
    assert switches == []  # a skip is not a failure


async def test_an_abandoned_half_open_probe_frees_its_slot() -> None:
    flaky, good = Tts("flaky", "raise"), Tts("good")
    wrapper, _, clock = tts(flaky, good)
    for _ in range(2):
        await speak(wrapper)
    await clock.advance(31)
    flaky.mode = "hang"
    task = asyncio.ensure_future(speak(wrapper))
    await asyncio.sleep(0.02)
    task.cancel()  # barge-in while the probe waits for first audio
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wrapper.health.breaker("flaky").allow()  # the probe slot is free again


class Llm:
    def __init__(self, name: str, pieces: Sequence[str] | None, delay: float = 0.0):
        self.name, self.pieces, self.delay = name, pieces, delay

    async def aclose(self) -> None:
        pass

    async def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        await asyncio.sleep(self.delay)
        if self.pieces is None:
            raise ProviderError(self.name, "HTTP 500", retryable=True)
        for piece in self.pieces:
            yield piece


async def test_llm_failover_on_error_slow_first_token_and_empty_reply() -> None:
    health = ProviderHealth(BreakerPolicy(failure_threshold=5), VirtualClock())
    wrapper = FailoverLLM(
        [
            Llm("broken", None),
            Llm("slow", ["late"], delay=5),
            Llm("mute", [" ", ""]),
            Llm("good", ["Hi", " there."]),
        ],
        first_timeout_s=0.1,
        health=health,
    )
    out = [p async for p in wrapper.stream([Message("user", "hello")])]
    assert "".join(out) == "Hi there."
    failures = {s["name"]: s["failures"] for s in health.snapshot()}
    assert failures == {"broken": 1, "slow": 1, "mute": 1, "good": 0}


class Stt:
    def __init__(self, name: str, delay: float = 0.0, fail: bool = False):
        self.name, self.delay, self.fail = name, delay, fail

    async def aclose(self) -> None:
        pass

    async def transcribe(self, utterance: Utterance) -> Transcript:
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ProviderError(self.name, "refused", retryable=True)
        return Transcript(f"heard by {self.name}", "en")


async def test_stt_failover_and_exhaustion() -> None:
    health = ProviderHealth(clock=VirtualClock())
    wrapper = FailoverSTT(
        [Stt("down", fail=True), Stt("slow", delay=5), Stt("ok")],
        first_timeout_s=0.1,
        health=health,
    )
    utterance = Utterance(voice(), RATE)
    assert (await wrapper.transcribe(utterance)).text == "heard by ok"
    only_bad = FailoverSTT([Stt("down2", fail=True)], first_timeout_s=0.1, health=health)
    with pytest.raises(ProvidersExhausted):
        await only_bad.transcribe(utterance)


class StreamingStt(Stt):
    """Streams: interim transcripts as audio comes; ``mode`` says how its finish ends."""

    def __init__(self, name: str, mode: str = "ok", languages: frozenset[str] | None = None):
        super().__init__(name)
        self.mode, self.languages = mode, languages
        self.streams: list[StreamOf] = []

    def open(self, language: str, sample_rate: int) -> STTStream:
        stream = StreamOf(self)
        self.streams.append(stream)
        return stream


class StreamOf:
    def __init__(self, stt: StreamingStt) -> None:
        self.stt, self.audio, self.cancelled = stt, b"", False
        self.queue: asyncio.Queue[Transcript | None] = asyncio.Queue()

    def push(self, pcm: bytes) -> None:
        self.audio += pcm
        self.queue.put_nowait(Transcript(f"{len(self.audio)} bytes"))

    async def partials(self) -> AsyncIterator[Transcript]:
        while (partial := await self.queue.get()) is not None:
            yield partial

    async def finish(self) -> Transcript:
        self.queue.put_nowait(None)
        if self.stt.mode == "raise":
            raise ProviderError(self.stt.name, "socket closed mid-turn", retryable=True)
        if self.stt.mode == "hang":
            await asyncio.sleep(3600)
        return Transcript(f"streamed by {self.stt.name}", "en")

    async def cancel(self) -> None:
        self.cancelled = True
        self.queue.put_nowait(None)


class Whisperish(Stt):
    """Does not stream; keeps what it was asked to transcribe."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.heard: list[Utterance] = []

    async def transcribe(self, utterance: Utterance) -> Transcript:
        self.heard.append(utterance)
        return await super().transcribe(utterance)


def stt(*providers: Stt) -> tuple[FailoverSTT, list[Switch], ProviderHealth]:
    health = ProviderHealth(BreakerPolicy(failure_threshold=2, reset_after_s=30), VirtualClock())
    switches: list[Switch] = []
    wrapper = FailoverSTT(
        list(providers), first_timeout_s=0.1, health=health, on_switch=switches.append
    )
    return wrapper, switches, health


async def test_stt_stream_goes_through_the_first_provider_that_streams() -> None:
    streamer, whisper = StreamingStt("azure"), Whisperish("whisper")
    wrapper, switches, health = stt(streamer, whisper)
    assert streaming(wrapper) is wrapper  # the wrapper streams, like what it wraps
    stream = wrapper.open("en", RATE)
    assert stream.live
    stream.push(b"\1\0" * 10)
    stream.push(b"\2\0" * 10)
    result = await stream.finish()
    assert result.text == "streamed by azure" and switches == [] and whisper.heard == []
    assert [p.text async for p in stream.partials()] == ["20 bytes", "40 bytes"]
    assert streamer.streams[0].audio == b"\1\0" * 10 + b"\2\0" * 10
    assert health.breaker("azure").successes == 1


@pytest.mark.parametrize("mode", ["raise", "hang"])
async def test_a_failed_stream_hands_the_utterance_to_the_next_provider(mode: str) -> None:
    streamer, whisper = StreamingStt("azure", mode), Whisperish("whisper")
    wrapper, switches, health = stt(streamer, whisper)
    stream = wrapper.open("en", RATE)
    stream.push(voice(200))
    stream.push(voice(100))
    assert (await stream.finish()).text == "heard by whisper"
    assert whisper.heard == [Utterance(voice(200) + voice(100), RATE, "en")]  # all of it
    reason = "timeout" if mode == "hang" else "azure: socket closed mid-turn"
    assert [(s.from_provider, s.to_provider, s.reason) for s in switches] == [
        ("azure", "whisper", reason)
    ]
    assert health.breaker("azure").failures == 1 and streamer.streams[0].cancelled
    # given the node's own cut of the utterance, the next provider gets that instead
    again = wrapper.open("en", RATE)
    assert not again.live  # whisper took over: it goes first for a while (no stream)
    cut = Utterance(voice(150), RATE, "en")
    assert (await again.finish(cut)).text == "heard by whisper" and whisper.heard[-1] == cut


async def test_stt_stream_skips_what_cannot_stream_now() -> None:
    # a provider that does not serve the language, or whose breaker is open, is skipped
    cantonese_only = StreamingStt("hk", languages=frozenset({"yue", "zh-HK"}))
    whisper = Whisperish("whisper")
    wrapper, _, health = stt(cantonese_only, whisper)
    assert wrapper.open("zh-HK", RATE).live
    english = wrapper.open("en", RATE)
    assert not english.live and len(cantonese_only.streams) == 1
    english.push(voice(100))
    assert (await english.finish()).text == "heard by whisper"
    health.breaker("hk").record_failure(ProviderError("hk", "bad key", retryable=False))
    assert not wrapper.open("zh-HK", RATE).live
    # a cancelled stream is not blamed on its provider
    other, _, other_health = stt(StreamingStt("azure"), whisper)
    dropped = other.open("en", RATE)
    await dropped.cancel()
    assert other_health.breaker("azure").snapshot()["failures"] == 0


def test_provider_names_must_differ() -> None:
    with pytest.raises(ValueError, match="differ"):
        FailoverTTS([Tts("a"), Tts("a")], first_timeout_s=1)


# -- hedging -----------------------------------------------------------------------------------


def hedged(*providers: Tts, hedge: float = 0.05) -> tuple[FailoverTTS, list[Switch]]:
    health = ProviderHealth(BreakerPolicy(failure_threshold=2, reset_after_s=30), VirtualClock())
    switches: list[Switch] = []
    wrapper = FailoverTTS(
        list(providers),
        first_timeout_s=2,
        hedge_after_s=hedge,
        health=health,
        on_switch=switches.append,
    )
    return wrapper, switches


async def test_a_slow_provider_gets_a_hedge_and_the_faster_one_wins() -> None:
    slow, fast = Tts("slow", "slow"), Tts("fast")
    wrapper, switches = hedged(slow, fast)
    audio = await speak(wrapper, "Hello there.")
    assert len(audio) == 3 * len(voice(200))
    assert slow.calls == 1 and fast.calls == 1
    assert slow.closed_streams == 1  # the loser was cancelled and its stream closed
    assert (wrapper.hedges, wrapper.hedges_lost, wrapper.hedge_cost_chars) == (1, 1, 12)
    assert switches == []  # slow is not a failure: its breaker is untouched
    assert wrapper.health.breaker("slow").snapshot()["failures"] == 0


async def test_no_hedge_when_the_first_provider_answers_in_time() -> None:
    first, second = Tts("first"), Tts("second")
    wrapper, _ = hedged(first, second, hedge=0.5)
    await speak(wrapper)
    assert first.calls == 1 and second.calls == 0 and wrapper.hedges == 0


async def test_a_hedge_that_fails_leaves_the_request_with_the_first() -> None:
    slow, broken = Tts("slow", "slow"), Tts("broken", "raise")
    wrapper, switches = hedged(slow, broken)
    audio = await speak(wrapper)
    assert len(audio) == 3 * len(voice(200))
    assert [(s.from_provider, s.to_provider) for s in switches] == [("broken", "slow")]
    assert wrapper.hedges == 1 and wrapper.hedges_lost == 0


async def test_a_first_provider_that_fails_after_the_hedge_started_hands_over() -> None:
    late, good = Tts("late", "slow_raise"), Tts("good", "slow")
    late.delay, good.delay = 0.1, 0.3
    wrapper, switches = hedged(late, good)
    audio = await speak(wrapper)
    assert len(audio) == 3 * len(voice(200))
    assert [(s.from_provider, s.to_provider) for s in switches] == [("late", "good")]


async def test_hedging_is_bounded_by_the_first_audio_timeout() -> None:
    with pytest.raises(ValueError, match="hedge_after_s"):
        FailoverTTS([Tts("a"), Tts("b")], first_timeout_s=1, hedge_after_s=1)
