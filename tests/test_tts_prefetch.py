"""The tts node's prefetch, with real flite behind a script that logs what it is asked to say:
start-up audio made before the call ends and played from the cache afterwards; nothing made
while a reply is spoken, and a reply that starts cancels the synthesis in flight; the budget
(on a clock of the test's); already held sentences skipped; a failing first provider; bad
params.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ports import free_port
from pydantic import ValidationError
from test_elevenlabs_tts import KEY, VOICE
from test_tts_node import (
    FIRST,
    SECOND,
    counting_flite,
    end,
    flite_says,
    node,
    said,
    script,
    segments,
    shape,
    text,
    unique,
)

from callweaver.frames.audio import OutputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.metrics import MetricsFrame
from callweaver.frames.text import PrefetchFrame, ReplyEndFrame, ReplyTextFrame
from callweaver.pipelines.call import Call
from callweaver.pipelines.graph import Graph, Node
from callweaver.processors.tts import TextToSpeech
from callweaver.processors.tts_prefetch import SpeechPrefetch
from callweaver.runtime.clock import MonotonicClock
from callweaver.services import health
from callweaver.services.cache.prefetch import (
    COUNTERS,
    PrefetchBudget,
    Prefetcher,
    prefetch_stats,
)
from callweaver.services.cache.speech import SpeechCache, shared_store
from callweaver.services.cache.store import CacheStoreParams, MemoryStore
from callweaver.services.local_tts import FliteTTS
from callweaver.testing import ListIO, run_processor

LONG = (
    "Our clinic is open from eight in the morning until six in the evening on weekdays, "
    "and from nine until one on Saturdays, and we are closed on Sundays and public holidays."
)
OVERSIZE = "This sentence is far too long for a budget of forty characters."


@pytest.fixture(autouse=True)
def own_breakers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test gets its own circuit breakers (the providers a test breaks stay its own)."""
    monkeypatch.setattr(health, "_process_health", None)


def store() -> dict[str, Any]:
    return {"type": "memory", "prefix": f"test-{uuid.uuid4().hex}:"}  # a store of its own


def clips(cache: dict[str, Any]) -> int:
    """Audio clips the process's store for ``cache`` holds."""
    return shared_store(CacheStoreParams(**cache)).stats_now()["audio_clips"]


def ask(*texts: str, preload: bool = True) -> PrefetchFrame:
    return PrefetchFrame(call_id="test-call", turn_id=0, texts=texts, preload=preload)


def cached(words: str, turn: int) -> ReplyTextFrame:
    return ReplyTextFrame(call_id="test-call", turn_id=turn, text=words, sentence=True,
                          cacheable=True)  # fmt: skip


def counters(name: str) -> dict[str, int]:
    """The prefetch counters of the voice whose first provider is named ``name``."""
    (found,) = [stats for voice, stats in prefetch_stats().items() if voice.startswith(f"{name}@")]
    return found


def slow_on(tmp_path: Path, word: str, provider: dict[str, Any], wait: str) -> dict[str, Any]:
    """``provider`` (a counting flite) behind a script that runs ``wait`` first when asked to
    say ``word``; logged only once the wait is over."""
    body = f'case "$*" in *{word}*) {wait};; esac\nexec {provider["binary"]} "$@"'
    binary = script(tmp_path / f"slow-{uuid.uuid4().hex[:6]}", body)
    return {"type": "flite", "name": unique("slow"), "binary": binary}


def first_at(log: Path, words: str) -> int:
    return [words in line for line in said(log)].index(True)


async def until(done: Callable[[], bool], within_s: float = 30.0) -> None:
    """Poll ``done()`` (the prefetch's task changes it) until it holds; ``within_s`` guards
    against hanging, it is not a timing assertion."""
    deadline = time.monotonic() + within_s
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {within_s} s")
        await asyncio.sleep(0.01)


# -- preload ----------------------------------------------------------------------------------


