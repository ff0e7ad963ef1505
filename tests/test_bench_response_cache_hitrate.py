"""bench.response_cache.hitrate on all its scripted calls (text only, a few seconds): the
script is what it claims, the strict cache answers without wrong replies where the seeds'
rule (cosine alone at 0.85) gives near misses another question's reply, and the section says
the numbers."""

from __future__ import annotations

from typing import Any

from bench.response_cache import calls, hitrate

_measured: dict[str, Any] = {}


async def results() -> dict[str, Any]:
    """One measurement for the module's tests (plain data: it outlives its event loop)."""
    if not _measured:
        _measured.update(await hitrate.measure())
    return _measured


def by_setup(r: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["setup"]: s for s in r["setups"]}


def test_the_script_is_realistic_and_labelled() -> None:
    english = [c for c in calls.CALLS if all(t.language == "en" for t in c)]
    spanish = [c for c in calls.CALLS if all(t.language == "es" for t in c)]
    assert len(english) >= 16 and sum(map(len, english)) >= 64
    assert len(spanish) >= 3
    replies = calls.by_text()  # one text, one reply: the fake LLM answers by text
    turns = [t for c in calls.CALLS for t in c]
    assert all(calls.reply_of(t) == replies[t.text] for t in turns)
    assert all(a in calls.REPLIES for t in turns for a in t.also)
    assert sum(t.intent.startswith("personal-") for t in turns) >= 5
    assert sum(t.intent.startswith("followup-") for t in turns) >= 5
    # the declared answers the bench takes from configs/llm-cached.yaml are the script's
    declared = {a["id"]: " ".join(a["reply"].split()) for a in hitrate.declared_answers()}
    assert declared == {k: calls.REPLIES[k] for k in ("hours", "address", "parking")}


async def test_hits_wrong_hits_and_requests_are_counted() -> None:
    r = await results()
    setups = by_setup(r)
    assert list(setups) == list(hitrate.SETUPS)
    best, learned = setups["declared + learned"], setups["learned only"]
    seeds = setups["seeds' rule"]
    for s in setups.values():
        assert s["turns"] == r["turns"] >= 64
        # a hit never reaches the model; every miss does
        assert s["llm_requests"] == s["turns"] - s["hits"] and s["llm_saved"] == s["hits"]
        assert s["hits"] == sum(t["hit"] for t in s["turn_results"])
        assert s["lookup_ms"]["p50"] > 0
    assert best["hit_rate"] > 0.25 and best["repeat_hit_rate"] > 0.5
    assert best["hits"] > learned["hits"]  # the declared answers hit from the first call
    assert best["first_hits_declared"] >= 3
    assert best["refused"].get("personal", 0) >= 4 and best["refused"].get("context", 0) >= 10
    # the calls the learned thresholds were set on: no wrong reply
    tuned = [t for t in best["turn_results"] if t["call"] <= calls.TUNED_ON]
    assert not [t["text"] for t in tuned if t["wrong"]]
    # similarity alone answers near misses with another question's reply
    assert seeds["wrong_hits"] >= 1
    assert ("are you open on sunday", "are you open on saturday") in {
        (w["text"], w["matched"]) for w in seeds["wrong"]
    }


async def test_the_strict_cache_never_answers_wrongly() -> None:
    # the calls written after the learned thresholds were set found two wrong hits, mended in
    # the matcher: "hello is the clinic open right now" got the address ("where is the
    # clinic", the topic rule), "is saturday possible" a booking reply (an entry that books
    # answers only a caller who says so)
    setups = by_setup(await results())
    assert setups["declared + learned"]["wrong"] == []
    assert setups["learned only"]["wrong"] == []


async def test_the_section_says_the_numbers() -> None:
    r = await results()
    text = hitrate.section(r)
    assert "40 %" in text
    for s in r["setups"]:
        assert f"| {s['setup']} | {s['hits']} of {s['turns']} |" in text
        assert f"{s['hit_rate']:.0%}".replace("%", " %") in text
        for w in s["wrong"]:
            assert f'"{w["text"]}"' in text and w["served"] in text  # each wrong hit, in words
