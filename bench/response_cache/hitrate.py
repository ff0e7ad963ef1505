"""Hit rate and wrong-hit rate of the response cache over the scripted calls.

The calls of :mod:`bench.response_cache.calls` run in order, each a real call through
``cache -> llm`` (the cache node, and an ``llm`` node with ``cacheable: true`` against the
fake OpenAI server of the tests, which answers each question with its intent's reply), so the
cache learns from the early calls what it serves to the later ones. A turn is a *hit* when the
``cache.hit`` metric reaches the call's output; a hit is *wrong* when the reply served is not
the turn's intent's reply (nor one of its ``also``). Three setups, each with a fresh store:

- ``declared + learned``: the node declares the clinic's three commonest answers (hours,
  address, parking, as ``configs/llm-cached.yaml``) and learns the LLM's replies;
- ``learned only``: no declared answers;
- ``seeds' rule``: the seeds' cache, MiniLM cosine alone at 0.85 with no slot checks, in
  every language (a response cache built that way, under the node's store key).
"""

from __future__ import annotations

import itertools
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.response_cache.calls import CALLS, REPLIES, Turn
from callweaver.frames.base import Frame
from callweaver.frames.metrics import MetricsFrame
from callweaver.frames.text import ReplyTextFrame, TranscriptFrame
from callweaver.pipelines.call import Call
from callweaver.pipelines.graph import Edge, Graph, Node
from callweaver.processors.cache import CacheParams, ResponseCacheNode
from callweaver.processors.reply import LLMReply
from callweaver.runtime.clock import MonotonicClock
from callweaver.services.cache import response
from callweaver.services.cache.response import ResponseCache
from callweaver.services.cache.store import CacheStoreParams
from callweaver.testing import ListIO

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the fake OpenAI server

SETUPS = ("declared + learned", "learned only", "seeds' rule")
DECLARED = [
    {"id": "hours", "questions": ["What are your opening hours?", "When are you open?"],
     "reply": REPLIES["hours"]},
    {"id": "address", "questions": ["What is your address?", "Where is the clinic?"],
     "reply": REPLIES["address"]},
    {"id": "parking", "questions": ["Is there parking?", "Where can I park my car?"],
     "reply": REPLIES["parking"]},
]  # fmt: skip
SEEDS_THRESHOLD = 0.85
_stores = itertools.count()


def own_reply(intent: str) -> str:
    """The reply to a turn only this caller's context answers."""
    return f"Alright, I'll help you with that ({intent.removeprefix('own-')})."


def reply_of(turn: Turn) -> str:
    return REPLIES.get(turn.intent) or own_reply(turn.intent)


@dataclass
class TurnResult:
    call: int
    text: str
    intent: str
    hit: bool
    wrong: bool
    served: str
    seen_before: bool  # an earlier turn had this intent (a repeat question)


def graph(server_url: str, store: dict[str, Any], declared: bool) -> Graph:
    cache = CacheParams.model_validate(
        {"store": store, "answers": DECLARED if declared else [], "predict": 0}
    )
    llm = LLMReply.Params(
        providers=[{"type": "openai", "base_url": server_url, "model": "gpt-fake"}],
        system_prompt="You are the receptionist of Harbour Street Clinic.",
        cacheable=True,
    )
    nodes = [Node.of("cache", ResponseCacheNode, cache), Node.of("bot", LLMReply, llm)]
    edges = [Edge.parse(e) for e in ("input -> cache", "cache -> bot", "cache.hit -> output",
                                     "bot -> output")]  # fmt: skip
    return Graph(nodes, edges, name="clinic-bench")


def served_by_turn(frames: Sequence[Frame]) -> tuple[dict[int, str], set[int]]:
    text: dict[int, str] = {}
    hits: set[int] = set()
    for f in frames:
        if isinstance(f, ReplyTextFrame):
            text[f.turn_id] = (text.get(f.turn_id, "") + " " + f.text).strip()
        elif isinstance(f, MetricsFrame) and f.name == "cache.hit":
            hits.add(f.turn_id)
    return text, hits


