"""Replies that hold only for now or for today: a learned "yes, we're open today until six"
must not answer tomorrow's caller, and "we're open right now" no later caller at all.

The guard's words (callweaver.services.cache.guard.dated), the response cache keeping a
day's reply until midnight in the callers' zone, then missing, and the cache node's
``timezone`` through a call against the fake OpenAI server."""

from __future__ import annotations

import datetime
import time
from collections.abc import AsyncIterator

import pytest
from fake_openai import FakeOpenAI, Reply
from pydantic import ValidationError
from test_response_cache import cache_of, call, graph, store

from callweaver.processors.cache import CacheParams
from callweaver.runtime.zones import until_midnight, zone
from callweaver.services.cache.entry import CacheEntry
from callweaver.services.cache.guard import dated, refusal
from callweaver.services.cache.response import ResponseCache
from callweaver.services.cache.store import MemoryStore

HK = zone("Asia/Hong_Kong")


@pytest.mark.parametrize(
    ("prompt", "reply", "want"),
    [
        ("are you open today", "Yes, until six this evening.", "day"),
        ("what time do you close", "We close at six tonight.", "day"),
        ("can I come in tomorrow", "Yes, we open at eight.", "day"),
        ("is the clinic open right now", "Yes, it is.", "moment"),
        ("is the doctor available", "She is currently with a patient.", "moment"),
        ("what are your hours", "We're open from eight to six, Monday to Friday.", None),
        ("are you open on Sundays", "We are now open on Sundays from ten.", None),
        ("¿abren mañana?", "Sí, mañana abrimos a las nueve.", "day"),
        ("¿a qué hora abren?", "Abrimos a las ocho de la mañana.", None),  # in the morning
        ("¿está abierto ahora mismo?", "Sí.", "moment"),
        ("你哋聽日開唔開？", "開，朝早九點。", "day"),
        ("你哋而家開唔開？", "開緊。", "moment"),
        ("诊所在哪里？", "在海港街十二号。", None),
    ],
)
def test_what_holds_only_for_now_or_for_today(prompt: str, reply: str, want: str | None) -> None:
    assert dated(prompt, reply) == want
    language = "zh" if prompt[0] > "\u3000" else "es" if prompt[0] == "¿" else "en"
    why = refusal(prompt, reply, language)  # a moment's reply is never kept
    assert why in ("dated", "context") if want == "moment" else why != "dated"


async def test_a_reply_about_today_is_kept_until_midnight_then_missed() -> None:
    # 23:00 in Hong Kong: an hour to midnight there
    now = [datetime.datetime(2026, 11, 22, 23, 0, tzinfo=HK).timestamp()]
    clock = lambda: now[0]  # noqa: E731
    cache = ResponseCache(MemoryStore(clock=clock), sync_s=3600, clock=clock)
    where = {"deployment": "clinic", "language": "en", "version": "v1", "zone": HK}
    today = await cache.learn("Are you open today?", "Yes, until eleven tonight.", **where)
    always = await cache.learn("Where is the clinic?", "At 12 Harbour Street.", **where)
    now_only = await cache.learn("Is the doctor in right now?", "Yes, she is.", **where)
    assert isinstance(today, CacheEntry) and isinstance(always, CacheEntry)
    assert today.expires_at == pytest.approx(now[0] + 3600) and always.expires_at is None
    assert now_only == "dated"
    stats = cache.stats()
    assert (stats["learned"], stats["learned_until_midnight"], stats["refused"]) == (
        2, 1, {"dated": 1}
    )  # fmt: skip

    async def ask(text: str) -> str | None:
        hit = await cache.lookup(text, deployment="clinic", language="en", versions=["v1"])
        return None if hit is None else hit.entry.reply

    now[0] += 3599  # 23:59:59
    assert await ask("Are you open today?") == "Yes, until eleven tonight."
    now[0] += 2  # the next day: today's reply is gone, the address is not
    assert await ask("Are you open today?") is None
    assert await ask("Where is the clinic?") == "At 12 Harbour Street."


def test_midnight_is_the_zones() -> None:
    at = datetime.datetime(2026, 11, 22, 23, 0, tzinfo=HK).timestamp()  # 15:00 UTC
    assert until_midnight(at, HK) == 3600
    assert until_midnight(at, zone("Europe/London")) == 9 * 3600
    # the day clocks go forward is 23 hours long
    ny = zone("America/New_York")
    spring = datetime.datetime(2026, 3, 8, 0, 0, tzinfo=ny).timestamp()
    assert until_midnight(spring, ny) == 23 * 3600


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(Reply("Yes, we're open today until six this evening.")) as fake:
        yield fake


async def test_the_cache_node_keeps_todays_reply_until_midnight_in_its_zone(
    server: FakeOpenAI,
) -> None:
    cfg = store()
    g = graph(server, {"store": cfg, "timezone": "Asia/Hong_Kong"})
    await call(g, "Are you open today?")
    before = time.time()
    (entry,) = cache_of(cfg)._entries.values()
    assert entry.expires_at is not None
    assert entry.expires_at == pytest.approx(before + until_midnight(before, HK), abs=5)
    await call(g, "Are you open today?")  # the same day: from the cache
    assert len(server.chats) == 1
    server.default = Reply("Yes, the doctor is in right now.")
    await call(g, "Is the doctor in right now?", "Is the doctor in right now?")
    assert len(server.chats) == 3  # never kept: asked of the model both times
    assert cache_of(cfg).stats()["refused"] == {"dated": 2}


def test_a_bad_zone_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match="unknown time zone 'Hong Kong'"):
        CacheParams.model_validate({"timezone": "Hong Kong"})
