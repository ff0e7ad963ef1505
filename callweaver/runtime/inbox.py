"""An actor's inbox: a system lane that overtakes a bounded data lane.

Backpressure policy (audio is real time, so something must give when a stage falls behind):

- system frames (start, cancel, interrupt) are never refused and never dropped;
- ``lossy`` frames (caller audio) never block the sender: when the data lane is full the
  *oldest* queued lossy frame is dropped (fresh audio matters more than old audio), or the
  new one if the head is not lossy; each drop is counted in ``dropped_overflow``;
- every other data frame (transcripts, reply text and audio, end of stream) is never dropped:
  the sender waits for room (:meth:`put`), which slows the stage upstream instead.

With ``overflow="block"`` lossy frames wait for room too (for benchmarks and file input, where
nothing runs in real time). Interruptible frames of a turn older than ``min_turn`` are refused
as stale and counted in ``dropped_stale``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Literal

from callweaver.frames.base import Frame

Overflow = Literal["drop_oldest", "block"]


class Inbox:
    """Two lanes and one waiting reader; see the module docstring for the policy."""

    __slots__ = (
        "_block_lossy",
        "_data",
        "_loop",
        "_space_waiters",
        "_system",
        "_waiter",
        "capacity",
        "dropped_overflow",
        "dropped_stale",
        "min_turn",
        "purged",
    )

    def __init__(self, capacity: int = 256, overflow: Overflow = "drop_oldest") -> None:
        if capacity < 1:
            raise ValueError("inbox capacity must be at least 1")
        self.capacity = capacity
        self._block_lossy = overflow == "block"
        self._system: deque[Frame] = deque()
        self._data: deque[Frame] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._space_waiters: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.min_turn = 0
        self.dropped_overflow = 0
        self.dropped_stale = 0
        self.purged = 0

    def __len__(self) -> int:
        return len(self._system) + len(self._data)

    def put_nowait(self, frame: Frame) -> bool:
        """Queue ``frame`` if the policy allows it now; False means "wait for room"."""
        if frame.system:
            self._system.append(frame)
        else:
            if frame.interruptible and frame.turn_id < self.min_turn:
                self.dropped_stale += 1
                return True
            data = self._data
            if len(data) >= self.capacity:
                if not frame.lossy or self._block_lossy:
                    return False
                self.dropped_overflow += 1
                if data[0].lossy:
                    data.popleft()
                else:
                    return True
            data.append(frame)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return True

    async def put(self, frame: Frame) -> None:
        """Queue ``frame``, waiting for room when the policy says the sender must wait."""
        while not self.put_nowait(frame):
            fut = self._get_loop().create_future()
            self._space_waiters.append(fut)
            try:
                await fut
            finally:
                if not fut.done():
                    fut.cancel()

    def get_nowait(self) -> Frame | None:
        """The next frame, system lane first, or None when both lanes are empty."""
        if self._system:
            return self._system.popleft()
        if self._data:
            frame = self._data.popleft()
            if self._space_waiters:
                self._wake_one_sender()
            return frame
        return None

    def waiter(self) -> asyncio.Future[None]:
        """A future that completes when the next frame arrives; call only when empty.

        Awaiting the future directly (rather than a coroutine) saves a frame object per wait
        on the hot path of every actor."""
        fut = self._get_loop().create_future()
        self._waiter = fut
        return fut

    async def wait(self) -> None:
        """Return when a frame may be available."""
        if not (self._system or self._data):
            await self.waiter()

    def purge(self, before_turn: int) -> int:
        """Drop queued interruptible frames of turns older than ``before_turn``; refuse them
        from now on. Returns how many were dropped."""
        self.min_turn = max(self.min_turn, before_turn)
        data = self._data
        kept = [f for f in data if not (f.interruptible and f.turn_id < self.min_turn)]
        dropped = len(data) - len(kept)
        if dropped:
            data.clear()
            data.extend(kept)
            self.purged += dropped
            while self._space_waiters and len(data) < self.capacity:
                self._wake_one_sender()
        return dropped

    def clear(self) -> None:
        """Drop everything queued (cancel) and release waiting senders."""
        self._data.clear()
        self._system.clear()
        while self._space_waiters:
            self._wake_one_sender()

    def _wake_one_sender(self) -> None:
        while self._space_waiters:
            fut = self._space_waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return

    def _get_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        return loop
