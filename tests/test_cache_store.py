"""The response cache's storage: keys, entries as bytes, the in-process LRU store on a clock the
test moves, and the Redis store against a real ``redis-server``: two workers sharing entries
and audio, Redis killed mid-test (calls go on locally, each within the timeout) and restarted
(sharing resumes), no server at all, and corrupt bytes under an entry's key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from ports import free_port
from pydantic import ValidationError
from redis_server import BINARY, SKIP_REASON, RedisServer

from callweaver.errors import CacheCorrupt, CacheError
from callweaver.services.cache import (
    CachedAudio,
    CacheEntry,
    CacheStoreParams,
    EntrySource,
    MemoryStore,
    Scope,
    audio_key,
    entry_id,
    normalize_prompt,
    prompt_version,
)
from callweaver.services.cache.redis_store import RedisStore

T = TypeVar("T")
SCOPE = Scope(deployment="clinic", language="en-US", flow_state="", prompt_version="v1")
needs_redis = pytest.mark.skipif(BINARY is None, reason=SKIP_REASON)


class Clock:
    """Wall time that moves only when the test says so."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def entry(prompt: str, reply: str = "We open at nine.", *, scope: Scope = SCOPE) -> CacheEntry:
    return CacheEntry.new(
        scope=scope, prompt=prompt, reply=reply, source=EntrySource.LLM, now=time.time()
    )


# -- keys and entries ------------------------------------------------------------------------


def test_scope_key_is_stable_and_parts_cannot_run_into_each_other() -> None:
    assert SCOPE.key() == "clinic/en-US//v1" == str(SCOPE)
    assert Scope.parse(SCOPE.key()) == SCOPE
    odd = Scope(deployment="a/b", language="en", flow_state="c%d", prompt_version="")
    assert Scope.parse(odd.key()) == odd
    assert odd.key() != Scope(deployment="a", language="b/en", flow_state="c%d").key()


def test_entry_ids_follow_the_normalized_prompt_and_every_part_of_the_scope() -> None:
    same = normalize_prompt("What time are you OPEN?")
    assert same == normalize_prompt("what time  are you open") == "what time are you open"
    base = entry_id(SCOPE, same)
    assert len(base) == 32 and base == entry_id(Scope.parse(SCOPE.key()), same)
    for changed in (
        Scope(deployment="other", language="en-US", prompt_version="v1"),
        Scope(deployment="clinic", language="fr-FR", prompt_version="v1"),
        Scope(deployment="clinic", language="en-US", flow_state="booking", prompt_version="v1"),
        Scope(deployment="clinic", language="en-US", prompt_version="v2"),
    ):
        assert entry_id(changed, same) != base


def test_prompt_version_and_audio_key_change_with_what_they_depend_on() -> None:
    answers = [{"id": "hours", "reply": "Nine to five."}]
    v = prompt_version("You are a clinic's front desk.", answers)
    assert len(v) == 12 and v == prompt_version("You are a clinic's front desk.", answers)
    assert v != prompt_version("You are a clinic's front desk!", answers)
    assert v != prompt_version("You are a clinic's front desk.", [{"id": "hours", "reply": "9"}])
    e = entry("hello")
    key = audio_key(e, "en_US-joe", "pcm16@8000")
    assert key.startswith(e.id + ":")
    assert key != audio_key(e, "en_US-amy", "pcm16@8000")
    assert key != audio_key(e, "en_US-joe", "mulaw@8000")
    other_reply = CacheEntry.new(
        scope=SCOPE, prompt="hello", reply="Hi!", source="llm", now=e.created_at
    )
    assert other_reply.id == e.id and audio_key(other_reply, "en_US-joe", "pcm16@8000") != key


def test_entry_bytes_round_trip_and_bad_bytes_say_what_is_wrong() -> None:
    e = CacheEntry.new(
        scope=SCOPE,
        prompt="Are you open on Sunday? 日曜日",
        reply="We're closed on Sunday.",
        source="declared",
        now=1000.0,
        ttl_s=60,
    )
    assert e.expires_at == 1060.0 and e.source is EntrySource.DECLARED
    assert CacheEntry.from_bytes(e.to_bytes()) == e
    good = e.to_bytes().decode()
    cases = {
        b"\xff\xfe not json": "not JSON",
        b"[1, 2]": "not a JSON object",
        good.replace('"v":1', '"v":99').encode(): "format 99",
        good.replace('"reply":', '"answer":').encode(): "'reply'",
        good.replace('"created_at":1000.0', '"created_at":"soon"').encode(): "created_at",
        good.replace('"source":"declared"', '"source":"guess"').encode(): "guess",
        good.replace(e.id, "0" * 32).encode(): "does not match",
    }
    for data, says in cases.items():
        with pytest.raises(CacheCorrupt, match=says) as caught:
            CacheEntry.from_bytes(data)
        assert isinstance(caught.value, CacheError)