async def test_preloaded_audio_is_made_before_the_call_ends_and_played_from_the_cache(
    tmp_path: Path,
) -> None:
    provider, log = counting_flite(tmp_path)
    cache = store()
    first = node([provider], audio_cache=cache, lead_clause=False)
    run = await run_processor(first, [ask(f"{FIRST} {SECOND}")])
    # consumed: nothing played, the frame not passed on
    assert not [f for f in run.downstream if isinstance(f, (OutputAudioFrame, PrefetchFrame))]
    assert sum(FIRST in t for t in said(log)) == sum(SECOND in t for t in said(log)) == 1
    assert counters(provider["name"])["prefetched"] == 2
    assert clips(cache) == 2  # the store holds both sentences' audio

    # the next call plays both from the cache: flite is not asked again
    again = node([provider], audio_cache=cache, lead_clause=False)
    run = await run_processor(again, [cached(FIRST, 1), cached(SECOND, 1), end(1)])
    assert sum(FIRST in t for t in said(log)) == sum(SECOND in t for t in said(log)) == 1
    hits = [
        f for f in run.downstream if isinstance(f, MetricsFrame) and f.name == "cache.audio.hit"
    ]
    assert len(hits) == 2
    assert segments(run.downstream) == [await flite_says(FIRST), await flite_says(SECOND)]


async def test_at_the_end_preloads_are_made_even_mid_reply_and_predictions_dropped(
    tmp_path: Path,
) -> None:
    provider, log = counting_flite(tmp_path)
    tts = node([provider], audio_cache=store())
    # the call ends while turn 1 is still being spoken (a hang-up: no ReplyEndFrame)
    frames = [text(FIRST, 1), ask(SECOND, preload=False), ask(LONG, preload=True)]
    run = await run_processor(tts, frames)
    assert shape(run.downstream) == [f"text:{FIRST}", "audio"]
    assert any(LONG[:40] in t for t in said(log))
    assert not any(SECOND in t for t in said(log))
    assert counters(provider["name"])["prefetched"] == 1


# -- replies first ----------------------------------------------------------------------------


async def test_nothing_is_prefetched_while_a_reply_is_spoken(tmp_path: Path) -> None:
    # the reply's sentence takes flite 0.5 s longer: a prefetch that did not wait for the
    # reply's end would be asked for before it
    provider, log = counting_flite(tmp_path)
    voice = slow_on(tmp_path, "Thank", provider, "sleep 0.5")
    cache = store()
    tts = node([voice], audio_cache=cache, lead_clause=False)
    run = await run_processor(tts, [ask(SECOND), text(FIRST, 1), end(1)])
    assert shape(run.downstream) == [f"text:{FIRST}", "audio", "end"]
    assert segments(run.downstream) == [await flite_says(FIRST)]  # the reply, whole
    assert first_at(log, FIRST) < first_at(log, SECOND)
    assert counters(voice["name"])["prefetched"] == 1 and clips(cache) == 1


async def test_a_reply_cancels_the_synthesis_in_flight_which_is_made_after_it(
    tmp_path: Path,
) -> None:
    # the long sentence cannot be made until the reply has ended (its script waits for a gate
    # the test opens when the reply's end is written): it is in flight when the reply comes
    provider, log = counting_flite(tmp_path)
    gate = tmp_path / "gate"
    wait = f'while [ ! -e "{gate}" ]; do sleep 0.02; done'
    voice = slow_on(tmp_path, "clinic", provider, wait)
    tts = node([voice], audio_cache=store(), lead_clause=False)
    io = ListIO([ask(LONG), cached(SECOND, 1), end(1)], interval_s=0.3)
    at_reply_end: list[dict[str, int]] = []

    def written(frame: Frame) -> None:
        if isinstance(frame, ReplyEndFrame):
            at_reply_end.append(counters(voice["name"]))
            gate.touch()

    io.on_write = written
    await Call(Graph([Node("tts", lambda: tts)]), clock=MonotonicClock()).run(io)

    audio = [f for f in io.written if isinstance(f, OutputAudioFrame)]
    assert audio and {f.turn_id for f in audio} == {1}  # the reply was spoken
    (before,) = at_reply_end
    assert (before["interrupted"], before["prefetched"]) == (1, 0)
    after = counters(voice["name"])
    assert (after["interrupted"], after["prefetched"]) == (1, 1)  # made after the reply
    assert first_at(log, SECOND) < first_at(log, LONG[:40])


