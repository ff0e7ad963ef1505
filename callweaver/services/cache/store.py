"""Where cached replies and their audio live: the :class:`CacheStore` contract, the in-process
:class:`MemoryStore`, and :class:`CacheStoreParams`, the config that builds either store.

A store is a bounded map with expiry. It does not match prompts (the cache node does, over
the entries it learns through :meth:`CacheStore.entries_since`); it answers "this id, this
audio key" in O(1) and never raises because a shared backend went away.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import replace
from typing import Literal, Protocol, Self, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

from callweaver.services.cache.entry import CachedAudio, CacheEntry

WallClock = Callable[[], float]
"""Wall-clock seconds (``time.time``); tests pass a function they can move forward."""

DEFAULT_MAX_ENTRIES = 10_000
DEFAULT_MAX_AUDIO_MB = 256.0
_MB = 1024 * 1024


class CacheStats(TypedDict):
    """A store's counters since it was made (``entries`` .. ``audio_bytes``: what it holds
    now, in this process). ``shared``: a shared backend is reachable now (always False for
    :class:`MemoryStore`). ``corrupt``: stored bytes that could not be read (each also a miss).
    """

    hits: int
    misses: int
    audio_hits: int
    audio_misses: int
    shared_hits: int
    evictions: int
    audio_evictions: int
    expired: int
    entries: int
    audio_clips: int
    text_bytes: int
    audio_bytes: int
    wrong_reports: int
    corrupt: int
    redis_errors: int
    shared: bool


class CacheStore(Protocol):
    """What the cache node needs of a store. Every method is safe to call at any time: a
    store whose shared backend is down serves and writes locally and raises nothing."""

    async def get_entry(self, entry_id: str) -> CacheEntry | None:
        """The entry, or None (absent, expired, unreadable)."""
        ...

    async def put_entry(self, entry: CacheEntry, ttl_s: float | None = None) -> None:
        """Store ``entry`` until ``ttl_s`` from now (None: the store's default TTL), and never
        past ``entry.expires_at``; replaces an entry with the same id."""
        ...

    async def get_audio(self, key: str) -> CachedAudio | None:
        """The audio under ``key`` (:func:`~callweaver.services.cache.keys.audio_key`)."""
        ...

    async def put_audio(
        self, key: str, pcm: bytes, sample_rate: int, ttl_s: float | None = None
    ) -> None: ...

    async def delete(self, entry_id: str) -> None:
        """Forget the entry (its audio is keyed by its reply, so it cannot outlive it in use;
        it ages out)."""
        ...

    async def entries_since(
        self, cursor: str = "", limit: int = 1000
    ) -> tuple[list[CacheEntry], str]:
        """Entries put since ``cursor`` ("" : every entry still listed), oldest first, at most
        ``limit``, and the cursor to pass next time. With a shared store these include other
        workers' entries (the point: each worker's matcher indexes them) and this worker's;
        an entry can come more than once, so index by id."""
        ...

    async def report_wrong(self, entry_id: str) -> None:
        """A hit that was the wrong reply: counted, and the entry is deleted."""
        ...

    async def stats(self) -> CacheStats: ...

    def stats_now(self) -> CacheStats:
        """:meth:`stats` without awaiting (what this process knows now)."""
        ...

    async def aclose(self) -> None:
        """Release connections and background tasks; idempotent."""
        ...


def stamp_expiry(
    entry: CacheEntry, ttl_s: float | None, default_ttl_s: float | None, now: float
) -> CacheEntry:
    """``entry`` with ``expires_at`` the earliest of its own and ``now`` + the TTL (``ttl_s``,
    else ``default_ttl_s``; None for both: its own). Stores keep this stamped entry, so any
    worker reading it knows when it ends."""
    ttl = ttl_s if ttl_s is not None else default_ttl_s
    if ttl is None:
        return entry
    expires = now + ttl
    if entry.expires_at is not None and entry.expires_at <= expires:
        return entry
    return replace(entry, expires_at=expires)


def empty_stats() -> CacheStats:
    return CacheStats(
        hits=0,
        misses=0,
        audio_hits=0,
        audio_misses=0,
        shared_hits=0,
        evictions=0,
        audio_evictions=0,
        expired=0,
        entries=0,
        audio_clips=0,
        text_bytes=0,
        audio_bytes=0,
        wrong_reports=0,
        corrupt=0,
        redis_errors=0,
        shared=False,
    )


class MemoryStore:
    """The in-process store: two LRU maps (entries by count, audio by bytes) with expiry.

    Every operation is O(1) (``OrderedDict``: a hit moves to the end, eviction pops the
    front); an expired item is dropped when it is next read, or evicted like any other.
    :meth:`entries_since` reads an append-only log of puts (as long as ``max_entries``).
    """

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        max_audio_bytes: int = int(DEFAULT_MAX_AUDIO_MB * _MB),
        ttl_s: float | None = None,
        clock: WallClock = time.time,
    ) -> None:
        if max_entries < 1 or max_audio_bytes < 0:
            raise ValueError("max_entries must be >= 1 and max_audio_bytes >= 0")
        self.max_entries = max_entries
        self.max_audio_bytes = max_audio_bytes
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: OrderedDict[str, tuple[CacheEntry, int]] = OrderedDict()
        self._audio: OrderedDict[str, CachedAudio] = OrderedDict()
        self._log: deque[tuple[int, str]] = deque(maxlen=max_entries)
        self._seq = 0
        self._stats = empty_stats()

    def __len__(self) -> int:
        return len(self._entries)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- entries ----------------------------------------------------------------------------

    async def get_entry(self, entry_id: str) -> CacheEntry | None:
        entry = self.peek_entry(entry_id)
        if entry is None:
            self._stats["misses"] += 1
            return None
        self._entries.move_to_end(entry_id)
        self._stats["hits"] += 1
        return entry

    def peek_entry(self, entry_id: str) -> CacheEntry | None:
        """The entry if held and live, without counting a hit or refreshing its place."""
        item = self._entries.get(entry_id)
        if item is None:
            return None
        if item[0].expired(self.clock()):
            self._drop_entry(entry_id)
            self._stats["expired"] += 1
            return None
        return item[0]

    async def put_entry(self, entry: CacheEntry, ttl_s: float | None = None) -> None:
        now = self.clock()
        entry = stamp_expiry(entry, ttl_s, self.ttl_s, now)
        if entry.expired(now):
            return
        self._drop_entry(entry.id)
        size = entry.text_bytes()
        self._entries[entry.id] = (entry, size)
        self._stats["text_bytes"] += size
        self._seq += 1
        self._log.append((self._seq, entry.id))
        while len(self._entries) > self.max_entries:
            self._drop_entry(next(iter(self._entries)))
            self._stats["evictions"] += 1

    def _drop_entry(self, entry_id: str) -> bool:
        item = self._entries.pop(entry_id, None)
        if item is None:
            return False
        self._stats["text_bytes"] -= item[1]
        return True

    async def delete(self, entry_id: str) -> None:
        self._drop_entry(entry_id)

    async def report_wrong(self, entry_id: str) -> None:
        self._stats["wrong_reports"] += 1
        self._drop_entry(entry_id)

    async def entries_since(
        self, cursor: str = "", limit: int = 1000
    ) -> tuple[list[CacheEntry], str]:
        """See :meth:`CacheStore.entries_since`; the cursor is a count of puts."""
        after = int(cursor) if cursor else 0
        newer: list[tuple[int, str]] = []
        for seq, entry_id in reversed(self._log):
            if seq <= after:
                break
            newer.append((seq, entry_id))
        newer.reverse()
        entries: list[CacheEntry] = []
        seen: set[str] = set()
        last = after
        for seq, entry_id in newer[:limit]:
            last = seq
            entry = self.peek_entry(entry_id)
            if entry is not None and entry_id not in seen:
                seen.add(entry_id)
                entries.append(entry)
        return entries, str(last)

    def cursor(self) -> str:
        """The cursor after every put so far."""
        return str(self._seq)

    # -- audio ------------------------------------------------------------------------------

    async def get_audio(self, key: str) -> CachedAudio | None:
        audio = self.peek_audio(key)
        if audio is None:
            self._stats["audio_misses"] += 1
            return None
        self._audio.move_to_end(key)
        self._stats["audio_hits"] += 1
        return audio

    def peek_audio(self, key: str) -> CachedAudio | None:
        audio = self._audio.get(key)
        if audio is None:
            return None
        if audio.expired(self.clock()):
            self._drop_audio(key)
            self._stats["expired"] += 1
            return None
        return audio

    async def put_audio(
        self, key: str, pcm: bytes, sample_rate: int, ttl_s: float | None = None
    ) -> None:
        ttl = ttl_s if ttl_s is not None else self.ttl_s
        expires = None if ttl is None else self.clock() + ttl
        self.keep_audio(key, CachedAudio(pcm=pcm, sample_rate=sample_rate, expires_at=expires))

    def keep_audio(self, key: str, audio: CachedAudio) -> None:
        """Hold ``audio`` as it is (its own expiry); a clip larger than the cap is not kept."""
        self._drop_audio(key)
        if len(audio.pcm) > self.max_audio_bytes or audio.expired(self.clock()):
            return
        self._audio[key] = audio
        self._stats["audio_bytes"] += len(audio.pcm)
        while self._stats["audio_bytes"] > self.max_audio_bytes:
            self._drop_audio(next(iter(self._audio)))
            self._stats["audio_evictions"] += 1

    def _drop_audio(self, key: str) -> None:
        audio = self._audio.pop(key, None)
        if audio is not None:
            self._stats["audio_bytes"] -= len(audio.pcm)

    # -- the rest ---------------------------------------------------------------------------

    async def stats(self) -> CacheStats:
        return self.stats_now()

    def stats_now(self) -> CacheStats:
        """:meth:`stats` without awaiting (for ``/health`` and wrappers)."""
        stats = self._stats.copy()
        stats["entries"] = len(self._entries)
        stats["audio_clips"] = len(self._audio)
        return stats

    async def aclose(self) -> None:
        return None


class CacheStoreParams(BaseModel):
    """The store of a response cache, as a node's params embed it (``store:`` in YAML)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["memory", "redis"] = Field(
        "memory",
        description="memory: this process only; redis: shared by every worker using the url",
    )
    url: str | None = Field(
        None, description="redis://[:password@]host:port/db (rediss:// for TLS); type redis"
    )
    prefix: str = Field("callweaver:cache:", description="Redis key prefix (one per cache)")
    max_entries: int = Field(
        DEFAULT_MAX_ENTRIES, ge=1, description="replies held in this process (LRU beyond)"
    )
    max_audio_mb: float = Field(
        DEFAULT_MAX_AUDIO_MB, ge=0, description="reply audio held in this process (LRU beyond)"
    )
    ttl_s: float | None = Field(
        86_400.0, gt=0, description="how long a reply and its audio stay; none: until evicted"
    )
    timeout_ms: float = Field(
        50.0, gt=0, le=10_000, description="per Redis call; a slower one falls back to local"
    )
    retry_max_s: float = Field(
        5.0, gt=0, description="longest wait between reconnection attempts after Redis fails"
    )

    @model_validator(mode="after")
    def _url_for_redis(self) -> CacheStoreParams:
        if self.type == "redis":
            if not self.url:
                raise ValueError("a redis store needs url (redis://host:port/db)")
            if not self.url.startswith(("redis://", "rediss://", "unix://")):
                raise ValueError("url must start with redis://, rediss:// or unix://")
        return self

    def build(self, *, clock: WallClock = time.time) -> CacheStore:
        """A fresh store. A Redis store connects on first use (or ``await store.start()``),
        and works locally until it can."""
        local = MemoryStore(
            max_entries=self.max_entries,
            max_audio_bytes=int(self.max_audio_mb * _MB),
            ttl_s=self.ttl_s,
            clock=clock,
        )
        if self.type == "memory":
            return local
        from callweaver.services.cache.redis_store import RedisStore  # needs the cache extra

        return RedisStore(
            self.url or "",  # never empty: checked by the validator
            prefix=self.prefix,
            local=local,
            timeout_s=self.timeout_ms / 1000,
            retry_max_s=self.retry_max_s,
        )