def test_audio_bytes_round_trip() -> None:
    clip = CachedAudio(pcm=b"\x01\x02" * 100, sample_rate=8000, expires_at=123.5)
    assert CachedAudio.from_bytes(clip.to_bytes()) == clip
    assert CachedAudio.from_bytes(CachedAudio(pcm=b"", sample_rate=16000).to_bytes()).pcm == b""
    with pytest.raises(CacheCorrupt):
        CachedAudio.from_bytes(b"RIFF" + bytes(40))
    with pytest.raises(CacheCorrupt):
        CachedAudio.from_bytes(b"CW")


# -- the memory store ------------------------------------------------------------------------


async def test_memory_store_evicts_the_least_recently_used_entry() -> None:
    store = MemoryStore(max_entries=3)
    a, b, c, d = (entry(p) for p in ("alpha", "bravo", "charlie", "delta"))
    for e in (a, b, c):
        await store.put_entry(e)
    assert await store.get_entry(a.id) == a  # a is now the most recent; b the least
    await store.put_entry(d)
    assert await store.get_entry(b.id) is None
    assert [await store.get_entry(e.id) for e in (a, c, d)] == [a, c, d]
    stats = await store.stats()
    assert (stats["evictions"], stats["entries"], stats["hits"], stats["misses"]) == (1, 3, 4, 1)
    assert stats["text_bytes"] == sum(e.text_bytes() for e in (a, c, d))
    assert stats["shared"] is False


async def test_memory_store_expires_entries_and_audio_on_its_clock() -> None:
    clock = Clock()
    store = MemoryStore(ttl_s=60, clock=clock)
    short, default = entry("short"), entry("default")
    await store.put_entry(short, ttl_s=10)
    await store.put_entry(default)
    await store.put_audio("k", b"\x00" * 320, 8000, ttl_s=10)
    clock.now += 9.9
    assert await store.get_entry(short.id) is not None and await store.get_audio("k") is not None
    clock.now += 0.2
    assert await store.get_entry(short.id) is None and await store.get_audio("k") is None
    assert await store.get_entry(default.id) is not None
    clock.now += 50
    assert await store.get_entry(default.id) is None
    stats = await store.stats()
    assert stats["expired"] == 3 and stats["entries"] == 0 and stats["audio_bytes"] == 0
    # an entry's own expiry is never extended by the store's TTL
    made = CacheEntry.new(scope=SCOPE, prompt="x", reply="y", source="llm", now=clock.now, ttl_s=5)
    await store.put_entry(made)
    clock.now += 6
    assert await store.get_entry(made.id) is None


async def test_memory_store_caps_audio_by_bytes() -> None:
    store = MemoryStore(max_audio_bytes=100)
    for key in ("a", "b", "c"):
        await store.put_audio(key, b"\x00" * 40, 8000)
    stats = await store.stats()
    assert (stats["audio_clips"], stats["audio_bytes"], stats["audio_evictions"]) == (2, 80, 1)
    assert await store.get_audio("a") is None
    clip = await store.get_audio("b")
    assert clip is not None and clip.sample_rate == 8000 and len(clip.pcm) == 40
    await store.put_audio("huge", b"\x00" * 101, 8000)  # larger than the cap: not kept
    assert await store.get_audio("huge") is None and (await store.stats())["audio_bytes"] == 80


async def test_memory_store_lists_new_entries_and_forgets_wrong_ones() -> None:
    store = MemoryStore()
    first, second, third = entry("one"), entry("two"), entry("three")
    await store.put_entry(first)
    got, cursor = await store.entries_since("")
    assert got == [first]
    await store.put_entry(second)
    await store.put_entry(third)
    got, cursor2 = await store.entries_since(cursor, limit=1)
    assert got == [second]
    got, cursor3 = await store.entries_since(cursor2)
    assert got == [third] and await store.entries_since(cursor3) == ([], cursor3)
    await store.report_wrong(second.id)
    await store.delete(third.id)
    assert await store.get_entry(second.id) is None and await store.get_entry(third.id) is None
    stats = await store.stats()
    assert stats["wrong_reports"] == 1 and stats["entries"] == 1
    assert (await store.entries_since(""))[0] == [first]


