"""Clocks: the call's sense of time, injectable so that time-dependent tests run on virtual time."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol

_NS = 1_000_000_000


class Clock(Protocol):
    """What the runtime and processors need of time: a monotonic now, and sleeping."""

    def now_ns(self) -> int:
        """Monotonic time in nanoseconds."""
        ...

    async def sleep_until(self, deadline_ns: int) -> None:
        """Return once ``now_ns() >= deadline_ns``."""
        ...


class MonotonicClock:
    """The real clock: ``time.monotonic_ns`` and ``asyncio.sleep``."""

    __slots__ = ()

    def now_ns(self) -> int:
        return time.monotonic_ns()

    async def sleep_until(self, deadline_ns: int) -> None:
        delay = deadline_ns - time.monotonic_ns()
        await asyncio.sleep(delay / _NS if delay > 0 else 0)


class VirtualClock:
    """A clock that only moves when a test tells it to.

    Sleepers wake in deadline order as :meth:`advance` passes their deadlines, each at exactly
    its deadline, so a test of pacing or timeouts is deterministic and takes no real time.
    """

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns
        self._sleepers: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now_ns(self) -> int:
        return self._now

    async def sleep_until(self, deadline_ns: int) -> None:
        if deadline_ns <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline_ns, next(self._seq), fut))
        await fut

    @property
    def sleepers(self) -> int:
        """How many tasks are asleep on this clock."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its deadline and letting it run."""
        target = self._now + round(seconds * _NS)
        await _settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not fut.done():
                fut.set_result(None)
            await _settle()
        self._now = target
        await _settle()


async def _settle(rounds: int = 8) -> None:
    """Let woken tasks run until they block again (a few loop iterations)."""
    for _ in range(rounds):
        await asyncio.sleep(0)