# -- the budget -------------------------------------------------------------------------------


def test_the_budget_counts_characters_and_busy_time_over_a_minute() -> None:
    now = [0.0]
    budget = PrefetchBudget(100, 0.25, clock=lambda: now[0])
    assert budget.allows(100) and not budget.allows(101)
    assert budget.fits(100) and not budget.fits(101)
    budget.spend(80, 10.0)
    assert not budget.allows(30) and budget.allows(20)
    now[0] = 30.0
    budget.spend(10, 6.0)  # 16 s busy of the 15 s a quarter of a minute allows
    assert not budget.allows(5)
    assert budget.allows(5, preload=True)  # start-up is not held to the CPU cap
    assert budget.allows(1000, preload=True)  # nor to the characters
    assert budget.retry_in_s() == pytest.approx(30.0)  # when the first spending leaves
    now[0] = 60.0  # the first spending left the window: 10 chars, 6 s busy remain
    assert budget.allows(90) and not budget.allows(91)
    now[0] = 90.0
    assert budget.allows(100) and budget.retry_in_s() == 0.0


@pytest.mark.parametrize("bad", [(-1, 0.5), (10, 0.0), (10, 1.5)])
def test_a_budget_out_of_range_is_refused(bad: tuple[int, float]) -> None:
    with pytest.raises(ValueError, match="max_busy in"):
        PrefetchBudget(*bad)


async def test_the_budget_defers_work_until_its_window_moves(tmp_path: Path) -> None:
    provider, log = counting_flite(tmp_path)
    now = [0.0]
    prefetcher = Prefetcher(PrefetchBudget(40, 1.0, clock=lambda: now[0]))
    speech = SpeechCache(MemoryStore(), "test-voice", 16000)
    flite = FliteTTS(FliteTTS.Params(binary=provider["binary"]), name=provider["name"])
    prefetch = SpeechPrefetch(speech, flite, 16000, prefetcher)
    try:
        prefetch.add([FIRST, SECOND, OVERSIZE], "", preload=False)
        counts = prefetcher.counters
        # 33 characters of 40 spent: the next sentence waits for the minute to pass
        await until(lambda: counts["prefetched"] == 1 and counts["deferred_by_budget"] == 1)
        assert [s.text for s in prefetch.queue] == [SECOND, OVERSIZE]
        assert not any(SECOND in t for t in said(log))
        now[0] = 61.0
        await until(lambda: not prefetch.queue)
        # then it is made; a sentence longer than the whole budget never is
        assert (counts["prefetched"], counts["deferred_by_budget"]) == (2, 2)
        assert await speech.has(FIRST) and await speech.has(SECOND)
        assert not await speech.has(OVERSIZE)
        assert not any(OVERSIZE in t for t in said(log))
    finally:
        await prefetch.aclose()


async def test_preloads_are_not_held_to_the_cpu_budget(tmp_path: Path) -> None:
    provider, _ = counting_flite(tmp_path)
    now = [0.0]
    prefetcher = Prefetcher(PrefetchBudget(3000, 0.25, clock=lambda: now[0]))
    prefetcher.budget.spend(0, 20.0)  # 20 s busy in the last minute: above 15 s
    speech = SpeechCache(MemoryStore(), "test-voice", 16000)
    flite = FliteTTS(FliteTTS.Params(binary=provider["binary"]), name=provider["name"])
    predicted = SpeechPrefetch(speech, flite, 16000, prefetcher)  # two calls, one budget
    preloaded = SpeechPrefetch(speech, flite, 16000, prefetcher)
    try:
        predicted.add([FIRST], "", preload=False)
        preloaded.add([SECOND], "", preload=True)
        counts = prefetcher.counters
        await until(lambda: counts["prefetched"] == 1 and counts["deferred_by_budget"] == 1)
        assert await speech.has(SECOND) and not await speech.has(FIRST)
        assert [s.text for s in predicted.queue] == [FIRST]
    finally:
        await predicted.aclose()
        await preloaded.aclose()