def test_store_params_validate_and_build() -> None:
    assert isinstance(CacheStoreParams().build(), MemoryStore)
    params = CacheStoreParams(max_entries=5, max_audio_mb=1, ttl_s=30)
    store = params.build()
    assert isinstance(store, MemoryStore)
    assert (store.max_entries, store.max_audio_bytes, store.ttl_s) == (5, 1024 * 1024, 30)
    with pytest.raises(ValidationError, match="needs url"):
        CacheStoreParams(type="redis")
    with pytest.raises(ValidationError, match="must start with"):
        CacheStoreParams(type="redis", url="http://x")
    with pytest.raises(ValidationError):
        CacheStoreParams(max_entries=0)
    with pytest.raises(ValidationError):
        CacheStoreParams.model_validate({"type": "memcached"})


# -- the Redis store -------------------------------------------------------------------------


def worker(url: str, prefix: str, **kwargs: Any) -> RedisStore:
    kwargs.setdefault("timeout_s", 0.05)
    kwargs.setdefault("retry_min_s", 0.05)
    kwargs.setdefault("retry_max_s", 0.2)
    return RedisStore(url, prefix=prefix, **kwargs)


async def timed(call: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    start = time.perf_counter()
    result = await call()
    return result, time.perf_counter() - start


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 5.0) -> float:
    """Seconds until ``check()`` holds (polled every 20 ms); fails after ``within_s``."""
    start = time.perf_counter()
    while not await check():
        if time.perf_counter() - start > within_s:
            pytest.fail(f"not within {within_s} s")
        await asyncio.sleep(0.02)
    return time.perf_counter() - start


@needs_redis
async def test_an_entry_and_its_audio_put_by_one_worker_are_served_by_another(
    redis_server: RedisServer,
) -> None:
    async with worker(redis_server.url, "t1:") as a, worker(redis_server.url, "t1:") as b:
        e = entry("What time do you open?")
        key = audio_key(e, "joe", "pcm16@8000")
        _, cursor = await b.entries_since("")
        await a.put_entry(e)
        await a.put_audio(key, b"\x01\x00" * 16000, 8000)
        assert await b.get_entry(e.id) == e
        clip = await b.get_audio(key)
        assert clip is not None and clip.pcm == b"\x01\x00" * 16000 and clip.sample_rate == 8000
        learned, cursor = await b.entries_since(cursor)
        assert learned == [e]
        assert await b.entries_since(cursor) == ([], cursor)
        stats = await b.stats()
        assert stats["shared"] is True and stats["shared_hits"] == 2 and stats["hits"] == 1
        assert stats["entries"] == 1 and stats["audio_bytes"] == 32000
        # served from b's own copy next time; a deletion by a reaches Redis
        assert await b.get_entry(e.id) == e and (await b.stats())["shared_hits"] == 2
        await a.report_wrong(e.id)
        async with worker(redis_server.url, "t1:") as c:
            assert await c.get_entry(e.id) is None
            assert (await c.stats())["misses"] == 1
        assert (await a.stats())["wrong_reports"] == 1


@needs_redis
async def test_redis_expires_what_was_put_with_a_ttl(redis_server: RedisServer) -> None:
    async with worker(redis_server.url, "t2:") as a, worker(redis_server.url, "t2:") as b:
        short, kept = entry("short"), entry("kept")
        await a.put_entry(short, ttl_s=0.2)
        await a.put_entry(kept, ttl_s=60)
        await a.put_audio("clip", b"\x00" * 100, 8000, ttl_s=0.2)
        ttl_ms = await b._client.pttl(b._entry_key(kept.id))
        assert 59_000 < ttl_ms <= 60_000
        await asyncio.sleep(0.3)
        assert await b.get_entry(short.id) is None and await b.get_audio("clip") is None
        assert await b._client.exists(b._entry_key(short.id)) == 0
        got = await b.get_entry(kept.id)  # stamped with its expiry, which b now knows
        assert got is not None and got.reply == kept.reply
        assert got.expires_at is not None and 59 < got.expires_at - time.time() <= 60


