"""The shared store: Redis behind a local :class:`MemoryStore`, so several workers (processes
or machines) serve each other's cached replies, and calls go on when Redis does not.

Layout under ``prefix`` (``callweaver:cache:`` by default)::

    {prefix}e:{entry id}    an entry's bytes (CacheEntry.to_bytes), with Redis' TTL
    {prefix}a:{audio key}   a clip's bytes (CachedAudio.to_bytes), with Redis' TTL
    {prefix}log             a stream of {"id": entry id}, one per put or delete (XADD MAXLEN
                            ~log_max): what entries_since reads, so each worker learns every
                            entry, and drops its local copy of one another worker deleted

Writes go to the local store and to Redis (one round trip: SET and XADD pipelined); reads try
the local store first, then Redis, and keep what Redis had locally.

**When Redis fails.** Every Redis call is bounded by ``timeout_s`` (50 ms by default). A
connection error or a timeout makes the store *degraded*: it logs once, counts
``redis_errors``, and from then on serves and writes locally without trying Redis (so no call
pays the timeout again), while a background task it owns tries to reconnect, waiting
``retry_min_s``, doubling up to ``retry_max_s``. Once Redis answers, what was written or
deleted locally meanwhile is replayed to Redis and sharing resumes. Nothing raises to the
caller; ``stats()["shared"]`` says whether Redis is in use now.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, Self, TypeVar

from callweaver.errors import CacheCorrupt
from callweaver.services.cache.entry import CachedAudio, CacheEntry
from callweaver.services.cache.store import (
    CacheStats,
    MemoryStore,
    WallClock,
    empty_stats,
    stamp_expiry,
)

try:
    from redis.asyncio import Redis
    from redis.backoff import NoBackoff
    from redis.exceptions import RedisError
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - the extra is installed for the tests
    raise ImportError(
        f"the Redis cache store needs redis-py: pip install 'callweaver[cache]' ({exc})"
    ) from exc

log = logging.getLogger("callweaver.cache")
_CLOSING_REPLAY_S = 1.0

_T = TypeVar("_T")
_FAILURES = (RedisError, OSError, TimeoutError)
_REPLAY_CHUNK = 200


class RedisStore:
    """See the module docstring. ``local`` is this process's copy (and the fallback)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "callweaver:cache:",
        local: MemoryStore | None = None,
        timeout_s: float = 0.05,
        retry_min_s: float = 0.1,
        retry_max_s: float = 5.0,
        log_max: int = 100_000,
        clock: WallClock | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.local = local if local is not None else MemoryStore()
        self.clock = clock or self.local.clock
        self.timeout_s = timeout_s
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.log_max = log_max
        # no retries inside redis-py: one attempt per call, bounded by our timeout
        self._client: Redis = Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._log_key = f"{prefix}log"
        self._started = False
        self._closed = False
        self._shared = False
        self._reconnect: asyncio.Task[None] | None = None
        # written or deleted locally while degraded: replayed to Redis when it is back
        self._unsent_entries: dict[str, None] = {}
        self._unsent_audio: dict[str, None] = {}
        self._unsent_deletes: dict[str, None] = {}
        self._stats = empty_stats()  # what this store did; what it holds is the local store's

    def _entry_key(self, entry_id: str) -> str:
        return f"{self.prefix}e:{entry_id}"

    def _audio_key(self, key: str) -> str:
        return f"{self.prefix}a:{key}"

    @property
    def shared(self) -> bool:
        """Redis is in use now."""
        return self._shared

    # -- connection -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect (one PING within the timeout); if Redis is not there, work locally and keep
        trying in the background. Called by the first operation if not before."""
        if self._started or self._closed:
            return
        self._started = True
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._client.ping()
        except _FAILURES as e:
            self._failed("connect", e)
            return
        self._shared = True

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop; what was written while Redis was away is sent first if Redis answers now
        (within a second), so a process that ends soon after a hiccup loses nothing."""
        if self._closed:
            return
        if self._unsent_deletes or self._unsent_entries or self._unsent_audio:
            try:
                async with asyncio.timeout(_CLOSING_REPLAY_S):
                    await self._replay()
            except Exception as exc:  # Redis still away: the writes stay local, as promised
                log.warning("cache: %d writes not sent to Redis at %s before closing (%s)",
                            len(self._unsent_entries) + len(self._unsent_audio),
                            self._where(), exc)  # fmt: skip
        self._closed = True
        self._shared = False
        if self._reconnect is not None:
            self._reconnect.cancel()
            with suppress(asyncio.CancelledError):
                await self._reconnect
            self._reconnect = None
        await self._client.aclose()
        await self.local.aclose()

    async def _redis(self, what: str, op: Callable[[], Awaitable[_T]]) -> tuple[bool, _T | None]:
        """Run ``op`` on Redis within the timeout: (True, its result), or (False, None) when
        degraded now or after this failure."""
        if not self._started:
            await self.start()
        if not self._shared:
            return False, None
        try:
            async with asyncio.timeout(self.timeout_s):
                return True, await op()
        except _FAILURES as e:
            self._failed(what, e)
            return False, None

    def _failed(self, what: str, exc: BaseException) -> None:
        self._stats["redis_errors"] += 1
        was_shared, self._shared = self._shared, False
        if was_shared or self._reconnect is None:
            log.warning(
                "cache: Redis at %s failed (%s: %s); serving from this process until it is back",
                self._where(),
                what,
                type(exc).__name__ if isinstance(exc, TimeoutError) else exc,
            )
        if (self._reconnect is None or self._reconnect.done()) and not self._closed:
            self._reconnect = asyncio.get_running_loop().create_task(
                self._reconnect_loop(), name="cache-redis-reconnect"
            )

    def _where(self) -> str:
        kwargs = self._client.connection_pool.connection_kwargs
        if "path" in kwargs:
            return str(kwargs["path"])
        return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"

    async def _reconnect_loop(self) -> None:
        delay = self.retry_min_s
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max_s)
            try:
                async with asyncio.timeout(max(self.timeout_s, 0.2)):
                    await self._client.ping()
                await self._replay()
            except _FAILURES:
                self._stats["redis_errors"] += 1
                continue
            self._shared = True
            log.warning("cache: Redis at %s is back; sharing resumed", self._where())
            return

    async def _replay(self) -> None:
        """Send Redis what was written or deleted here while it was away, a chunk at a time
        (each within a generous timeout), until nothing is owed: puts that arrive meanwhile
        are sent too, so none is left behind when sharing resumes."""
        bulk_timeout_s = max(self.timeout_s * 20, 1.0)
        while self._unsent_deletes or self._unsent_entries or self._unsent_audio:
            now = self.clock()
            deletes = list(self._unsent_deletes)[:_REPLAY_CHUNK]
            ids = list(self._unsent_entries)[:_REPLAY_CHUNK]
            keys = list(self._unsent_audio)[:_REPLAY_CHUNK]
            async with self._client.pipeline(transaction=False) as pipe:
                if deletes:
                    pipe.delete(*(self._entry_key(i) for i in deletes))
                    for entry_id in deletes:
                        pipe.xadd(self._log_key, {"id": entry_id}, maxlen=self.log_max,
                                  approximate=True)  # fmt: skip
                for entry in filter(None, map(self.local.peek_entry, ids)):
                    self._queue_entry(pipe, entry, now)
                for key in keys:
                    audio = self.local.peek_audio(key)
                    if audio is not None:
                        _set(pipe, self._audio_key(key), audio.to_bytes(), audio.expires_at, now)
                async with asyncio.timeout(bulk_timeout_s):
                    await pipe.execute()
            for owed, sent in (
                (self._unsent_deletes, deletes),
                (self._unsent_entries, ids),
                (self._unsent_audio, keys),
            ):
                for key in sent:
                    owed.pop(key, None)

    def _queue_entry(self, pipe: Any, entry: CacheEntry, now: float) -> None:
        _set(pipe, self._entry_key(entry.id), entry.to_bytes(), entry.expires_at, now)
        pipe.xadd(self._log_key, {"id": entry.id}, maxlen=self.log_max, approximate=True)

    async def _write_entries(self, entries: list[CacheEntry], now: float) -> None:
        if not entries:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for entry in entries:
                self._queue_entry(pipe, entry, now)
            await pipe.execute()

    def _owe(self, owed: dict[str, None], key: str) -> None:
        owed[key] = None
        if len(owed) > self.local.max_entries:  # the oldest cannot be in the local store now
            del owed[next(iter(owed))]

    # -- entries ----------------------------------------------------------------------------

    async def get_entry(self, entry_id: str) -> CacheEntry | None:
        entry = self.local.peek_entry(entry_id)
        if entry is not None:
            await self.local.get_entry(entry_id)  # refresh its place in the LRU
            self._stats["hits"] += 1
            return entry
        ok, raw = await self._redis("GET", lambda: self._client.get(self._entry_key(entry_id)))
        entry = self._read_entry(entry_id, raw) if ok and raw is not None else None
        if entry is None:
            self._stats["misses"] += 1
            return None
        await self.local.put_entry(entry)
        self._stats["hits"] += 1
        self._stats["shared_hits"] += 1
        return entry

    def _read_entry(self, entry_id: str, raw: bytes | str) -> CacheEntry | None:
        try:
            entry = CacheEntry.from_bytes(_bytes(raw))
            if entry.id != entry_id:
                raise CacheCorrupt(f"entry {entry.id} stored under {entry_id}")
        except CacheCorrupt as e:
            self._stats["corrupt"] += 1
            count = self._stats["corrupt"]
            if count == 1 or count % 1000 == 0:
                log.warning("cache: unreadable entry in Redis (%s); %d so far", e, count)
            return None
        return None if entry.expired(self.clock()) else entry

    async def put_entry(self, entry: CacheEntry, ttl_s: float | None = None) -> None:
        now = self.clock()
        entry = stamp_expiry(entry, ttl_s, self.local.ttl_s, now)
        if entry.expired(now):
            return
        await self.local.put_entry(entry)
        ok, _ = await self._redis("SET", lambda: self._write_entries([entry], now))
        if not ok and not self._closed:
            self._unsent_deletes.pop(entry.id, None)
            self._owe(self._unsent_entries, entry.id)

    async def delete(self, entry_id: str) -> None:
        await self.local.delete(entry_id)
        self._unsent_entries.pop(entry_id, None)
        ok, _ = await self._redis("DEL", lambda: self._delete_entries([entry_id]))
        if not ok and not self._closed:
            self._owe(self._unsent_deletes, entry_id)

    async def _delete_entries(self, ids: list[str]) -> None:
        """Delete, and log each id in the stream: the other workers read it there, find the
        entry gone and drop their local copies."""
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.delete(*(self._entry_key(i) for i in ids))
            for entry_id in ids:
                pipe.xadd(self._log_key, {"id": entry_id}, maxlen=self.log_max, approximate=True)
            await pipe.execute()

    async def report_wrong(self, entry_id: str) -> None:
        self._stats["wrong_reports"] += 1
        await self.delete(entry_id)

    async def entries_since(
        self, cursor: str = "", limit: int = 1000
    ) -> tuple[list[CacheEntry], str]:
        """See :meth:`CacheStore.entries_since`. The cursor is ``<stream id>|<local cursor>``:
        while Redis is in use, the stream (every worker's puts); while degraded, this
        process's own puts."""
        stream_id, _, local_cursor = cursor.partition("|")
        stream_id = stream_id or "0"
        if not self._started:
            await self.start()
        if self._shared:
            found = await self._entries_from_redis(stream_id, limit)
            if found is not None:
                entries, stream_id = found
                return entries, f"{stream_id}|{self.local.cursor()}"
        entries, local_cursor = await self.local.entries_since(local_cursor, limit)
        return entries, f"{stream_id}|{local_cursor}"

    async def _entries_from_redis(
        self, stream_id: str, limit: int
    ) -> tuple[list[CacheEntry], str] | None:
        low = "-" if stream_id == "0" else f"({stream_id}"
        ok, rows = await self._redis(
            "XRANGE", lambda: self._client.xrange(self._log_key, min=low, max="+", count=limit)
        )
        if not ok:
            return None
        if not rows:
            return [], stream_id
        ids = list(dict.fromkeys(_text((fields or {}).get(b"id") or b"") for _, fields in rows))
        ok, raws = await self._redis(
            "MGET", lambda: self._client.mget([self._entry_key(i) for i in ids])
        )
        if not ok or raws is None:
            return None
        entries = []
        for entry_id, raw in zip(ids, raws, strict=True):
            entry = self._read_entry(entry_id, raw) if raw is not None else None
            if entry is not None:
                entries.append(entry)
            elif entry_id not in self._unsent_entries:  # deleted (a wrong hit) or expired
                await self.local.delete(entry_id)
        return entries, _text(rows[-1][0] or stream_id)

    # -- audio ------------------------------------------------------------------------------

    async def get_audio(self, key: str) -> CachedAudio | None:
        audio = self.local.peek_audio(key)
        if audio is not None:
            await self.local.get_audio(key)
            self._stats["audio_hits"] += 1
            return audio
        ok, raw = await self._redis("GET", lambda: self._client.get(self._audio_key(key)))
        if ok and raw is not None:
            try:
                audio = CachedAudio.from_bytes(_bytes(raw))
            except CacheCorrupt as e:
                self._stats["corrupt"] += 1
                log.warning("cache: unreadable audio in Redis under %s (%s)", key, e)
            else:
                if not audio.expired(self.clock()):
                    self.local.keep_audio(key, audio)
                    self._stats["audio_hits"] += 1
                    self._stats["shared_hits"] += 1
                    return audio
        self._stats["audio_misses"] += 1
        return None

    async def put_audio(
        self, key: str, pcm: bytes, sample_rate: int, ttl_s: float | None = None
    ) -> None:
        now = self.clock()
        ttl = ttl_s if ttl_s is not None else self.local.ttl_s
        audio = CachedAudio(
            pcm=pcm, sample_rate=sample_rate, expires_at=None if ttl is None else now + ttl
        )
        self.local.keep_audio(key, audio)

        async def write() -> None:
            await _set(self._client, self._audio_key(key), audio.to_bytes(), audio.expires_at, now)

        ok, _ = await self._redis("SET", write)
        if not ok and not self._closed:
            self._owe(self._unsent_audio, key)

    # -- stats ------------------------------------------------------------------------------

    async def stats(self) -> CacheStats:
        return self.stats_now()

    def stats_now(self) -> CacheStats:
        held = self.local.stats_now()
        stats = self._stats.copy()
        stats["entries"] = held["entries"]
        stats["audio_clips"] = held["audio_clips"]
        stats["text_bytes"] = held["text_bytes"]
        stats["audio_bytes"] = held["audio_bytes"]
        stats["evictions"] = held["evictions"]
        stats["audio_evictions"] = held["audio_evictions"]
        stats["expired"] = held["expired"]
        stats["shared"] = self._shared
        return stats


def _set(client: Any, key: str, data: bytes, expires_at: float | None, now: float) -> Any:
    """SET ``key`` with the TTL left until ``expires_at`` (none: no TTL); on a pipeline it
    queues, on the client it returns the awaitable."""
    if expires_at is None:
        return client.set(key, data)
    return client.set(key, data, px=max(1, int((expires_at - now) * 1000)))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value.encode() if isinstance(value, str) else value