async def run_setup(setup: str) -> dict[str, Any]:
    from fake_openai import FakeOpenAI, Reply

    class ClinicLLM(FakeOpenAI):
        """Answers each question with its intent's reply."""

        def reply_for(self, request: Any) -> Reply:
            user = [m for m in request.body["messages"] if m["role"] == "user"][-1]["content"]
            return Reply(by_text[user])

    by_text = {t.text: reply_of(t) for call in CALLS for t in call}
    store = {"type": "memory", "prefix": f"hitrate-{os.getpid()}-{next(_stores)}:"}
    if setup == "seeds' rule":
        key = CacheStoreParams.model_validate(store).model_dump_json()
        languages = {"en", "es"}
        response._caches[key] = ResponseCache(
            CacheStoreParams.model_validate(store).build(),
            check_slots=False,
            thresholds=dict.fromkeys(languages, SEEDS_THRESHOLD),
            methods=dict.fromkeys(languages, "minilm"),
        )
    results: list[TurnResult] = []
    seen: set[str] = set()
    async with ClinicLLM() as server:
        g = graph(server.base_url, store, declared=setup == "declared + learned")
        for n, call in enumerate(CALLS):
            frames = [
                TranscriptFrame(call_id="bench", turn_id=i + 1, text=t.text, language=t.language)
                for i, t in enumerate(call)
            ]
            io = ListIO(frames)
            await Call(g, clock=MonotonicClock()).run(io)
            served, hits = served_by_turn(io.written)
            for i, t in enumerate(call):
                said = served.get(i + 1, "")
                right = {reply_of(t), *(REPLIES[a] for a in t.also)}
                hit = (i + 1) in hits
                results.append(TurnResult(n + 1, t.text, t.intent, hit, hit and said not in right,
                                          said, t.intent in seen))  # fmt: skip
                seen.add(t.intent)
        requests = len(server.chats)
    cache = response._caches[CacheStoreParams.model_validate(store).model_dump_json()]
    stats = cache.stats()
    del response._caches[CacheStoreParams.model_validate(store).model_dump_json()]
    return summarize(setup, results, requests, stats)


def summarize(
    setup: str, results: Sequence[TurnResult], requests: int, stats: dict[str, Any]
) -> dict[str, Any]:
    turns = len(results)
    hits = [r for r in results if r.hit]
    wrong = [r for r in hits if r.wrong]
    repeats = [r for r in results if r.seen_before and not r.intent.startswith("own-")]
    return {
        "setup": setup,
        "turns": turns,
        "hits": len(hits),
        "hit_rate": len(hits) / turns,
        "wrong_hits": len(wrong),
        "wrong_rate": len(wrong) / turns,
        "repeat_turns": len(repeats),
        "repeat_hit_rate": sum(r.hit and not r.wrong for r in repeats) / max(len(repeats), 1),
        "llm_requests": requests,
        "refused": stats["refused"],
        "lookup_ms": stats["lookup_ms"],
        "wrong": [{"text": r.text, "intent": r.intent, "served": r.served} for r in wrong],
        "missed_repeats": [r.text for r in repeats if not r.hit],
        "by_kind": dict(
            Counter("own" if r.intent.startswith("own-") else "common" for r in results)
        ),
    }


async def measure() -> dict[str, Any]:
    return {"setups": [await run_setup(s) for s in SETUPS]}


def section(r: dict[str, Any]) -> str:
    """The markdown of the hit-rate part."""
    lines = [
        "| setup | turns | hits | hit rate | wrong hits | wrong-hit rate | repeat questions "
        "answered right | LLM requests | refused by the guard |",
        "|---|---|---|---|---|---|---|---|---|",
        "| the seeds' promise | - | - | 40 % | - | - | - | - | - |",
    ]
    for s in r["setups"]:
        refused = ", ".join(f"{k} {v}" for k, v in sorted(s["refused"].items())) or "-"
        lines.append(
            f"| {s['setup']} | {s['turns']} | {s['hits']} | {s['hit_rate']:.0%} | "
            f"{s['wrong_hits']} | {s['wrong_rate']:.0%} | "
            f"{s['repeat_hit_rate']:.0%} of {s['repeat_turns']} | {s['llm_requests']} | "
            f"{refused} |"
        )
    return "\n".join(lines)
