"""The response cache: replies found by meaning, kept in a store, learned as calls go.

:class:`ResponseCache` ties a :class:`~callweaver.services.cache.store.CacheStore` to a
:class:`~callweaver.services.matcher.Matcher` per *family* of scopes (deployment, flow state,
prompt version; the matcher keeps languages apart itself). One instance serves every call of
the process that names the same store (:func:`shared_response_cache`).

- **Declared answers** (:meth:`declare`) are seeded once per process and family, each example
  question an entry and the answer's phrasings one matcher group. They are config: when the
  store has lost one (TTL, eviction, a flushed Redis) it is put back on its next hit.
- **Learned replies** (:meth:`learn`): an LLM's reply to a turn the cache missed, when the
  reply node marks its replies reusable and :func:`~callweaver.services.cache.guard.refusal`
  finds no personal data or back-reference. Stored under the reply node's prompt version, so
  a new system prompt or model never serves them.
- **Lookup** (:meth:`lookup`): never for a question that leans on earlier turns ("how much
  is it", "and on Saturday?"); the declared family first, then the learned one; a matched id
  is read back from the store (another worker may have deleted it). With a shared store the
  cache reads the other workers' entries (:meth:`CacheStore.entries_since`) at most every
  ``sync_s`` seconds, on a lookup.
- **Wrong hits** (:meth:`report_wrong`): the caller's words are never matched to that entry
  again in this process; a learned entry is deleted from the store for every worker.
- **Prediction** (:meth:`observe`, :meth:`predict`): which entry follows which in this
  process's calls, so that after a reply the likely next replies' audio can be prepared.
"""

from __future__ import annotations

import datetime
import math
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from callweaver.runtime.zones import until_midnight
from callweaver.services.cache.entry import CacheEntry, EntrySource
from callweaver.services.cache.guard import dated, leans_back, refusal
from callweaver.services.cache.keys import Scope, prompt_version
from callweaver.services.cache.speech import close_shared_stores, shared_store
from callweaver.services.cache.store import CacheStore, CacheStoreParams, WallClock
from callweaver.services.matcher import Matcher, Method
from callweaver.text.languages import language_key
from callweaver.text.languages import normalize as normalize_in

__all__ = [
    "LEARNED_THRESHOLDS",
    "DeclaredAnswer",
    "Hit",
    "ResponseCache",
    "all_caches",
    "close_caches",
    "shared_response_cache",
]

#: Least similarity for a learned reply, per method. A learned entry is one caller's phrasing
#: of one question, and a shared word can carry the score ("where is the clinic" scores 0.68
#: against "is there parking at the clinic"; "dónde puedo aparcar" 0.3 against "dónde están
#: ubicados"): measured on the scripted calls of ``bench.response_cache``. On the matcher's
#: evaluation set these keep no wrong answer to a near miss and hit en 75 %, es 74 %, zh 79 %,
#: yue 74 % of the paraphrases (88/93/93/83 % at the declared defaults).
LEARNED_THRESHOLDS: Final[Mapping[Method, float]] = {"minilm": 0.70, "ngram": 0.45}
_RECENT_HITS = 50
_LATENCIES = 2000


@dataclass(frozen=True, slots=True)
class DeclaredAnswer:
    """An answer of the deployment's config: example questions and the reply to them."""

    id: str
    questions: tuple[str, ...]
    reply: str


@dataclass(frozen=True, slots=True)
class Hit:
    """A lookup that found a reply: the entry, how (``"exact"``, ``"similar"``), the score,
    and what the caller said."""

    entry: CacheEntry
    reason: str
    score: float
    text: str


