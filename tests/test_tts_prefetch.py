"""The tts node's prefetch, with real flite behind a script that logs what it is asked to say:
start-up audio made before the call ends and played from the cache afterwards, a reply that
starts cancels the synthesis in flight and goes first, already held sentences skipped, the
budget, a failing first provider, bad params.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from test_tts_node import FIRST, SECOND, counting_flite, end, node, said, script, unique

from callweaver.frames.audio import OutputAudioFrame
from callweaver.frames.metrics import MetricsFrame
from callweaver.frames.text import PrefetchFrame, ReplyTextFrame
from callweaver.pipelines.call import Call
from callweaver.pipelines.graph import Graph, Node
from callweaver.processors.tts import TextToSpeech
from callweaver.runtime.clock import MonotonicClock
from callweaver.services.cache import prefetch as prefetch_module
from callweaver.services.cache.prefetch import PrefetchBudget, prefetch_stats
from callweaver.testing import ListIO, run_processor

LONG = (
    "Our clinic is open from eight in the morning until six in the evening on weekdays, "
    "and from nine until one on Saturdays, and we are closed on Sundays and public holidays."
)


def store() -> dict[str, Any]:
    return {"type": "memory", "prefix": f"test-{uuid.uuid4().hex}:"}  # a store of its own


def ask(*texts: str, preload: bool = True) -> PrefetchFrame:
    return PrefetchFrame(call_id="test-call", turn_id=0, texts=texts, preload=preload)


def cached(text: str, turn: int) -> ReplyTextFrame:
    return ReplyTextFrame(call_id="test-call", turn_id=turn, text=text, sentence=True,
                          cacheable=True)  # fmt: skip


def counters(name: str) -> dict[str, int]:
    """The prefetch counters of the voice whose provider is ``name``."""
    (found,) = [stats for voice, stats in prefetch_stats().items() if voice in _voices[name]]
    return found


_voices: dict[str, set[str]] = {}


def track(tts: TextToSpeech, name: str) -> TextToSpeech:
    """Note which prefetch voice ``tts`` uses once started (for :func:`counters`)."""
    before = set(prefetch_module._prefetchers)
    original = tts.start

    async def start(frame: Any) -> None:
        await original(frame)
        _voices[name] = set(prefetch_module._prefetchers) - before

    tts.start = start  # type: ignore[method-assign]
    return tts


async def test_preloaded_audio_is_made_before_the_call_ends_and_played_from_the_cache(
    tmp_path: Path,
) -> None:
    provider, log = counting_flite(tmp_path)
    cache = store()
    first = track(node([provider], audio_cache=cache, lead_clause=False), provider["name"])
    run = await run_processor(first, [ask(f"{FIRST} {SECOND}")])
    assert not [f for f in run.downstream if isinstance(f, (OutputAudioFrame, PrefetchFrame))]
    assert sum(FIRST in t for t in said(log)) == sum(SECOND in t for t in said(log)) == 1
    assert counters(provider["name"])["prefetched"] == 2

    # the next call plays both from the cache: flite is not asked again
    again = node([provider], audio_cache=cache, lead_clause=False)
    run = await run_processor(again, [cached(FIRST, 1), cached(SECOND, 1), end(1)])
    assert sum(FIRST in t for t in said(log)) == 1
    hits = [
        f for f in run.downstream if isinstance(f, MetricsFrame) and f.name == "cache.audio.hit"
    ]
    assert len(hits) == 2
    assert any(isinstance(f, OutputAudioFrame) for f in run.downstream)


async def test_already_held_sentences_are_skipped(tmp_path: Path) -> None:
    provider, log = counting_flite(tmp_path)
    cache = store()
    await run_processor(track(node([provider], audio_cache=cache), provider["name"]), [ask(FIRST)])
    await run_processor(node([provider], audio_cache=cache), [ask(FIRST)])
    assert sum(FIRST in t for t in said(log)) == 1
    stats = counters(provider["name"])
    assert (stats["prefetched"], stats["held"]) == (1, 1)


async def test_a_reply_cancels_the_synthesis_in_flight_and_is_spoken_first(
    tmp_path: Path,
) -> None:
    # a voice slow on the long sentence only: its synthesis is under way for 1.5 s
    provider, log = counting_flite(tmp_path)
    body = f'case "$*" in *clinic*) sleep 1.5;; esac\nexec {provider["binary"]} "$@"'
    slow = script(tmp_path / "slow", body)
    voice = {"type": "flite", "name": unique("slow"), "binary": slow}
    tts = track(node([voice], audio_cache=store(), lead_clause=False), voice["name"])
    # the reply comes 0.5 s after the prefetch request
    io = ListIO([ask(LONG), cached(SECOND, 1), end(1)], interval_s=0.5)
    await Call(Graph([Node("tts", lambda: tts)]), clock=MonotonicClock()).run(io)
    stats = counters(voice["name"])
    assert stats["interrupted"] == 1  # the reply came while the prefetch was being made
    assert stats["prefetched"] == 1  # and it was made again after the reply, before the end
    spoken = said(log)
    assert [SECOND in t for t in spoken].index(True) < [LONG[:40] in t for t in spoken].index(True)
    audio = [f for f in io.written if isinstance(f, OutputAudioFrame)]
    assert audio and {f.turn_id for f in audio} == {1}


async def test_predictions_are_dropped_at_the_end_of_the_call(tmp_path: Path) -> None:
    provider, _ = counting_flite(tmp_path)
    slow = script(tmp_path / "slow2", f'sleep 0.3\nexec {provider["binary"]} "$@"')
    voice = {"type": "flite", "name": unique("slow"), "binary": slow}
    tts = track(node([voice], audio_cache=store()), voice["name"])
    await run_processor(tts, [ask(FIRST, SECOND, LONG, preload=False)])
    assert counters(voice["name"])["prefetched"] < 3  # not waited for


def test_the_budget_counts_characters_and_busy_time_over_a_minute() -> None:
    now = [0.0]
    budget = PrefetchBudget(100, 0.25, clock=lambda: now[0])
    assert budget.allows(100) and not budget.allows(101)
    budget.spend(80, 10.0)
    assert not budget.allows(30) and budget.allows(20)
    budget.spend(10, 6.0)  # 16 s busy of the 15 s a quarter of a minute allows
    assert not budget.allows(5)
    assert budget.allows(5, preload=True)  # start-up is not held to the CPU cap
    assert budget.retry_in_s() == pytest.approx(60.0)
    now[0] = 61.0  # the window moved past both
    assert budget.allows(100) and budget.retry_in_s() == 0.0


async def test_a_budget_too_small_defers_and_the_call_ends_anyway(tmp_path: Path) -> None:
    provider, log = counting_flite(tmp_path)
    prefetch = {"max_chars_per_min": 10, "preload_timeout_s": 0.3}
    tts = track(node([provider], audio_cache=store(), prefetch=prefetch), provider["name"])
    await run_processor(tts, [ask(FIRST)])
    assert not any(FIRST in t for t in said(log))
    assert counters(provider["name"])["deferred"] == 1


async def test_a_failing_first_provider_is_counted_and_the_call_goes_on(tmp_path: Path) -> None:
    broken = {"type": "flite", "name": unique("broken"), "binary": script(tmp_path / "b", "exit 3")}
    provider, _ = counting_flite(tmp_path)
    tts = track(node([broken, provider], audio_cache=store()), broken["name"])
    run = await run_processor(tts, [ask(FIRST), cached(SECOND, 1), end(1)])
    assert counters(broken["name"])["failed"] == 1
    assert any(isinstance(f, OutputAudioFrame) for f in run.downstream)  # failover spoke


@pytest.mark.parametrize("bad", [{"max_busy": 0}, {"max_busy": 1.5}, {"max_chars_per_min": -1}])
def test_bad_prefetch_params_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="prefetch"):
        TextToSpeech.Params(audio_cache={"type": "memory"}, prefetch=bad)
