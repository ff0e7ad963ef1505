"""The response cache node in a call: hits skip the LLM (the fake OpenAI server counts the
requests), the conversation keeps cached turns, what is learned and what is refused, wrong-hit
reports, versions and flow states that never serve old replies, prediction, and two workers
sharing replies through a real ``redis-server``.

Each test names its own store (a distinct ``prefix``): the process shares one response cache
per store config, as a serving process does.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI, Reply
from redis_server import RedisServer

from callweaver.errors import ConfigError
from callweaver.frames.base import Frame
from callweaver.frames.metrics import MetricsFrame
from callweaver.frames.text import PrefetchFrame, ReplyEndFrame, ReplyTextFrame, TranscriptFrame
from callweaver.pipelines.call import Call
from callweaver.pipelines.config import parse_config
from callweaver.pipelines.graph import Edge, Graph, Node
from callweaver.processors.cache import CacheParams, ResponseCacheNode
from callweaver.processors.reply import LLMReply
from callweaver.runtime.clock import MonotonicClock
from callweaver.runtime.latency import Stage
from callweaver.services import health
from callweaver.services.cache.response import ResponseCache, all_caches
from callweaver.services.cache.store import CacheStoreParams
from callweaver.testing import ListIO

PROMPT = "You are a clinic's receptionist. Answer in one short sentence."
HOURS = "We're open from eight in the morning to six in the evening."
_stores = itertools.count()


@pytest.fixture(autouse=True)
def own_breakers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_process_health", None)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(Reply(HOURS)) as fake:
        yield fake


def store(**params: Any) -> dict[str, Any]:
    """A store config of its own (see the module docstring)."""
    return {"type": "memory", "prefix": f"test-{next(_stores)}:", **params}


def graph(
    server: FakeOpenAI,
    cache: dict[str, Any],
    *,
    cacheable: bool = True,
    prompt: str = PROMPT,
    name: str = "clinic",
) -> Graph:
    llm = LLMReply.Params(
        providers=[{"type": "openai", "base_url": server.base_url, "model": "gpt-fake"}],
        system_prompt=prompt,
        cacheable=cacheable,
    )
    nodes = [
        Node.of("cache", ResponseCacheNode, CacheParams.model_validate(cache)),
        Node.of("bot", LLMReply, llm),
    ]
    edges = [Edge.parse(e) for e in ("input -> cache", "cache -> bot", "cache.hit -> output",
                                     "bot -> output")]  # fmt: skip
    return Graph(nodes, edges, name=name)


def said(text: str, turn: int, language: str = "en") -> TranscriptFrame:
    return TranscriptFrame(call_id="c", turn_id=turn, text=text, language=language)


async def call(g: Graph, *texts: str, parameters: dict[str, str] | None = None) -> ListIO:
    """One call in which the caller says ``texts``, a turn each."""
    io = ListIO([said(t, i + 1) for i, t in enumerate(texts)])
    io.parameters = parameters or {}  # type: ignore[attr-defined]  # as a transport says them
    await Call(g, clock=MonotonicClock()).run(io)
    return io


def replies(frames: Sequence[Frame]) -> dict[int, str]:
    out: dict[int, str] = {}
    for f in frames:
        if isinstance(f, ReplyTextFrame):
            out[f.turn_id] = (out.get(f.turn_id, "") + " " + f.text).strip()
    return out


def metrics(frames: Sequence[Frame], name: str) -> list[float]:
    return [f.value for f in frames if isinstance(f, MetricsFrame) and f.name == name]


def cache_of(params: dict[str, Any]) -> ResponseCache:
    key = CacheStoreParams.model_validate(params).model_dump_json()
    found = [c for c in all_caches().values() if c.store is not None]
    from callweaver.services.cache.response import _caches

    assert key in _caches, found
    return _caches[key]


# -- learning and serving ----------------------------------------------------------------------


async def test_a_learned_reply_answers_the_next_caller_without_the_llm(
    server: FakeOpenAI,
) -> None:
    cfg = store()
    g = graph(server, {"store": cfg})
    first = await call(g, "What are your opening hours?")
    assert replies(first.written) == {1: HOURS}
    assert len(server.chats) == 1

    second = await call(g, "What are your opening hours?", "What hours are you open?")
    assert replies(second.written) == {1: HOURS, 2: HOURS}
    assert len(server.chats) == 1  # neither turn reached the model
    ends = [f for f in second.written if isinstance(f, ReplyEndFrame)]
    assert [f.turn_id for f in ends] == [1, 2]
    assert metrics(second.written, "cache.hit")[0] == 1.0  # exact, then similar
    assert 0.5 < metrics(second.written, "cache.hit")[1] < 1.0
    stats = cache_of(cfg).stats()
    assert (stats["hits"], stats["misses"], stats["learned"]) == (2, 1, 1)
    assert stats["hits_exact"] == stats["hits_similar"] == 1


async def test_the_conversation_keeps_cached_turns(server: FakeOpenAI) -> None:
    cfg = store()
    g = graph(server, {"store": cfg})
    await call(g, "What are your opening hours?")
    server.default = Reply("Yes, behind the building.")
    await call(g, "What hours are you open?", "Is there parking?")
    # the model, asked about parking, knows what the cache told the caller
    assert [(m["role"], m["content"]) for m in server.chats[-1].body["messages"]] == [
        ("system", PROMPT),
        ("user", "What hours are you open?"),
        ("assistant", HOURS),
        ("user", "Is there parking?"),
    ]


async def test_a_hit_marks_the_first_token_for_latency(server: FakeOpenAI) -> None:
    g = graph(server, {"store": store()})
    await call(g, "What are your opening hours?")
    io = ListIO([said("What are your opening hours?", 1)])
    c = Call(g, clock=MonotonicClock())
    await c.run(io)
    (turn,) = c.ctx.latency.turns
    assert Stage.FIRST_TOKEN in turn.marks


async def test_replies_with_personal_data_or_back_references_are_not_kept(
    server: FakeOpenAI,
) -> None:
    cfg = store()
    g = graph(server, {"store": cfg})
    server.default = Reply("Thanks, John. Your booking 4471 2290 is confirmed for Monday.")
    await call(g, "My name is John Smith, can you confirm my booking?")
    server.default = Reply("It costs forty dollars.")
    await call(g, "How much is it?")
    await call(g, "My name is John Smith, can you confirm my booking?", "How much is it?")
    assert len(server.chats) == 4  # nothing was served from the cache
    refused = cache_of(cfg).stats()["refused"]
    assert refused == {"personal": 2, "context": 2}


async def test_a_shared_word_does_not_carry_a_learned_reply(server: FakeOpenAI) -> None:
    # found by bench.response_cache: MiniLM scores these two 0.68 ("clinic" carries it); a
    # learned reply needs 0.70 (LEARNED_THRESHOLDS), a declared one the language's 0.55
    g = graph(server, {"store": store()})
    server.default = Reply("There's free parking behind the building.")
    await call(g, "Is there parking at the clinic?")
    server.default = Reply("We're at 42 Harbour Street.")
    io = await call(g, "Where is the clinic?")
    assert replies(io.written) == {1: "We're at 42 Harbour Street."}
    assert len(server.chats) == 2


async def test_a_question_that_leans_on_the_turn_before_is_never_served_from_the_cache(
    server: FakeOpenAI,
) -> None:
    cfg = store()
    g = graph(server, {"store": cfg, **DECLARED})
    server.default = Reply("Yes, behind the pharmacy next door.")
    io = await call(g, "Is there parking?", "ok and is there parking there")
    got = replies(io.written)
    assert got[1] == "There's free parking behind the building."
    assert got[2] == "Yes, behind the pharmacy next door."  # the model, with the conversation
    assert cache_of(cfg).stats()["skipped_context"] == 1


async def test_an_llm_not_marked_cacheable_teaches_the_cache_nothing(
    server: FakeOpenAI,
) -> None:
    cfg = store()
    g = graph(server, {"store": cfg}, cacheable=False)
    await call(g, "What are your opening hours?")
    await call(g, "What are your opening hours?")
    assert len(server.chats) == 2
    assert cache_of(cfg).stats()["learned"] == 0


async def test_a_new_system_prompt_never_serves_replies_learned_under_the_old_one(
    server: FakeOpenAI,
) -> None:
    cfg = store()
    await call(graph(server, {"store": cfg}), "What are your opening hours?")
    await call(graph(server, {"store": cfg}, prompt=PROMPT + " Be brief."), "What are your "
               "opening hours?")  # fmt: skip
    assert len(server.chats) == 2
    # nor does another deployment on the same store
    await call(graph(server, {"store": cfg}, name="other"), "What are your opening hours?")
    assert len(server.chats) == 3


async def test_a_flow_state_keeps_replies_to_its_own_step(server: FakeOpenAI) -> None:
    cfg = store()
    g = graph(server, {"store": cfg, "state_parameter": "step"})
    await call(g, "What are your opening hours?", parameters={"step": "booking"})
    await call(g, "What are your opening hours?", parameters={"step": "billing"})
    assert len(server.chats) == 2
    await call(g, "What are your opening hours?", parameters={"step": "booking"})
    assert len(server.chats) == 2


# -- declared answers --------------------------------------------------------------------------

DECLARED = {
    "answers": [
        {"id": "parking", "questions": ["Is there parking?", "Where can I park?"],
         "reply": "There's free parking behind the building."},
        {"id": "saturday", "questions": ["Are you open on Saturday?"],
         "reply": "On Saturday we're open from nine to one."},
    ]
}  # fmt: skip


async def test_declared_answers_are_served_and_their_audio_is_asked_for_at_start(
    server: FakeOpenAI,
) -> None:
    g = graph(server, {"store": store(), **DECLARED})
    io = await call(g, "Where can I park my car?", "Are you open on Sunday?")
    got = replies(io.written)
    assert got[1] == "There's free parking behind the building."
    assert got[2] == HOURS  # the near miss (Sunday vs Saturday) went to the model
    assert len(server.chats) == 1
    (prefetch,) = [f for f in io.written if isinstance(f, PrefetchFrame)]
    assert prefetch.preload and set(prefetch.texts) == {
        "There's free parking behind the building.",
        "On Saturday we're open from nine to one.",
    }


async def test_a_declared_answer_lost_by_the_store_is_put_back(server: FakeOpenAI) -> None:
    cfg = store()
    g = graph(server, {"store": cfg, **DECLARED})
    await call(g, "Is there parking?")
    cache = cache_of(cfg)
    for entry_id in list(cache._declared):
        await cache.store.delete(entry_id)  # as a TTL or an eviction would
    io = await call(g, "Is there parking?")
    assert replies(io.written) == {1: "There's free parking behind the building."}
    assert cache.stats()["restored"] == 1
    assert len(server.chats) == 0


# -- wrong hits --------------------------------------------------------------------------------


async def test_a_caller_correcting_a_cached_reply_reports_it_and_gets_the_model(
    server: FakeOpenAI,
) -> None:
    cfg = store()
    g = graph(server, {"store": cfg})
    await call(g, "What are your opening hours?")
    server.default = Reply("Yes, there's parking behind the building.")
    io = await call(g, "What are your opening hours?", "No, that's not what I asked. Parking?")
    assert replies(io.written)[2] == "Yes, there's parking behind the building."
    assert metrics(io.written, "cache.wrong_report") == [1.0]
    stats = cache_of(cfg).stats()
    assert stats["wrong_reports"] == 1 and stats["store"]["wrong_reports"] == 1
    # the learned entry is gone for everyone: the question goes to the model again
    server.default = Reply(HOURS)
    before = len(server.chats)
    await call(g, "What are your opening hours?")
    assert len(server.chats) == before + 1


# -- prediction --------------------------------------------------------------------------------


async def test_replies_often_heard_next_are_prefetched_after_a_turn(server: FakeOpenAI) -> None:
    g = graph(server, {"store": store(), **DECLARED})
    for _ in range(2):  # parking then saturday, twice: a transition seen twice
        await call(g, "Is there parking?", "Are you open on Saturday?")
    io = await call(g, "Is there parking?")
    predicted = [f for f in io.written if isinstance(f, PrefetchFrame) and not f.preload]
    assert [f.texts for f in predicted] == [("On Saturday we're open from nine to one.",)]


# -- config ------------------------------------------------------------------------------------

CONFIG = """
name: cached
pipeline:
  nodes:
    - {name: cache, type: cache, params: {store: {type: memory}}}
    - {name: bot, type: echo}
  edges: [input -> cache, cache -> bot, bot -> output%s]
