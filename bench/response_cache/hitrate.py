"""Hit rate and wrong-hit rate of the response cache over the scripted calls.

The calls of :mod:`bench.response_cache.calls` run in order, each a real :class:`Call` of the
graph ``cache -> llm`` (the ``cache`` node, and an ``llm`` node with ``cacheable: true``
against the tests' fake OpenAI server, which answers each request with the reply of the intent
of its last user message), so the cache learns from the early calls what it serves to the
later ones. A turn is a *hit* when the ``cache.hit`` metric of its turn reaches the call's
output; a hit is *wrong* when the reply served is not the turn's intent's (nor one of its
``also``). Three setups, each with a fresh store:

- ``declared + learned``: the node declares configs/llm-cached.yaml's answers (hours,
  address, parking) and learns the LLM's replies;
- ``learned only``: no declared answers;
- ``seeds' rule``: the seeds' cache, MiniLM cosine alone at 0.85, no slot checks, whatever the
  language (as ``bench.matcher`` measures it), no declared answers. The guard still keeps
  personal and context-bound replies out and skips follow-ups, so its wrong hits here are
  fewer than the seeds' cache, which had no guard, would give.

A node takes the process's response cache of its store config
(:func:`~callweaver.services.cache.response.shared_response_cache`, keyed by the store
params' JSON). Each setup registers its own cache under its store's key before the calls run,
so that the node picks it up: for the seeds' rule, the only way to give a node other matcher
settings (they are for comparison, never a node parameter); for every setup, a cache that
notes why each lookup missed (:class:`TracedCache`, the same lookup otherwise).
"""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.response_cache.calls import CALLS, REPLIES, TUNED_ON, Turn, by_text, reply_of
from callweaver.frames.base import Frame
from callweaver.frames.metrics import MetricsFrame
from callweaver.frames.text import ReplyTextFrame, TranscriptFrame
from callweaver.pipelines.call import Call
from callweaver.pipelines.graph import Edge, Graph, Node
from callweaver.processors.cache import CacheParams, ResponseCacheNode
from callweaver.processors.reply import LLMReply
from callweaver.runtime.clock import MonotonicClock
from callweaver.services.cache import response
from callweaver.services.cache.entry import EntrySource
from callweaver.services.cache.guard import leans_back
from callweaver.services.cache.response import Hit, ResponseCache
from callweaver.services.cache.store import CacheStoreParams
from callweaver.testing import ListIO
from callweaver.text.languages import language_key

__all__ = ["SETUPS", "TracedCache", "declared_answers", "measure", "run_setup", "section"]

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))  # the fake OpenAI server

SETUPS = ("declared + learned", "learned only", "seeds' rule")
SEEDS_THRESHOLD = 0.85
SEEDS_PROMISE = 0.40
CACHED_CONFIG = ROOT / "configs" / "llm-cached.yaml"
_stores = itertools.count()


def declared_answers() -> list[dict[str, Any]]:
    """The ``cache`` node's declared answers in configs/llm-cached.yaml."""
    config = yaml.safe_load(CACHED_CONFIG.read_text())
    node = next(n for n in config["pipeline"]["nodes"] if n["type"] == "cache")
    return list(node["params"]["answers"])


# -- a cache that says why it missed ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Lookup:
    """One lookup as the cache saw it: the caller's text, and the hit (the entry's question,
    reply, source, score) or why there was none (``miss``: ``"context"``, ``"nothing"``,
    ``"threshold"`` or ``"slots"``, and ``why`` in words)."""

    text: str
    hit: bool
    prompt: str = ""
    reply: str = ""
    source: str = ""
    score: float = 0.0
    miss: str = ""
    why: str = ""