async def test_start_up_preloads_are_made_whatever_the_budget(tmp_path: Path) -> None:
    # the declared answers are a cost the config bounds, paid once per process: a budget too
    # small for them (40 characters a minute) holds back predictions, never the preload
    provider, log = counting_flite(tmp_path)
    prefetch = {"max_chars_per_min": 40, "preload_timeout_s": 30}
    tts = node([provider], audio_cache=store(), prefetch=prefetch)
    await run_processor(tts, [ask(FIRST, SECOND)])
    assert sum(FIRST in t for t in said(log)) == sum(SECOND in t for t in said(log)) == 1
    stats = counters(provider["name"])
    assert (stats["prefetched"], stats["deferred_by_budget"]) == (2, 0)


# -- skipped, failed, refused -----------------------------------------------------------------


async def test_already_held_sentences_are_skipped(tmp_path: Path) -> None:
    provider, log = counting_flite(tmp_path)
    cache = store()
    await run_processor(node([provider], audio_cache=cache), [ask(FIRST)])
    await run_processor(node([provider], audio_cache=cache), [ask(FIRST, FIRST)])
    assert sum(FIRST in t for t in said(log)) == 1
    stats = counters(provider["name"])
    assert (stats["prefetched"], stats["already_held"]) == (1, 1)
    assert set(stats) == set(COUNTERS)


def test_a_sentence_being_made_is_claimed_by_one_call_at_a_time() -> None:
    prefetcher = Prefetcher(PrefetchBudget(100, 0.5))
    assert prefetcher.claim("speech:a") and not prefetcher.claim("speech:a")
    prefetcher.release("speech:a")
    assert prefetcher.claim("speech:a")


def refused() -> dict[str, Any]:
    """ElevenLabs at a loopback port nothing listens on: every request is refused."""
    base_url = f"http://127.0.0.1:{free_port()}"
    return {"type": "elevenlabs", "name": unique("refused"), "api_key": KEY, "voice_id": VOICE,
            "base_url": base_url}  # fmt: skip


def crashing(tmp_path: Path) -> dict[str, Any]:
    binary = script(tmp_path / "crash", "echo 'engine crashed' >&2; exit 3")
    return {"type": "flite", "name": unique("crash"), "binary": binary}


@pytest.mark.parametrize("make", [refused, crashing], ids=["refused-port", "crashing-engine"])
async def test_a_failing_first_provider_is_counted_and_the_call_goes_on(
    tmp_path: Path, make: Callable[..., dict[str, Any]]
) -> None:
    broken = make(tmp_path) if make is crashing else make()
    provider, _ = counting_flite(tmp_path)
    cache = store()
    tts = node([broken, provider], audio_cache=cache)
    run = await run_processor(tts, [ask(FIRST), cached(SECOND, 1), end(1)])
    assert counters(broken["name"])["failed"] == 1
    assert segments(run.downstream) == [await flite_says(SECOND)]  # failover spoke the reply
    assert clips(cache) == 0  # nothing of another voice kept


# -- params -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "key"),
    [
        ({"max_busy": 0}, "max_busy"),
        ({"max_busy": 1.5}, "max_busy"),
        ({"max_chars_per_min": -1}, "max_chars_per_min"),
        ({"preload_timeout_s": 0}, "preload_timeout_s"),
        ({"max_bussy": 0.5}, "max_bussy"),
    ],
)
def test_bad_prefetch_params_are_refused(bad: dict[str, Any], key: str) -> None:
    with pytest.raises(ValidationError, match=rf"prefetch\.{key}"):
        TextToSpeech.Params(audio_cache={"type": "memory"}, prefetch=bad)


def test_prefetch_is_on_by_default_within_the_documented_budget() -> None:
    params = TextToSpeech.Params().prefetch
    assert params.enabled
    assert (params.max_chars_per_min, params.max_busy, params.preload_timeout_s) == (3000, 0.25, 60)
