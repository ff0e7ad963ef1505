"""Making reply audio ahead of need, within a budget: the process-wide half of the ``tts``
node's prefetch (pure bookkeeping: no frames, no I/O, no tasks).

Upstream nodes say which reply texts are likely to be said soon (the declared answers at
start-up, the response cache's predictions after a turn); a ``tts`` node with an audio cache
synthesizes the sentences it does not hold yet when it is idle
(:mod:`callweaver.processors.tts_prefetch`). What may be spent on that is bounded per process
and voice (:class:`PrefetchBudget`, shared by every call of the process through
:func:`shared_prefetch`):

- a **provider budget**: characters sent to the provider for prefetching in the last minute
  (a cloud voice is billed per character; a local one costs CPU per character);
- a **CPU budget**: the share of the last minute spent synthesizing prefetches (``max_busy``;
  a local model's synthesis is CPU time taken from live calls).

Preloading at start-up (the declared answers, a cost the config bounds and the process pays
once) is held to neither, but what it spends counts against the predictions that follow.

Two calls never make the same sentence at once (:meth:`Prefetcher.claim`). The counters
(:data:`COUNTERS`) are in ``/health`` (:func:`prefetch_stats`).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Final

__all__ = [
    "COUNTERS",
    "WINDOW_S",
    "PrefetchBudget",
    "Prefetcher",
    "prefetch_stats",
    "prefetchers",
    "shared_prefetch",
]

WINDOW_S: Final = 60.0

COUNTERS: Final = ("prefetched", "already_held", "deferred_by_budget", "interrupted", "failed")
"""Sentences made and kept; skipped as already held (or being made by another call); put off
by the budget (once per sentence and call; a sentence longer than the whole budget is dropped
and counted here too); interrupted by a reply (made again later); failed (provider error or
audio that is not speech)."""


class PrefetchBudget:
    """Characters and busy seconds spent in the last :data:`WINDOW_S` seconds, against their
    caps (see the module docstring). ``clock``: monotonic seconds (tests pass their own)."""

    def __init__(
        self,
        max_chars_per_min: int,
        max_busy: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_chars_per_min < 0 or not 0 < max_busy <= 1:
            raise ValueError("max_chars_per_min must be >= 0 and max_busy in (0, 1]")
        self.max_chars = max_chars_per_min
        self.max_busy = max_busy
        self.clock = clock
        self._spent: deque[tuple[float, int, float]] = deque()  # (at, chars, busy seconds)

    def _window(self) -> tuple[int, float]:
        """Characters and busy seconds spent in the window ending now."""
        now = self.clock()
        while self._spent and self._spent[0][0] <= now - WINDOW_S:
            self._spent.popleft()
        return sum(c for _, c, _ in self._spent), sum(b for _, _, b in self._spent)

    def fits(self, chars: int) -> bool:
        """Could ``chars`` ever be allowed (no longer than the whole per-minute budget)?"""
        return chars <= self.max_chars

    def allows(self, chars: int, *, preload: bool = False) -> bool:
        """May ``chars`` more be synthesized now? A ``preload`` (the declared answers at
        start-up: a cost the config bounds, paid once per process) always may; it is still
        counted. The CPU cap is checked before a synthesis, whose length is not known: one
        may end past it, and the next waits until the window has room again."""
        if preload:
            return True
        spent_chars, busy = self._window()
        if spent_chars + chars > self.max_chars:
            return False
        return busy < self.max_busy * WINDOW_S

    def spend(self, chars: int, busy_s: float) -> None:
        """Count a synthesis (finished or cut short: its characters were sent either way)."""
        self._spent.append((self.clock(), chars, busy_s))

    def retry_in_s(self) -> float:
        """Seconds until the oldest spending leaves the window (when a refusal may lift)."""
        self._window()
        if not self._spent:
            return 0.0
        return max(self._spent[0][0] + WINDOW_S - self.clock(), 0.0)


class Prefetcher:
    """One voice's budget, the keys being made now (by any call), and its counters."""

    def __init__(self, budget: PrefetchBudget) -> None:
        self.budget = budget
        self.counters: Counter[str] = Counter()
        self._making: set[str] = set()

    def claim(self, key: str) -> bool:
        """Take ``key`` to make it; False when another call is making it now."""
        if key in self._making:
            return False
        self._making.add(key)
        return True

    def release(self, key: str) -> None:
        self._making.discard(key)

    def stats(self) -> dict[str, int]:
        """The counters (:data:`COUNTERS`), every one present."""
        return {name: self.counters[name] for name in COUNTERS}


_prefetchers: dict[str, Prefetcher] = {}


def shared_prefetch(
    voice: str,
    max_chars_per_min: int = 3000,
    max_busy: float = 0.25,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Prefetcher:
    """The process's prefetcher of ``voice`` (a voice and format, named by the ``tts`` node).
    Its budget is set by the first caller: nodes of one voice share one budget."""
    found = _prefetchers.get(voice)
    if found is None:
        budget = PrefetchBudget(max_chars_per_min, max_busy, clock=clock)
        found = _prefetchers[voice] = Prefetcher(budget)
    return found


def prefetchers() -> dict[str, Prefetcher]:
    """Every voice's prefetcher made so far in this process."""
    return dict(_prefetchers)


def prefetch_stats() -> dict[str, dict[str, int]]:
    """Per voice: its counters (:data:`COUNTERS`), for ``/health``."""
    return {voice: p.stats() for voice, p in _prefetchers.items()}