"""


def test_a_cache_whose_hit_port_leads_nowhere_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="port 'hit' of node 'cache' leads nowhere"):
        parse_config(CONFIG % "")
    parse_config(CONFIG % ", cache.hit -> output")


def test_a_redis_store_without_url_is_refused() -> None:
    text = (CONFIG % ", cache.hit -> output").replace("{type: memory}", "{type: redis}")
    with pytest.raises(ConfigError, match="a redis store needs url"):
        parse_config(text)


# -- two workers on one Redis ------------------------------------------------------------------


async def test_a_reply_learned_by_one_worker_is_served_by_another(
    server: FakeOpenAI, redis_server: RedisServer
) -> None:
    params = CacheStoreParams(type="redis", url=redis_server.url, prefix="share:")
    # two workers: each its own store client and response cache, as two processes have
    workers = [ResponseCache(params.build(), sync_s=0.0) for _ in range(2)]
    a, b = workers
    try:
        kept = await a.learn("What are your opening hours?", HOURS, deployment="clinic",
                             language="en", version="v1")  # fmt: skip
        assert not isinstance(kept, str)
        hit = await b.lookup("What hours are you open?", deployment="clinic", language="en",
                             versions=["v1"])  # fmt: skip
        assert hit is not None and hit.entry.reply == HOURS and hit.reason == "similar"
        # a wrong report on one worker removes it for the other
        await b.report_wrong(hit.entry.id, "What hours are you open?")
        await a.sync()  # what worker a does on its next lookup (every sync_s)
        again = await a.lookup("What are your opening hours?", deployment="clinic",
                               language="en", versions=["v1"])  # fmt: skip
        assert again is None
        # Redis gone: lookups and learning go on locally
        redis_server.stop()
        kept = await a.learn("Is there parking near the clinic?", "Yes, behind it.",
                             deployment="clinic", language="en", version="v1")  # fmt: skip
        assert not isinstance(kept, str)
        hit = await a.lookup("Is there parking near the clinic?", deployment="clinic",
                             language="en", versions=["v1"])  # fmt: skip
        assert hit is not None
    finally:
        for w in workers:
            await w.aclose()


# -- numbers users can see ---------------------------------------------------------------------

SERVED = """
name: served
pipeline:
  nodes:
    - name: cache
      type: cache
      params:
        store: {type: memory, prefix: "served-%(n)d:"}
        answers:
          - {questions: ["Is there parking?"], reply: "There's free parking behind the building."}
    - name: bot
      type: llm
      params:
        providers: [{type: openai, base_url: "%(url)s", model: gpt-fake}]
        cacheable: true
  edges: [input -> cache, cache -> bot, cache.hit -> output, bot -> output]