class TracedCache(ResponseCache):
    """A :class:`ResponseCache` that keeps a :class:`Lookup` per lookup: after a miss, the
    same matchers are asked again (a diagnostic; the lookup's time and counters are the
    cache's own) for the closest entry and what ruled it out."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[Lookup] = []

    async def lookup(
        self,
        text: str,
        *,
        deployment: str,
        language: str,
        versions: Iterable[str],
        flow_state: str = "",
    ) -> Hit | None:
        versions = tuple(versions)
        hit = await super().lookup(
            text,
            deployment=deployment,
            language=language,
            versions=versions,
            flow_state=flow_state,
        )
        if hit is not None:
            e = hit.entry
            self.log.append(
                Lookup(text, True, e.original_prompt, e.reply, e.source.value, hit.score)
            )
        else:
            miss, why = await self._why(text, deployment, language, versions, flow_state)
            self.log.append(Lookup(text, False, miss=miss, why=why))
        return hit

    async def _why(
        self, text: str, deployment: str, language: str, versions: Sequence[str], state: str
    ) -> tuple[str, str]:
        if leans_back(text, language):
            return "context", "leans on the turn before: never looked up"
        best = None
        for version in versions:
            # the families' matchers: private, read here for the diagnostic only
            matcher = self._families.get(self.family(deployment, state, version))
            if matcher is None or not len(matcher):
                continue
            result = await matcher.match(text, language)
            if result.best_key is not None and (best is None or result.best_score > best[0]):
                best = (result.best_score, result, matcher)
        if best is None or best[1].reason == "other language":
            return "nothing", "nothing cached yet in its language"
        score, result, matcher = best
        entry = await self.store.get_entry(result.best_key or "")
        closest = f'closest "{entry.original_prompt}" at {score:.2f}' if entry else "closest gone"
        if result.reason != "below threshold":
            return "slots", f"{closest}, ruled out: {result.reason}"
        need = matcher.threshold(language)
        if entry is not None and entry.source is not EntrySource.DECLARED:
            method = matcher.methods.get(language_key(language), "ngram")
            need = max(self.learned_thresholds[method], need)
        return "threshold", f"{closest}, below the {need:.2f} it needs"


# -- the calls -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TurnResult:
    call: int  # counted from 1
    text: str
    intent: str
    language: str
    kind: str  # "repeat" (its intent was asked before), "first" or "own"
    hit: bool
    wrong: bool
    served: str  # the cached reply, on a hit
    matched: str  # on a hit, the entry's question; on a miss, why
    score: float  # on a hit
    source: str  # on a hit, "declared" or "llm"; on a miss, Lookup.miss


def graph(server_url: str, store: dict[str, Any], answers: list[dict[str, Any]]) -> Graph:
    """The cache node in front of an ``llm`` node, as tests/test_response_cache.py builds it."""
    cache = CacheParams.model_validate({"store": store, "answers": answers, "predict": 0})
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
    """The reply text each turn heard, and the turns the ``cache.hit`` metric marks."""
    text: dict[int, str] = {}
    hits: set[int] = set()
    for f in frames:
        if isinstance(f, ReplyTextFrame):
            text[f.turn_id] = (text.get(f.turn_id, "") + " " + f.text).strip()
        elif isinstance(f, MetricsFrame) and f.name == "cache.hit":
            hits.add(f.turn_id)
    return text, hits


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def _new_cache(setup: str, params: CacheStoreParams) -> TracedCache:
    if setup == "seeds' rule":
        languages = ("en", "es")
        return TracedCache(
            params.build(),
            check_slots=False,
            thresholds=dict.fromkeys(languages, SEEDS_THRESHOLD),
            methods=dict.fromkeys(languages, "minilm"),
        )
    # as shared_response_cache makes it, but on a store of its own rather than the process's
    # shared_store(params): here no tts node's audio cache shares it
    return TracedCache(params.build())


async def run_setup(setup: str) -> dict[str, Any]:
    """Every scripted call, in order, through a fresh cache of ``setup``."""
    from fake_openai import FakeOpenAI, Reply, Request

    replies = by_text()

    class ClinicLLM(FakeOpenAI):
        """Answers each request with the reply of its last user message's intent."""

        def reply_for(self, request: Request) -> Reply:
            users = [m for m in request.body["messages"] if m["role"] == "user"]
            return Reply(replies[users[-1]["content"]])

    answers = declared_answers() if setup == "declared + learned" else []
    declared = {a["id"]: " ".join(a["reply"].split()) for a in answers}
    store = {"type": "memory", "prefix": f"hitrate-{os.getpid()}-{next(_stores)}:"}
    params = CacheStoreParams.model_validate(store)
    key = params.model_dump_json()
    cache = response._caches[key] = _new_cache(setup, params)
    results: list[TurnResult] = []
    seen: set[str] = set()
    started = time.perf_counter()
    try:
        async with ClinicLLM() as server:
            g = graph(server.base_url, store, answers)
            for n, call in enumerate(CALLS, 1):
                cache.log.clear()
                frames = [
                    TranscriptFrame(
                        call_id=f"bench-{n}", turn_id=i, text=t.text, language=t.language
                    )
                    for i, t in enumerate(call, 1)
                ]
                io = ListIO(frames)
                await Call(g, clock=MonotonicClock()).run(io)
                served, hits = served_by_turn(io.written)
                log = list(cache.log)
                for i, t in enumerate(call, 1):
                    lookup = _take(log, t.text)
                    results.append(_judge(n, i, t, served, hits, lookup, seen, declared))
                    seen.add(t.intent)
            requests = len(server.chats)
        stats = cache.stats()
    finally:
        del response._caches[key]
        await cache.aclose()
    return summarize(setup, results, requests, stats, time.perf_counter() - started)


