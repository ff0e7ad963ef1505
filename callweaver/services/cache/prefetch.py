"""Making reply audio ahead of need, within a budget: the process-wide half of the ``tts``
node's prefetch (pure bookkeeping, no frames, no I/O).

Upstream nodes say which reply texts are likely to be said soon (the declared answers at
start-up, the response cache's predictions after a turn); a ``tts`` node with an audio cache
synthesizes the sentences it does not hold yet when it is idle. What may be spent on that is
bounded per process and voice (:class:`PrefetchBudget`, shared by every call of the process
through :func:`shared_prefetch`):

- a **provider budget**: characters sent to the provider for prefetching in the last minute
  (a cloud voice is billed per character; a local one costs CPU per character);
- a **CPU budget**: the share of the last minute spent synthesizing prefetches (``max_busy``;
  a local model's synthesis is CPU time taken from live calls). Preloading at start-up, when
  no call is live, is not held to it.

Two calls never make the same sentence at once (:meth:`Prefetcher.claim`), and the counters
(prefetched, already held, deferred by the budget, interrupted, failed) are in ``/health``
(:func:`prefetch_stats`).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from typing import Final

__all__ = ["WINDOW_S", "PrefetchBudget", "Prefetcher", "prefetch_stats", "shared_prefetch"]

WINDOW_S: Final = 60.0


class PrefetchBudget:
    """Characters and busy seconds spent in the last :data:`WINDOW_S` seconds, against their
    caps (see the module docstring)."""

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
        now = self.clock()
        while self._spent and self._spent[0][0] <= now - WINDOW_S:
            self._spent.popleft()
        return sum(c for _, c, _ in self._spent), sum(b for _, _, b in self._spent)

    def allows(self, chars: int, *, preload: bool = False) -> bool:
        """May ``chars`` more be synthesized now? (``preload``: the CPU cap does not apply.)"""
        spent_chars, busy = self._window()
        if spent_chars + chars > self.max_chars:
            return False
        return preload or busy < self.max_busy * WINDOW_S

    def spend(self, chars: int, busy_s: float) -> None:
        self._spent.append((self.clock(), chars, busy_s))

    def retry_in_s(self) -> float:
        """Seconds until the oldest spending leaves the window (when a refusal may lift)."""
        self._window()
        if not self._spent:
            return 0.0
        return max(self._spent[0][0] + WINDOW_S - self.clock(), 0.0)


class Prefetcher:
    """One voice's budget, its sentences being made now, and its counters."""

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


_prefetchers: dict[str, Prefetcher] = {}


def shared_prefetch(voice: str, max_chars_per_min: int, max_busy: float) -> Prefetcher:
    """The process's prefetcher of ``voice`` (its budget set by the first node that asks)."""
    found = _prefetchers.get(voice)
    if found is None:
        found = _prefetchers[voice] = Prefetcher(PrefetchBudget(max_chars_per_min, max_busy))
    return found


def prefetch_stats() -> dict[str, dict[str, int]]:
    """Per voice: sentences prefetched, already held, deferred by the budget, interrupted by a
    reply (made again later), failed."""
    keys = ("prefetched", "held", "deferred", "interrupted", "failed")
    return {voice: {k: p.counters[k] for k in keys} for voice, p in _prefetchers.items()}
