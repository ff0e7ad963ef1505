"""bench.response_cache's latency part measures what it says, on one short call per setup
through the real offline path (VAD, whisper, cache, fake LLM in another process, piper); the
hit-rate part has tests/test_bench_response_cache_hitrate.py."""

from __future__ import annotations

from bench.response_cache import latency


async def test_the_latency_bench_hears_cached_audio_on_the_first_call() -> None:
    r = await latency.measure(calls=1, per_call=2, setups=("hit+audio", "miss"))
    audio, miss = r["setups"]
    # the warm call made the declared answers' audio: every hit plays it, no synthesis
    assert audio["answered"] == audio["hits"] == audio["audio_hits"] == 2
    assert audio["v2v_ms"] is not None and audio["after_endpoint_ms"] is not None
    assert miss["hits"] == 0 and miss["lookup_ms"] is not None
    assert "hit+audio" in latency.section(r)
