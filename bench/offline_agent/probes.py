"""Measuring aids around the calls: event-loop stalls, busy cores, whisper's decodes."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time

from bench.offline_agent import Json
from callweaver.runtime.latency import percentile


class LoopLag:
    """How late a task that sleeps ``period_s`` wakes: the event loop's stalls; and the
    longest garbage collection meanwhile (one cause of them)."""

    def __init__(self, period_s: float = 0.01) -> None:
        self.period_s = period_s
        self.lags_ms: list[float] = []
        self.gc_max_ms = 0.0
        self._gc_t0 = 0.0
        self._task: asyncio.Task[None] | None = None

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_t0 = time.perf_counter()
        else:
            self.gc_max_ms = max(self.gc_max_ms, (time.perf_counter() - self._gc_t0) * 1000)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(self.period_s)
            self.lags_ms.append((loop.time() - t - self.period_s) * 1000)

    async def __aenter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._watch())
        gc.callbacks.append(self._gc)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        gc.callbacks.remove(self._gc)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def summary(self) -> Json:
        lags = self.lags_ms or [0.0]
        return {"p99_ms": percentile(lags, 99), "max_ms": max(lags), "gc_max_ms": self.gc_max_ms}


class Cpu:
    """Cores this process kept busy (all threads) over a span."""

    def __init__(self) -> None:
        import psutil

        self._proc = psutil.Process()
        self._t0 = time.perf_counter()
        c = self._proc.cpu_times()
        self._c0 = c.user + c.system

    def cores(self) -> float:
        c = self._proc.cpu_times()
        return (c.user + c.system - self._c0) / (time.perf_counter() - self._t0)


def whisper_decodes() -> int:
    """Decodes so far by the process's whisper models (speculative ones included)."""
    from callweaver.resources import whisper

    return sum(int(getattr(whisper.shared_model(m), "decodes", 0)) for m in whisper.loaded())