def _take(log: list[Lookup], text: str) -> Lookup | None:
    """The first lookup of ``text`` left in ``log`` (a turn the node did not look up, a
    correction, has none)."""
    for i, lookup in enumerate(log):
        if lookup.text == text:
            return log.pop(i)
    return None


def _judge(
    n: int,
    i: int,
    t: Turn,
    served: dict[int, str],
    hits: set[int],
    lookup: Lookup | None,
    seen: set[str],
    declared: dict[str, str],
) -> TurnResult:
    right = [reply_of(t), *(REPLIES[a] for a in t.also)]
    right += [declared[a] for a in (t.intent, *t.also) if a in declared]
    hit = i in hits
    said = served.get(i, "") if hit else ""
    wrong = hit and not any(_same(said, r) for r in right)
    kind = "own" if t.own else "repeat" if t.intent in seen else "first"
    if lookup is None:  # a correction: the node reported its last hit instead
        matched, score, source = "not looked up", 0.0, "correction"
    elif lookup.hit:
        matched, score, source = lookup.prompt, lookup.score, lookup.source
    else:
        matched, score, source = lookup.why, 0.0, lookup.miss
    return TurnResult(
        n, t.text, t.intent, t.language, kind, hit, wrong, said, matched, score, source
    )


def summarize(
    setup: str,
    results: Sequence[TurnResult],
    requests: int,
    stats: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    """The setup's numbers (JSON-able)."""
    turns = len(results)
    hits = [r for r in results if r.hit]
    wrong = [r for r in hits if r.wrong]
    repeats = [r for r in results if r.kind == "repeat"]
    firsts = [r for r in results if r.kind == "first"]
    own = [r for r in results if r.kind == "own"]
    later = [r for r in results if r.call > TUNED_ON]
    return {
        "setup": setup,
        "turns": turns,
        "hits": len(hits),
        "hit_rate": len(hits) / turns,
        "wrong_hits": len(wrong),
        "wrong_rate": len(wrong) / turns,
        "repeat_turns": len(repeats),
        "repeat_hits": sum(r.hit for r in repeats),
        "repeat_hit_rate": sum(r.hit for r in repeats) / max(len(repeats), 1),
        "repeat_right_rate": sum(r.hit and not r.wrong for r in repeats) / max(len(repeats), 1),
        "first_turns": len(firsts),
        "first_hits": sum(r.hit for r in firsts),
        "own_turns": len(own),
        "own_hits": sum(r.hit for r in own),
        "later_calls": {  # the calls written after the learned thresholds were set
            "turns": len(later),
            "hits": sum(r.hit for r in later),
            "wrong_hits": sum(r.wrong for r in later),
        },
        "llm_requests": requests,
        "llm_saved": turns - requests,
        "learned": stats["learned"],
        "refused": stats["refused"],
        "skipped_context": stats["skipped_context"],
        "lookup_ms": stats["lookup_ms"],
        "seconds": round(seconds, 2),
        "wrong": [
            {
                "text": r.text,
                "intent": r.intent,
                "served": r.served,
                "matched": r.matched,
                "score": round(r.score, 3),
                "source": r.source,
                "call": r.call,
            }
            for r in wrong
        ],
        "missed_repeats": [r.text for r in repeats if not r.hit],
        "missed_repeats_why": [
            {"text": r.text, "miss": r.source, "why": r.matched} for r in repeats if not r.hit
        ],
        "first_hits_declared": sum(r.hit and r.source == "declared" for r in firsts),
        "turn_results": [asdict(r) for r in results],
    }


async def measure() -> dict[str, Any]:
    """Every setup, one after the other (JSON-able)."""
    turns = [t for call in CALLS for t in call]
    return {
        "calls": len(CALLS),
        "turns": len(turns),
        "languages": {
            lang: sum(t.language == lang for t in turns)
            for lang in sorted({t.language for t in turns})
        },
        "tuned_on_calls": TUNED_ON,
        "seeds_threshold": SEEDS_THRESHOLD,
        "setups": [await run_setup(s) for s in SETUPS],
    }


# -- the section -----------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{x:.0%}".replace("%", " %")


def _ms(s: dict[str, Any]) -> str:
    v = s["lookup_ms"]
    return f"{v['p50']:.1f} / {v['p95']:.1f}"


def section(r: dict[str, Any]) -> str:
    """The markdown of the hit-rate part: the table, then what the numbers say."""
    setups = {s["setup"]: s for s in r["setups"]}
    lines = [
        "| setup | hits | hit rate | wrong hits | wrong-hit rate | repeat questions answered "
        "| LLM requests (saved) | refused by the guard | lookup p50 / p95 ms |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| the seeds' promise | - | {_pct(SEEDS_PROMISE)} | - | - | - | - | - | - |",
    ]
    for s in r["setups"]:
        refused = ", ".join(f"{k} {v}" for k, v in sorted(s["refused"].items())) or "none"
        lines.append(
            f"| {s['setup']} | {s['hits']} of {s['turns']} | {_pct(s['hit_rate'])} | "
            f"{s['wrong_hits']} | {_pct(s['wrong_rate'])} | "
            f"{s['repeat_hits']} of {s['repeat_turns']} ({_pct(s['repeat_hit_rate'])}) | "
            f"{s['llm_requests']} ({s['llm_saved']}) | {refused} | {_ms(s)} |"
        )
    lines += ["", *_reading(r, setups)]
    return "\n".join(lines)


def _reading(r: dict[str, Any], setups: dict[str, dict[str, Any]]) -> list[str]:
    s0 = r["setups"][0]
    out = [
        f"{r['calls']} calls, {r['turns']} turns ("
        + ", ".join(f"{n} {lang}" for lang, n in r["languages"].items())
        + f"): {s0['repeat_turns']} ask a question an earlier turn asked, "
        f"{s0['first_turns']} ask one for the first time, and {s0['own_turns']} are the "
        "caller's own (personal data, follow-ups, short answers), which no cached reply may "
        "answer. So a cache that learns can answer at most the repeat questions rightly "
        f"({_pct(s0['repeat_turns'] / r['turns'])} of the turns), and one with declared "
        "answers the first askings of their questions too. The seeds' 40 % counted hits "
        "without asking whether they were right."
    ]
    for s in r["setups"]:
        later = s["later_calls"]
        declared = s["first_hits_declared"]
        out += [
            "",
            f"**{s['setup']}**: {s['hits']} hits, {_wrong(s)}; {s['first_hits']} first "
            "askings answered"
            + (f" ({declared} by a declared answer)" if declared else "")
            + f", {s['own_hits']} of the callers' own turns. In the "
            f"{r['calls'] - r['tuned_on_calls']} calls written after the learned thresholds "
            f"were set: {later['hits']} hits in {later['turns']} turns, "
            f"{later['wrong_hits']} wrong.",
        ]
    best = setups.get("declared + learned")
    if best is not None:
        by: dict[str, list[str]] = {}
        for m in best["missed_repeats_why"]:
            why = m["why"].removeprefix("closest ")
            text = f'"{m["text"]}"' if m["miss"] == "context" else f'"{m["text"]}" ({why})'
            by.setdefault(m["miss"], []).append(text)
        parts = [
            f"{len(by[k])} {label}: {'; '.join(by[k])}"
            for k, label in (
                ("threshold", "less similar to a cached question than the threshold asks"),
                ("slots", "ruled out by what the caller pinned down"),
                ("context", "never looked up, as they lean on the turn before"),
                ("nothing", "with nothing cached in their language yet"),
            )
            if k in by
        ]
        missed = best["repeat_turns"] - best["repeat_hits"]
        out += [
            "",
            f"The {missed} repeat questions the declared + learned cache missed: "
            + ". ".join(parts)
            + ".",
        ]
    return out


def _wrong(s: dict[str, Any]) -> str:
    """The wrong hits in words, the same one once."""
    if not s["wrong"]:
        return "none wrong"
    seen: dict[tuple[str, str], int] = {}
    for w in s["wrong"]:
        seen[(w["text"], w["matched"])] = seen.get((w["text"], w["matched"]), 0) + 1
    items = []
    for (text, matched), n in seen.items():
        w = next(w for w in s["wrong"] if (w["text"], w["matched"]) == (text, matched))
        how = "declared" if w["source"] == "declared" else "learned"
        times = f" ({n} times)" if n > 1 else ""
        items.append(
            f'"{text}"{times} got the reply {how} for "{matched}" ({w["score"]:.2f}): '
            f'"{w["served"]}"'
        )
    return f"{s['wrong_hits']} wrong: " + "; ".join(items)
