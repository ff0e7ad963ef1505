"""bench.response_cache runs and measures what it says: the hit-rate part on all its scripted
calls (a few seconds), the latency part on one short call per setup through the real offline
path (VAD, whisper, cache, fake LLM in another process, piper)."""

from __future__ import annotations

from bench.response_cache import hitrate, latency


async def test_the_hit_rate_bench_counts_hits_and_wrong_hits() -> None:
    r = await hitrate.measure()
    setups = {s["setup"]: s for s in r["setups"]}
    best, seeds = setups["declared + learned"], setups["seeds' rule"]
    assert best["turns"] >= 64
    assert best["wrong_hits"] == 0 and best["hit_rate"] > 0.3
    assert best["llm_requests"] == best["turns"] - best["hits"]  # a hit never reaches it
    assert setups["learned only"]["hits"] < best["hits"]  # declared answers hit from call 1
    assert seeds["wrong_hits"] >= 1  # similarity alone answers near misses wrongly
    assert best["refused"].get("personal", 0) >= 3
    text = hitrate.section(r)
    assert "40 %" in text and f"{best['hit_rate']:.0%}" in text


async def test_the_latency_bench_hears_cached_audio_on_the_first_call() -> None:
    r = await latency.measure(calls=1, per_call=2, setups=("hit+audio", "miss"))
    audio, miss = r["setups"]
    # the warm call made the declared answers' audio: every hit plays it, no synthesis
    assert audio["answered"] == audio["hits"] == audio["audio_hits"] == 2
    assert audio["v2v_ms"] is not None and audio["after_endpoint_ms"] is not None
    assert miss["hits"] == 0 and miss["lookup_ms"] is not None
    assert "hit+audio" in latency.section(r)
