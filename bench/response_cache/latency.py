"""Voice-to-voice of cached replies, on the offline agent's real path.

Callers (flite voices) ask the clinic's declared questions out loud into a paced file call:
silero VAD (``stop_ms`` 200) -> whisper tiny.en (speculative) -> ``cache`` -> ``llm`` -> piper.
The LLM is the fake OpenAI server in a process of its own on the other core, answering after
200 ms. Four setups, each a fresh deployment and store:

- ``hit+audio``: the cache holds the declared answers, the ``tts`` node an ``audio_cache``
  whose audio the warm call preloaded: a hit skips the LLM and the synthesis;
- ``hit text``: the same without ``audio_cache``: a hit skips the LLM, piper speaks;
- ``miss``: the cache holds the declared answers, the callers ask what none of them answers
  ("do you sell dog food"): every turn pays a whole lookup (``cache.lookup_ms``: MiniLM's
  embedding of the question and the walk) and goes to the LLM;
- ``no cache``: the same questions through the graph without the cache node.

Each turn's stages are read from the call's report (ms after the end of the caller's speech);
"after endpoint" is voice-to-voice less the endpoint decision, the part the cache can change.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.fakes import FakesProcess
from bench.offline_agent.questions import RATE, VOICES, Voices
from callweaver.pipelines.call import Call
from callweaver.pipelines.config import Deployment, load_config, parse_config
from callweaver.runtime.clock import MonotonicClock
from callweaver.runtime.latency import percentile
from callweaver.services.answers import AnswersParams
from callweaver.transports.file import FileIO
from callweaver.transports.wav import Pcm

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the fakes

SETUPS = ("hit+audio", "hit text", "miss", "no cache")
LLM_DELAY_S = 0.20
STOP_MS = 200
LEAD_S, WAIT_S, TAIL_S = 0.5, 3.5, 3.0
LLM_REPLY = "Let me check that for you. One moment, please."
_prefixes = itertools.count()


async def serve_fakes() -> None:
    """The fake LLM until stdin closes; its address as one JSON line."""
    from fake_openai import FakeOpenAI, Reply

    llm = FakeOpenAI(Reply(LLM_REPLY, first_delay=LLM_DELAY_S))
    await llm.start()
    print(json.dumps({"llm": llm.base_url}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await llm.stop()


def declared() -> list[dict[str, Any]]:
    """The clinic's declared answers (configs/local.yaml's ``answers`` node)."""
    dep = load_config(ROOT / "configs" / "local.yaml")
    node = next(n for n in dep.config.pipeline.nodes if n.type == "answers")
    params = AnswersParams.model_validate(node.params)
    return [a.model_dump() for a in params.all_answers]


MISSES = (
    "Do you sell dog food?",
    "What is the weather like today?",
    "How much does a haircut cost?",
    "Can I get a prescription refill?",
)


def questions(setup: str) -> list[str]:
    """What the callers ask: each declared answer's first phrasing, or (``miss``, ``no
    cache``) questions no declared answer covers."""
    if setup.startswith("hit"):
        return [a["questions"][0] for a in declared()]
    return list(MISSES)


def deployment(setup: str, llm_url: str) -> Deployment:
    store = {"type": "memory", "prefix": f"bench-{os.getpid()}-{next(_prefixes)}:"}
    nodes: list[dict[str, Any]] = [
        {"name": "vad", "type": "silero_vad",
         "params": {"stop_ms": STOP_MS, "barge_in": True, "interrupt_min_ms": 200}},
        {"name": "stt", "type": "stt", "params": {
            "providers": [{"type": "whisper", "model": "tiny.en"}], "language": "en",
            "speculative": True}},
    ]  # fmt: skip
    edges = ["input -> vad", "vad -> stt"]
    if setup != "no cache":
        answers = declared()
        nodes.append({"name": "cache", "type": "cache",
                      "params": {"store": store, "answers": answers, "learn": False}})  # fmt: skip
        edges += ["stt -> cache", "cache -> llm", "cache.hit -> tts"]
    else:
        edges.append("stt -> llm")
    nodes.append({"name": "llm", "type": "llm", "params": {
        "providers": [{"type": "openai", "base_url": llm_url, "model": "gpt-fake"}]}})  # fmt: skip
    tts: dict[str, Any] = {"providers": ["piper", {"type": "flite", "voice": "slt"}]}
    if setup == "hit+audio":
        tts["audio_cache"] = store
    nodes.append({"name": "tts", "type": "tts", "params": tts})
    edges += ["llm -> tts", "tts -> output"]
    config = {"name": "cache-bench", "pipeline": {"nodes": nodes, "edges": edges}}
    return parse_config(json.dumps(config), f"cache-bench-{setup}.yaml")


def caller_audio(voices: Voices, voice: str, texts: Sequence[str]) -> Pcm:
    parts = [np.zeros(round(LEAD_S * RATE), np.int16)]
    for text in texts:
        parts += [voices.say(text, voice), np.zeros(round(WAIT_S * RATE), np.int16)]
    return Pcm(np.concatenate(parts).tobytes(), RATE)


async def run_call(dep: Deployment, audio: Pcm) -> list[dict[str, Any]]:
    clock = MonotonicClock()
    io = FileIO(audio, clock, realtime=True, tail_ms=round(TAIL_S * 1000))
    report = await Call(dep.graph, clock=clock).run(io)
    turns: list[dict[str, Any]] = report.to_json()["turns"]
    return turns


async def one_setup(setup: str, llm_url: str, voices: Voices, calls: int, per_call: int) -> Any:
    dep = deployment(setup, llm_url)
    # the warm call, as `callweaver serve` runs one: models load, declared audio is made
    await run_call(dep, Pcm(bytes(round(0.6 * RATE) * 2), RATE))
    asked = questions(setup)
    turns: list[dict[str, Any]] = []
    for i in range(calls):
        texts = [asked[(i * per_call + k) % len(asked)] for k in range(per_call)]
        turns += await run_call(dep, caller_audio(voices, VOICES[i % len(VOICES)], texts))
    return summarize(setup, turns)


def _stats(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "max": max(values)}  # fmt: skip


def summarize(setup: str, turns: Sequence[dict[str, Any]]) -> dict[str, Any]:
    answered = [t for t in turns if t.get("voice_to_voice_ms") is not None]
    hits = [t for t in answered if "cache.hit" in t.get("metrics", {})]
    audio = [t for t in hits if "cache.audio.hit" in t.get("metrics", {})]
    measured = hits if setup.startswith("hit") else answered

    def col(key: str) -> list[float]:
        return [t[key] for t in measured if t.get(key) is not None]

    after = [t["voice_to_voice_ms"] - t["endpoint"] for t in measured if t.get("endpoint")]
    lookups = [t["metrics"]["cache.lookup_ms"] for t in answered
               if "cache.lookup_ms" in t.get("metrics", {})]  # fmt: skip
    return {
        "setup": setup,
        "turns": len(turns),
        "answered": len(answered),
        "hits": len(hits),
        "audio_hits": len(audio),
        "v2v_ms": _stats(col("voice_to_voice_ms")),
        "endpoint_ms": _stats(col("endpoint")),
        "transcript_ms": _stats(col("final_transcript")),
        "after_endpoint_ms": _stats(after),
        "lookup_ms": _stats(lookups),
    }


async def measure(
    calls: int = 2, per_call: int = 4, setups: Sequence[str] = SETUPS
) -> dict[str, Any]:
    cores = sorted(os.sched_getaffinity(0))
    fakes = FakesProcess("bench.response_cache.latency", cores[-1] if len(cores) > 1 else None)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            voices = Voices(Path(tmp))
            results = [
                await one_setup(s, fakes.addresses["llm"], voices, calls, per_call) for s in setups
            ]
    finally:
        fakes.close()
    return {"llm_delay_ms": LLM_DELAY_S * 1000, "stop_ms": STOP_MS, "setups": results}


def _ms(stats: dict[str, float] | None, key: str) -> str:
    return "-" if not stats else f"{stats[key]:.0f}"


def section(r: dict[str, Any]) -> str:
    """The markdown rows of the latency part (the package's report frames them)."""
    lines = [
        "| setup | turns (cache hits, with audio) | voice-to-voice p50 / p95 ms | "
        "after the endpoint p50 / p95 ms | transcript p50 ms | lookup p50 / p95 ms |",
        "|---|---|---|---|---|---|",
    ]
    for s in r["setups"]:
        lines.append(
            f"| {s['setup']} | {s['answered']} ({s['hits']}, {s['audio_hits']}) | "
            f"{_ms(s['v2v_ms'], 'p50')} / {_ms(s['v2v_ms'], 'p95')} | "
            f"{_ms(s['after_endpoint_ms'], 'p50')} / {_ms(s['after_endpoint_ms'], 'p95')} | "
            f"{_ms(s['transcript_ms'], 'p50')} | "
            f"{_fmt(s['lookup_ms'], 'p50')} / {_fmt(s['lookup_ms'], 'p95')} |"
        )
    return "\n".join(lines)


def _fmt(stats: dict[str, float] | None, key: str) -> str:
    return "-" if not stats else f"{stats[key]:.2f}"


if __name__ == "__main__":
    if "--fakes" in sys.argv:
        asyncio.run(serve_fakes())
