"""CLI: ``python -m bench.response_cache [--quick]``: hit rate and latency of the response
cache; writes its section of docs/benchmarks.md and bench/results/response_cache.json
(``--quick``: fewer calls, nothing written)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.docs import RESULTS, publish
from bench.response_cache import hitrate, latency

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- response-cache:begin -->", "<!-- response-cache:end -->"


async def measure(quick: bool) -> dict[str, Any]:
    calls, per_call = (1, 2) if quick else (3, 4)
    return {
        "hitrate": await hitrate.measure(),
        "latency": await latency.measure(calls=calls, per_call=per_call),
    }


def _setup(r: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in r["latency"]["setups"] if s["setup"] == name)


def render(r: dict[str, Any]) -> str:
    audio, text, miss, none = (_setup(r, n) for n in latency.SETUPS)
    memory = _stores_memory()

    def p(s: dict[str, Any], key: str, q: str = "p50") -> str:
        v = s.get(key)
        return "-" if not v else f"{v[q]:.0f}"

    lines = [
        BEGIN,
        "## Response cache",
        "",
        f"`python -m bench.response_cache` on {r['date']}, {r['cores']} cores, Python "
        f"{r['python']} ({r['seconds']:.0f} s).",
        "",
        "**Hit rate over scripted calls** (`bench/response_cache/calls.py`: a clinic's "
        "callers, in English and Spanish: rephrased common questions, near misses such as "
        "Saturday vs Sunday or opening vs closing time, personal data, follow-ups that lean "
        "on the turn before, short replies; the calls after the first "
        f"{hitrate.TUNED_ON} were written after the learned-reply thresholds were set). "
        "Each turn goes through the `cache` node and an `llm` node (`cacheable: true`) "
        "against the fake OpenAI server, in order, so later calls are served what earlier "
        "ones taught; the declared answers are `configs/llm-cached.yaml`'s. A hit is wrong "
        "when the reply served is not the turn's.",
        "",
        hitrate.section(r["hitrate"]),
        "",
        "**Voice-to-voice** (callers speak the clinic's declared questions in flite's voices "
        f"into paced file calls; silero VAD with `stop_ms` {r['latency']['stop_ms']}, "
        "whisper tiny.en with speculative decoding, the `cache` node, an `llm` node whose "
        f"server answers after {r['latency']['llm_delay_ms']:.0f} ms in another process, "
        'piper; ms after the end of the caller\'s speech; "after the endpoint" is what is '
        "left once the VAD has decided the turn is over):",
        "",
        latency.section(r["latency"]),
        "",
        f"A hit with its audio cached is heard {p(audio, 'v2v_ms')} ms after the caller "
        f"stops (p95 {p(audio, 'v2v_ms', 'p95')}), {p(audio, 'after_endpoint_ms')} ms after "
        f"the endpoint: the target is 250 and 50. Nearly all of it is the endpoint itself "
        f"({p(audio, 'endpoint_ms')} ms: 200 ms of silence counted in 32 ms windows) and the "
        f"transcript, which speculative decoding has ready at the endpoint "
        f"({p(audio, 'transcript_ms')} ms). A text-only hit adds piper's first audio: "
        f"{p(text, 'v2v_ms')} ms. A miss (a question none of the declared answers covers) costs "
        f"the turn one whole lookup, {_lookup(miss)} ms p50 / p95 (MiniLM's embedding of the "
        f"question, then the walk), on top of the LLM path: {p(miss, 'v2v_ms')} ms against "
        f"{p(none, 'v2v_ms')} ms with no cache in the graph (within the noise of a VAD window).",
        "",
        "Memory (`bench.cache_store`): " + memory + " Lookup at 10 000 entries: "
        "`bench.matcher` (p95 7.2 ms in English with MiniLM's embedding of the question, "
        "under 0.6 ms in Spanish and Chinese).",
        END,
    ]
    return "\n".join(lines)


def _lookup(s: dict[str, Any]) -> str:
    v = s.get("lookup_ms")
    return "-" if not v else f"{v['p50']:.2f} / {v['p95']:.2f}"


def _stores_memory() -> str:
    """The memory figures the cache-store bench last measured."""
    path = RESULTS / "cache_store.json"
    if not path.exists():
        return "not measured yet."
    m = json.loads(path.read_text()).get("memory", {})
    text = m.get("text", {}).get("mb_per_10k")
    audio = m.get("text_audio", {}).get("mb_per_10k")
    if text is None or audio is None:
        return "see its section."
    return f"{text:.1f} MB per 10 000 text entries, {audio:.0f} MB with 2 s of 8 kHz audio each."


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--quick", action="store_true", help="1 call of 2 turns; no writes")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = asyncio.run(measure(args.quick))
    publish(results, render, name="response_cache", started=started, out=args.out,
            begin=BEGIN, end=END, write=not args.quick)  # fmt: skip


if __name__ == "__main__":
    main()