class ResponseCache:
    """See the module docstring."""

    def __init__(
        self,
        store: CacheStore,
        *,
        sync_s: float = 1.0,
        thresholds: dict[str, float] | None = None,
        check_slots: bool = True,
        methods: dict[str, Method] | None = None,
        learned_thresholds: Mapping[Method, float] | None = None,
        clock: WallClock = time.time,
    ) -> None:
        """``thresholds`` per matching language override the matcher's defaults;
        ``check_slots=False`` is similarity alone, and ``methods`` other similarity methods
        per language (both for comparison, never for calls). ``learned_thresholds`` (per
        method; default :data:`LEARNED_THRESHOLDS`) is the least similarity for a learned
        reply: one caller's phrasing, where a declared answer has several written with care."""
        self.store = store
        self.sync_s = sync_s
        self.thresholds = dict(thresholds or {})
        self.check_slots = check_slots
        self.methods = methods
        self.learned_thresholds = dict(learned_thresholds or LEARNED_THRESHOLDS)
        self.clock = clock
        self._families: dict[str, Matcher] = {}
        self._entries: dict[str, CacheEntry] = {}
        self._declared: dict[str, CacheEntry] = {}  # entry id -> the config's entry
        self._seeded: set[str] = set()
        self._refused_pairs: set[tuple[str, str]] = set()  # (normalized caller text, entry)
        self._cursor = ""
        self._synced_at = -math.inf
        self._transitions: dict[str, Counter[str]] = {}
        self.counters: Counter[str] = Counter()
        self._lookup_ms: deque[float] = deque(maxlen=_LATENCIES)
        self.recent_hits: deque[dict[str, Any]] = deque(maxlen=_RECENT_HITS)

    # -- families ---------------------------------------------------------------------------

    @staticmethod
    def family(deployment: str, flow_state: str, version: str) -> str:
        return Scope(
            deployment=deployment, language="", flow_state=flow_state, prompt_version=version
        ).key()

    def _matcher(self, family: str) -> Matcher:
        matcher = self._families.get(family)
        if matcher is None:
            matcher = self._families[family] = Matcher(
                thresholds=self.thresholds, check_slots=self.check_slots, methods=self.methods
            )
        return matcher

    async def _index(self, entry: CacheEntry, group: str | None = None) -> None:
        scope = entry.scope
        family = self.family(scope.deployment, scope.flow_state, scope.prompt_version)
        known = self._entries.get(entry.id)
        if known is not None and known.reply == entry.reply:
            self._entries[entry.id] = entry
            return
        matcher = self._matcher(family)
        threshold = None  # a declared question: the language's default
        if entry.source is not EntrySource.DECLARED:
            method = matcher.methods.get(language_key(entry.language), "ngram")
            threshold = max(self.learned_thresholds[method], matcher.threshold(entry.language))
        try:
            await matcher.add_async(
                entry.id, entry.original_prompt, entry.language, group=group, threshold=threshold
            )
        except ValueError:  # no words in it: nothing can match it
            return
        self._entries[entry.id] = entry

    def _forget(self, entry_id: str) -> None:
        entry = self._entries.pop(entry_id, None)
        if entry is not None:
            scope = entry.scope
            family = self.family(scope.deployment, scope.flow_state, scope.prompt_version)
            self._matcher(family).remove(entry_id)

    # -- filling ----------------------------------------------------------------------------

    async def declare(
        self,
        answers: Sequence[DeclaredAnswer],
        *,
        deployment: str,
        language: str,
        flow_state: str = "",
    ) -> str:
        """Seed the declared ``answers`` (once per process and family) and return their
        prompt version (a hash of the answers and their language)."""
        version = "declared-" + prompt_version(
            language_key(language), [(a.id, a.questions, a.reply) for a in answers]
        )
        family = self.family(deployment, flow_state, version)
        if family in self._seeded:
            return version
        scope = Scope(
            deployment=deployment,
            language=language_key(language),
            flow_state=flow_state,
            prompt_version=version,
        )
        now = self.clock()
        for answer in answers:
            for question in answer.questions:
                entry = CacheEntry.new(
                    scope=scope,
                    prompt=question,
                    reply=answer.reply,
                    source=EntrySource.DECLARED,
                    now=now,
                    language=language,
                )
                self._declared[entry.id] = entry
                await self.store.put_entry(entry)
                await self._index(entry, group=f"declared:{answer.id}")
        self._seeded.add(family)
        return version

    async def learn(
        self,
        prompt: str,
        reply: str,
        *,
        deployment: str,
        language: str,
        version: str,
        flow_state: str = "",
        source: EntrySource = EntrySource.LLM,
        zone: datetime.tzinfo | None = None,
    ) -> CacheEntry | str:
        """Keep ``reply`` for callers who say ``prompt`` (or the same in other words): the
        stored entry, or why it was refused (see :mod:`~callweaver.services.cache.guard`). An
        exchange about today ("are you open today") is kept until midnight in ``zone`` (None:
        the server's)."""
        why = refusal(prompt, reply, language)
        if why is not None:
            self.counters[f"refused_{why}"] += 1
            return why
        now = self.clock()
        today = dated(prompt, reply) == "day"
        scope = Scope(
            deployment=deployment,
            language=language_key(language),
            flow_state=flow_state,
            prompt_version=version,
        )
        entry = CacheEntry.new(
            scope=scope,
            prompt=prompt,
            reply=reply,
            source=source,
            now=now,
            language=language,
            ttl_s=until_midnight(now, zone) if today else None,
        )
        await self.store.put_entry(entry)
        await self._index(entry)
        self.counters["learned"] += 1
        self.counters["learned_until_midnight"] += today
        return entry

    async def sync(self) -> int:
        """Index the entries other workers put since the last sync; how many were new."""
        self._synced_at = self.clock()
        new = 0
        while True:
            entries, cursor = await self.store.entries_since(self._cursor, limit=1000)
            self._cursor = cursor
            now = self.clock()
            for entry in entries:
                if entry.expired(now):
                    continue
                known = self._entries.get(entry.id)
                if known is None or known.reply != entry.reply:
                    await self._index(entry)
                    new += 1
            if len(entries) < 1000:
                break
        self.counters["synced"] += new
        return new

    # -- lookup -----------------------------------------------------------------------------

    async def lookup(
        self,
        text: str,
        *,
        deployment: str,
        language: str,
        versions: Iterable[str],
        flow_state: str = "",
    ) -> Hit | None:
        """The reply for ``text``, or None; the families of ``versions`` are tried in turn. A
        question that leans on the turns before it (:func:`~callweaver.services.cache.guard.
        leans_back`) is never answered from the cache."""
        started = time.perf_counter()
        if self.clock() - self._synced_at >= self.sync_s:
            await self.sync()
        self.counters["lookups"] += 1
        hit = None
        if leans_back(text, language):  # the keys hold no conversation: not for the cache
            self.counters["skipped_context"] += 1
            versions = ()
        for version in versions:
            matcher = self._families.get(self.family(deployment, flow_state, version))
            if matcher is None or not len(matcher):
                continue
            hit = await self._lookup_in(matcher, text, language)
            if hit is not None:
                break
        self._lookup_ms.append((time.perf_counter() - started) * 1000)
        if hit is None:
            self.counters["misses"] += 1
            return None
        self.counters["hits"] += 1
        self.counters[f"hits_{hit.reason}"] += 1
        self.recent_hits.append(
            {
                "at": self.clock(),
                "text": text,
                "entry_id": hit.entry.id,
                "prompt": hit.entry.original_prompt,
                "reply": hit.entry.reply,
                "source": hit.entry.source.value,
                "how": hit.reason,
                "score": round(hit.score, 3),
            }
        )
        return hit

    async def _lookup_in(self, matcher: Matcher, text: str, language: str) -> Hit | None:
        norm = normalize_in(text, language_key(language))
        for _ in range(3):  # an entry gone from the store is forgotten, and the next tried
            result = await matcher.match(text, language)
            key = result.key
            if key is None:
                return None
            if (norm, key) in self._refused_pairs:
                self.counters["refused_reported"] += 1
                return None
            entry = await self.store.get_entry(key)
            if entry is None and key in self._declared:
                entry = self._declared[key]  # config: put back when the store lost it
                await self.store.put_entry(entry)
                self.counters["restored"] += 1
            if entry is not None:
                return Hit(entry, result.reason, result.score, text)
            self.counters["gone"] += 1
            self._forget(key)
        return None

    # -- feedback ---------------------------------------------------------------------------

    async def report_wrong(self, entry_id: str, text: str = "") -> None:
        """A hit on ``entry_id`` was the wrong reply to ``text``: that text never gets it
        again here; a learned entry is deleted from the store (every worker)."""
        self.counters["wrong_reports"] += 1
        entry = self._entries.get(entry_id)
        if text and entry is not None:
            self._refused_pairs.add((normalize_in(text, language_key(entry.language)), entry_id))
        if entry_id not in self._declared:
            await self.store.report_wrong(entry_id)
            self._forget(entry_id)

    def observe(self, before: str | None, after: str) -> None:
        """Entry ``after`` answered the turn that followed the one ``before`` answered."""
        if before is not None and before != after:
            self._transitions.setdefault(before, Counter())[after] += 1

    def predict(self, entry_id: str, k: int = 2, *, least_share: float = 0.2) -> list[CacheEntry]:
        """The entries most often seen after ``entry_id`` (at least twice, and at least
        ``least_share`` of what followed it), most likely first."""
        seen = self._transitions.get(entry_id)
        if not seen or k <= 0:
            return []
        total = sum(seen.values())
        out: list[CacheEntry] = []
        for after, count in seen.most_common():
            if count < 2 or count / total < least_share or len(out) >= k:
                break
            entry = self._entries.get(after)
            if entry is not None:
                out.append(entry)
        return out

    # -- numbers ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Lookups, hits (exact, similar), misses, hit rate, learned, refused (per reason),
        wrong reports, lookup ms p50/p95/p99, entries indexed, the store's counters, and the
        last ten hits (what the caller said, the question it matched, how, the reply), for an
        operator to see what the cache is answering."""
        c = self.counters
        lookups = c["lookups"]
        ms = np.array(self._lookup_ms) if self._lookup_ms else np.zeros(1)
        store_stats = getattr(self.store, "stats_now", None)
        return {
            "lookups": lookups,
            "hits": c["hits"],
            "hits_exact": c["hits_exact"],
            "hits_similar": c["hits_similar"],
            "misses": c["misses"],
            "hit_rate": round(c["hits"] / lookups, 4) if lookups else None,
            "learned": c["learned"],
            "learned_until_midnight": c["learned_until_midnight"],
            "refused": {
                k.removeprefix("refused_"): v for k, v in c.items() if k.startswith("refused_")
            },
            "skipped_context": c["skipped_context"],
            "wrong_reports": c["wrong_reports"],
            "restored": c["restored"],
            "synced": c["synced"],
            "indexed": len(self._entries),
            "lookup_ms": {f"p{q}": round(float(np.percentile(ms, q)), 3) for q in (50, 95, 99)},
            "store": dict(store_stats()) if store_stats is not None else None,
            "recent_hits": list(self.recent_hits)[-10:],
        }

    async def aclose(self) -> None:
        await self.store.aclose()


_caches: dict[str, ResponseCache] = {}


def shared_response_cache(params: CacheStoreParams, *, sync_s: float = 1.0) -> ResponseCache:
    """The process's response cache on the store ``params`` names (one per distinct store
    config; the store itself is :func:`~callweaver.services.cache.speech.shared_store`'s, so
    a TTS node's audio cache with the same config shares it)."""
    key = params.model_dump_json()
    cache = _caches.get(key)
    if cache is None:
        cache = _caches[key] = ResponseCache(shared_store(params), sync_s=sync_s)
    return cache


async def close_caches() -> None:
    """Forget the process's response caches and close their stores (process end)."""
    _caches.clear()
    await close_shared_stores()


def all_caches() -> dict[str, ResponseCache]:
    """Every response cache of the process, by a short name of its store (for ``/health``
    and ``/metrics``)."""
    out = {}
    for key, cache in _caches.items():
        params = CacheStoreParams.model_validate_json(key)
        name = f"{params.type}:{params.prefix}"
        out[name] = cache
    return out