"""


async def test_health_and_metrics_show_the_cache(server: FakeOpenAI) -> None:
    from callweaver.server.app import Server

    srv = Server(parse_config(SERVED % {"n": next(_stores), "url": server.base_url}))
    await srv.warm()
    io = ListIO([said("Is there parking?", 1), said("What are your opening hours?", 2),
                 said("My name is Ana, when are you open?", 3)])  # fmt: skip
    report = await srv.run_call(io, "test")
    assert report.to_json()["turns"][0]["metrics"]["cache.hit"] == 1.0
    await srv.run_call(ListIO([said("What are your opening hours?", 1)]), "test")

    _, details = srv.health()
    assert isinstance(details["prefetch"], dict)
    (stats,) = [s for name, s in details["cache"].items() if name.startswith("memory:served-")]
    assert (stats["hits"], stats["misses"], stats["learned"]) == (2, 2, 1)
    assert stats["refused"] == {"personal": 1}
    assert stats["store"]["entries"] == 2  # the declared question and the learned one
    last = stats["recent_hits"][-1]
    assert (last["text"], last["how"], last["source"]) == ("What are your opening hours?",
                                                          "exact", "llm")  # fmt: skip
    text = srv.metrics.exposition().decode()
    name = next(n for n in details["cache"] if n.startswith("memory:served-"))
    assert f'callweaver_cache_hits_total{{cache="{name}",how="exact"}} 2.0' in text
    assert f'callweaver_cache_misses_total{{cache="{name}"}} 2.0' in text
    assert f'callweaver_cache_refused_total{{cache="{name}",why="personal"}} 1.0' in text
    assert f'callweaver_cache_lookup_seconds{{cache="{name}",quantile="0.95"}}' in text


# -- the real path: two `callweaver simulate` processes on one Redis ---------------------------

ROOT = Path(__file__).resolve().parents[1]
SIMULATED = """
name: simulated
transports: {file: {realtime: false, tail_ms: 1200}}
x-store: &store {type: redis, url: "%(redis)s", prefix: "sim:"}
pipeline:
  nodes:
    - {name: vad, type: silero_vad, params: {stop_ms: 200}}
    - {name: stt, type: stt, params: {providers: [{type: whisper, model: tiny.en}], language: en}}
    - {name: cache, type: cache, params: {store: *store}}
    - name: bot
      type: llm
      params:
        providers: [{type: openai, base_url: "%(llm)s", model: gpt-fake}]
        cacheable: true
    - {name: tts, type: tts, params: {providers: [{type: flite, voice: slt}], audio_cache: *store}}
  edges: [input -> vad, vad -> stt, stt -> cache, cache -> bot, cache.hit -> tts, bot -> tts,
          tts -> output]
"""


async def simulate(config: Path, out: Path) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callweaver", "simulate", str(config), "--fast",
        "--audio", str(ROOT / "examples" / "audio" / "question-hours.wav"),
        "--out", str(out / "reply.wav"), "--json", str(out / "report.json"),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    printed, _ = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, printed.decode()
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    report["printed"] = printed.decode()
    return report


async def test_a_second_process_answers_from_what_the_first_learned(
    server: FakeOpenAI, redis_server: RedisServer, tmp_path: Path
) -> None:
    config = tmp_path / "simulated.yaml"
    config.write_text(SIMULATED % {"redis": redis_server.url, "llm": server.base_url})
    first = await simulate(config, tmp_path)
    assert len(server.chats) == 1
    assert first["turns"][0]["metrics"]["cache.miss"] == 1.0

    second = await simulate(config, tmp_path)
    assert len(server.chats) == 1  # the second caller's question never reached the model
    metrics = second["turns"][0]["metrics"]
    assert metrics["cache.hit"] == 1.0 and metrics["cache.audio.hit"] == 1.0
    said = [t["text"] for t in second["conversation"] if t["speaker"] == "bot"]
    assert " ".join(said) == HOURS
    assert "hit+audio" in second["printed"]  # the latency table's cache column