@needs_redis
async def test_calls_go_on_locally_while_redis_is_down_and_sharing_resumes(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with worker(redis_server.url, "t3:") as a, worker(redis_server.url, "t3:") as b:
        before = entry("before")
        await a.put_entry(before)
        assert await b.get_entry(before.id) == before
        _, cursor = await b.entries_since("")

        redis_server.kill()
        slowest = 0.0
        during = [entry(f"during {i}") for i in range(5)]
        for e in during:
            _, took = await timed(lambda e=e: a.put_entry(e))
            slowest = max(slowest, took)
            got, took = await timed(lambda e=e: a.get_entry(e.id))
            assert got == e
            slowest = max(slowest, took)
        _, took = await timed(lambda: a.put_audio("during", b"\x02" * 64, 8000))
        slowest = max(slowest, took)
        missing, took = await timed(lambda: b.get_entry(during[0].id))
        assert missing is None  # b cannot see a's entry now: no shared store
        slowest = max(slowest, took)
        assert (await b.get_entry(before.id)) == before  # b's own copy
        learned, cursor = await b.entries_since(cursor)
        assert slowest < 0.2, f"a call took {slowest * 1000:.0f} ms with Redis down"
        for store in (a, b):
            stats = await store.stats()
            assert stats["shared"] is False and stats["redis_errors"] >= 1
        assert sum("serving from this process" in r.message for r in caplog.records) == 2

        redis_server.start()  # empty: what a wrote while it was away is replayed
        await eventually(lambda: _shared(a))
        await eventually(lambda: _shared(b))
        after = entry("after")
        await a.put_entry(after)
        assert await b.get_entry(after.id) == after
        assert await b.get_entry(during[0].id) == during[0]
        clip = await b.get_audio("during")
        assert clip is not None and clip.pcm == b"\x02" * 64
        learned, _ = await b.entries_since(cursor)
        assert {e.id for e in learned} >= {after.id, *(e.id for e in during)}
        assert any("sharing resumed" in r.message for r in caplog.records)


@needs_redis
async def test_a_hanging_redis_costs_one_timeout_then_nothing(redis_server: RedisServer) -> None:
    async with worker(redis_server.url, "t6:", timeout_s=0.05) as a:
        await a.put_entry(entry("before"))
        redis_server.pause()
        try:
            e = entry("while hung")
            _, first = await timed(lambda: a.put_entry(e))
            got, then = await timed(lambda: a.get_entry(e.id))
            missing, miss = await timed(lambda: a.get_entry("0" * 32))
        finally:
            redis_server.resume()
        assert got == e and missing is None
        assert 0.04 < first < 0.15, f"{first * 1000:.0f} ms: the timeout is 50 ms"
        assert then < 0.01 and miss < 0.01  # degraded: Redis is not tried again
        await eventually(lambda: _shared(a))
        async with worker(redis_server.url, "t6:") as b:
            assert await b.get_entry(e.id) == e  # replayed once Redis answered


async def _shared(store: RedisStore) -> bool:
    return (await store.stats())["shared"]


async def test_a_refused_redis_at_start_works_locally_from_the_start() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    async with worker(url, "t4:", retry_min_s=10) as store:
        e = entry("hello")
        _, put_s = await timed(lambda: store.put_entry(e))
        got, get_s = await timed(lambda: store.get_entry(e.id))
        assert got == e and put_s < 0.2 and get_s < 0.2
        await store.put_audio("k", b"\x00" * 10, 8000)
        assert await store.get_audio("k") is not None
        assert (await store.entries_since(""))[0] == [e]
        stats = await store.stats()
        assert stats["shared"] is False and stats["redis_errors"] == 1 and stats["hits"] == 1


@needs_redis
async def test_corrupt_bytes_in_redis_are_a_miss_and_an_error_not_a_crash(
    redis_server: RedisServer,
) -> None:
    async with worker(redis_server.url, "t5:") as store:
        e = entry("hello")
        await store._client.set(store._entry_key(e.id), b"\x00garbage")
        await store._client.set(store._audio_key("k"), b"RIFF....")
        assert await store.get_entry(e.id) is None
        assert await store.get_audio("k") is None
        stats = await store.stats()
        assert (stats["misses"], stats["audio_misses"], stats["corrupt"]) == (1, 1, 2)
        assert stats["shared"] is True and stats["redis_errors"] == 0
        await store.put_entry(e)  # a good entry over it is served again
        async with worker(redis_server.url, "t5:") as other:
            assert await other.get_entry(e.id) == e


@needs_redis
async def test_redis_store_from_params(redis_server: RedisServer) -> None:
    params = CacheStoreParams(type="redis", url=redis_server.url, timeout_ms=20, max_entries=7)
    store = params.build()
    assert isinstance(store, RedisStore)
    assert store.timeout_s == pytest.approx(0.02) and store.local.max_entries == 7
    async with store:
        await store.put_entry(entry("x"))
        assert (await store.stats())["shared"] is True


@needs_redis
async def test_a_store_closing_sends_redis_what_it_wrote_while_redis_was_away(
    redis_server: RedisServer,
) -> None:
    # a long wait between reconnection attempts: only the closing replay can send it
    a = worker(redis_server.url, "t9:", retry_min_s=30.0, retry_max_s=30.0)
    await a.put_entry(entry("before"))  # connected and shared
    redis_server.kill()
    late = entry("written while Redis was away")
    await a.put_entry(late)
    await a.put_audio("late-audio", b"\x03" * 64, 8000)
    redis_server.start()
    await a.aclose()  # a process ending (simulate, a server's shutdown)
    async with worker(redis_server.url, "t9:") as b:
        assert await b.get_entry(late.id) == late
        clip = await b.get_audio("late-audio")
        assert clip is not None and clip.pcm == b"\x03" * 64
