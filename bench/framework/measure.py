"""Framework-neutral measurement drivers for the voice-pipeline benchmark.

Every framework is driven through the same small adapter (``Adapter`` /
``Chain`` below), so the figures differ only by what the framework does between
the source and the sink, never by how the harness feeds or observes it. The
drivers own all timing; an adapter only moves frames.

Topology for every measure: source -> ``n_processors`` pass-through
processors -> sink. A frame is 20 ms of 8 kHz 16-bit mono audio (320 bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

FRAME_BYTES = 320
FRAME_PERIOD_S = 0.020
N_PROCESSORS = 10
DEFAULT_RAMP = (25, 50, 100, 150, 200, 250, 300, 400, 500, 600, 800, 1000)

SinkKind = Literal["data", "system", "interrupt"]
# Called synchronously by the sink for every benchmark frame it receives:
# (kind, seq, stamp). ``seq`` and ``stamp`` are the values given to
# ``push_data``/``push_system``; for "interrupt" they are -1 and 0.0.
# It must be cheap and must not block: it runs inside the framework.
SinkCallback = Callable[[SinkKind, int, float], None]

Json = dict[str, Any]


class Chain(Protocol):
    """One running call: source -> n pass-through processors -> sink.

    Returned by ``Adapter.build`` only once the pipeline is fully started, so a
    frame pushed right away is processed rather than parked until start-up.
    """

    async def push_data(self, seq: int, stamp: float = 0.0) -> None:
        """Send one 320-byte ordered, interruptible (data) audio frame."""
        ...

    async def push_system(self, seq: int, stamp: float = 0.0) -> None:
        """Send one 320-byte high-priority (system) audio frame."""
        ...

    async def interrupt(self) -> None:
        """Start a barge-in the way the framework does it (its interruption frame).

        The interruption must travel through the chain like a frame; the sink
        reports it with kind "interrupt" when it gets there, never the adapter.
        """
        ...

    def block_tail(self) -> None:
        """Make the last pass-through processor hold data frames until released.

        Also resets the count returned by ``tail_backlog``.
        """
        ...

    def release_tail(self) -> None:
        """Let the last pass-through processor process data frames again."""
        ...

    def tail_backlog(self) -> int:
        """Data frames that reached the last processor since ``block_tail``.

        Lets the interrupt driver know the frames really are queued in front of
        the blocked stage instead of guessing with a sleep.
        """
        ...

    async def close(self) -> None:
        """Tear the call down and wait until it has stopped."""
        ...


class Adapter(Protocol):
    """A framework (in one configuration profile) as seen by the drivers."""

    name: str
    """Human-readable framework, version and profile, e.g. "pipecat 1.14.0 (lean)"."""

    import_modules: Sequence[str]
    """Modules a pipeline of this shape imports; what the import-time measure times."""

    async def build(self, n_processors: int, on_sink: SinkCallback) -> Chain:
        """Build and start one call with ``n_processors`` pass-through processors."""
        ...


# --------------------------------------------------------------------------- stats


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(values: Sequence[float], digits: int = 1) -> Json:
    """Median/p99 (the reported figures) plus spread, rounded for the report."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), digits),
        "p90": round(percentile(values, 90), digits),
        "p99": round(percentile(values, 99), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def _fail_after(fut: asyncio.Future[Any], timeout_s: float) -> asyncio.TimerHandle:
    """Fail ``fut`` with TimeoutError after ``timeout_s``.

    Armed before the clock starts, unlike ``asyncio.wait_for`` whose set-up
    would land inside the timed window whenever a push returns before the
    frame is processed.
    """

    def expire() -> None:
        if not fut.done():
            fut.set_exception(TimeoutError(f"no frame at the sink within {timeout_s} s"))

    return asyncio.get_running_loop().call_later(timeout_s, expire)


# ------------------------------------------------------------------ 1. latency


async def measure_latency(
    adapter: Adapter,
    *,
    samples: int = 5000,
    warmup: int = 500,
    n_processors: int = N_PROCESSORS,
    timeout_s: float = 5.0,
) -> Json:
    """One frame at a time through the chain, system and data frames alternating.

    Alternating the two kinds sample by sample exposes both to the same machine
    noise, so their difference is the framework's and not the neighbour's. The
    time is taken in the sink callback, so waking the driver is not counted.
    """
    loop = asyncio.get_running_loop()
    expect: tuple[str, int] = ("", -1)
    waiter: asyncio.Future[float] = loop.create_future()

    def on_sink(kind: SinkKind, seq: int, stamp: float) -> None:
        if (kind, seq) == expect and not waiter.done():
            waiter.set_result(time.perf_counter())

    chain = await adapter.build(n_processors, on_sink)
    results: dict[str, list[float]] = {"system": [], "data": []}
    try:
        for i in range(warmup + samples):
            for kind in ("system", "data"):
                expect = (kind, i)
                waiter = loop.create_future()
                guard = _fail_after(waiter, timeout_s)
                t0 = time.perf_counter()
                if kind == "system":
                    await chain.push_system(i)
                else:
                    await chain.push_data(i)
                t1 = await waiter
                guard.cancel()
                if i >= warmup:
                    results[kind].append((t1 - t0) * 1e6)
    finally:
        await chain.close()
    return {
        "unit": "us",
        "warmup_discarded": warmup,
        "system": summarize(results["system"]),
        "data": summarize(results["data"]),
    }


# --------------------------------------------------------------- 2. throughput


async def measure_throughput(
    adapter: Adapter,
    *,
    frames: int = 50_000,
    warmup: int = 1000,
    n_processors: int = N_PROCESSORS,
    timeout_s: float = 60.0,
) -> Json:
    """Flood data frames as fast as ``push_data`` returns; rate first-send to last-sink.

    A warm-up flood first, so lazily created state and code paths are not timed.
    """
    loop = asyncio.get_running_loop()
    target = 0
    received = 0
    done: asyncio.Future[float] = loop.create_future()

    def on_sink(kind: SinkKind, seq: int, stamp: float) -> None:
        nonlocal received
        if kind == "data":
            received += 1
            if received == target and not done.done():
                done.set_result(time.perf_counter())

    chain = await adapter.build(n_processors, on_sink)
    try:
        target = warmup
        for i in range(warmup):
            await chain.push_data(i)
        await asyncio.wait_for(done, timeout_s)

        gc.collect()
        received = 0
        target = frames
        done = loop.create_future()
        t0 = time.perf_counter()
        for i in range(frames):
            await chain.push_data(i)
        t_pushed = time.perf_counter()
        try:
            t_end = await asyncio.wait_for(done, timeout_s)
            complete = True
        except TimeoutError:
            t_end, complete = time.perf_counter(), False
    finally:
        await chain.close()
    elapsed = t_end - t0
    return {
        "frames": frames,
        "received": received,
        "complete": complete,
        "seconds": round(elapsed, 3),
        "push_phase_seconds": round(t_pushed - t0, 3),
        "frames_per_s": round(received / elapsed, 1),
    }


# ------------------------------------------------------- 3. idle call footprint


def _rss_bytes() -> int:
    import psutil  # type: ignore[import-untyped,unused-ignore]  # only this measure needs it

    return int(psutil.Process().memory_info().rss)


async def measure_idle_footprint(
    adapter: Adapter,
    *,
    calls: int = 100,
    n_processors: int = N_PROCESSORS,
    settle_s: float = 0.5,
    timeout_s: float = 10.0,
) -> Json:
    """RSS and asyncio tasks per idle, fully started call.

    Meant to run in a fresh process (see ``spawn_json``): earlier measures leave
    freed-but-held heap behind, which would hide the new calls' memory. One call
    is built and closed first so that one-off costs (lazy imports, caches) are in
    the baseline, not spread over the K calls.
    """
    loop = asyncio.get_running_loop()
    probed = 0
    all_probed: asyncio.Future[None] = loop.create_future()

    def on_sink(kind: SinkKind, seq: int, stamp: float) -> None:
        nonlocal probed
        if kind == "system":
            probed += 1
            if probed == calls and not all_probed.done():
                all_probed.set_result(None)

    warm = await adapter.build(n_processors, on_sink)
    await warm.close()
    await asyncio.sleep(settle_s)
    gc.collect()
    rss0, tasks0 = _rss_bytes(), len(asyncio.all_tasks())

    t0 = time.perf_counter()
    chains = [await adapter.build(n_processors, on_sink) for _ in range(calls)]
    build_s = time.perf_counter() - t0
    await asyncio.sleep(settle_s)  # let start-up's transient tasks finish
    gc.collect()
    rss1, tasks1 = _rss_bytes(), len(asyncio.all_tasks())

    # Prove every call is running (after measuring, so the probe costs nothing).
    for i, chain in enumerate(chains):
        await chain.push_system(i)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(all_probed, timeout_s)
    t0 = time.perf_counter()
    for chain in chains:
        await chain.close()
    close_s = time.perf_counter() - t0
    return {
        "calls": calls,
        "rss_kb_per_call": round((rss1 - rss0) / 1024 / calls, 1),
        "tasks_per_call": round((tasks1 - tasks0) / calls, 2),
        "baseline_tasks": tasks0,
        "alive_calls": probed,
        "build_ms_per_call": round(build_s * 1000 / calls, 2),
        "close_ms_per_call": round(close_s * 1000 / calls, 2),
    }


# ---------------------------------------------------------------- 5. interrupt


async def measure_interrupt(
    adapter: Adapter,
    *,
    reps: int = 20,
    queued: int = 300,
    n_processors: int = N_PROCESSORS,
    timeout_s: float = 10.0,
) -> Json:
    """Barge-in past ``queued`` data frames held in front of a blocked last processor.

    Per repetition: block the tail, push ``queued`` frames, wait until all of them
    have reached the blocked stage (or backpressure stops them; then only the
    frames actually sent count), send the interrupt, and time it to the sink.
    Then release the tail, push one marker frame and wait for it, and count the
    pre-interrupt frames that reached the sink after the interrupt (stale audio
    a caller would hear after barging in). An interrupt through the empty chain
    is timed too, as a reference for what the queued frames add.
    """
    loop = asyncio.get_running_loop()
    batch = range(0)
    marker = -1
    interrupted: asyncio.Future[float] = loop.create_future()
    marker_seen: asyncio.Future[None] = loop.create_future()
    stale = early = 0

    def on_sink(kind: SinkKind, seq: int, stamp: float) -> None:
        nonlocal stale, early
        if kind == "interrupt":
            if not interrupted.done():
                interrupted.set_result(time.perf_counter())
        elif kind == "data":
            if seq == marker:
                if not marker_seen.done():
                    marker_seen.set_result(None)
            elif seq in batch:
                if interrupted.done():
                    stale += 1
                else:
                    early += 1

    chain = await adapter.build(n_processors, on_sink)
    times_ms: list[float] = []
    empty_ms: list[float] = []
    stale_counts: list[int] = []
    early_total = 0
    backlog_seen: list[int] = []
    pushed_seen: list[int] = []
    next_seq = 0
    try:
        for rep in range(reps + 1):  # rep 0 is a discarded warm-up
            # Reference: interrupt with nothing queued.
            interrupted = loop.create_future()
            guard = _fail_after(interrupted, timeout_s)
            t0 = time.perf_counter()
            await chain.interrupt()
            t1 = await interrupted
            guard.cancel()
            if rep:
                empty_ms.append((t1 - t0) * 1e3)

            stale = early = 0
            start = next_seq
            marker = start + queued
            next_seq += queued + 1
            batch = range(start, marker)
            interrupted = loop.create_future()
            marker_seen = loop.create_future()
            chain.block_tail()
            # Pushed from a task: a framework with bounded queues may apply
            # backpressure and never take all ``queued`` frames while blocked.
            pushed = 0

            async def push_batch(start: int = start) -> None:
                nonlocal pushed
                for seq in range(start, start + queued):
                    await chain.push_data(seq)
                    pushed += 1

            pusher = asyncio.create_task(push_batch())
            deadline = time.perf_counter() + timeout_s
            last, last_change = (-1, -1), time.perf_counter()
            # Polling: the backlog is a plain counter the framework side keeps.
            while chain.tail_backlog() < queued and time.perf_counter() < deadline:
                now, state = time.perf_counter(), (pushed, chain.tail_backlog())
                if state != last:
                    last, last_change = state, now
                elif now - last_change > 0.2:
                    break  # nothing moves any more: backpressure holds the rest
                await asyncio.sleep(0.001)
            if not pusher.done():
                pusher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pusher
            batch = range(start, start + pushed)  # only frames really sent count
            backlog = chain.tail_backlog()
            guard = _fail_after(interrupted, timeout_s)
            t0 = time.perf_counter()
            await chain.interrupt()
            t1 = await interrupted
            guard.cancel()
            chain.release_tail()
            await chain.push_data(marker)
            await asyncio.wait_for(marker_seen, timeout_s)
            await asyncio.sleep(0.01)  # stragglers a framework might reorder
            if rep:
                times_ms.append((t1 - t0) * 1e3)
                stale_counts.append(stale)
                early_total += early
                backlog_seen.append(backlog)
                pushed_seen.append(pushed)
    finally:
        await chain.close()
    return {
        "unit": "ms",
        "queued": queued,
        "reps": reps,
        "min_pushed_before_interrupt": min(pushed_seen) if pushed_seen else 0,
        "min_backlog_at_tail_at_interrupt": min(backlog_seen) if backlog_seen else 0,
        "interrupt_to_sink_ms": summarize(times_ms, 3),
        "interrupt_to_sink_empty_chain_ms": summarize(empty_ms, 3),
        "stale_frames_after_interrupt": {
            "median": statistics.median(stale_counts) if stale_counts else None,
            "max": max(stale_counts) if stale_counts else None,
        },
        "frames_leaked_past_blocked_tail": early_total,
    }


# -------------------------------------------------------------- 6. import time


def measure_import_time(
    modules: Sequence[str], *, python: str = sys.executable, runs: int = 5
) -> Json:
    """Wall time of ``python -c "import ..."`` minus ``python -c pass``, medians of ``runs``.

    Runs alternate between the two commands so drift in machine load hits both.
    The child also times the import statement itself, a cross-check that leaves
    interpreter start-up and shutdown out entirely.
    """
    code = (
        "import time; t = time.perf_counter(); import "
        + ", ".join(modules)
        + "; print(time.perf_counter() - t)"
    )
    with_imports: list[float] = []
    in_process: list[float] = []
    empty: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, check=True, timeout=60
        )
        with_imports.append(time.perf_counter() - t0)
        in_process.append(float(proc.stdout.split()[-1]))
        t0 = time.perf_counter()
        subprocess.run([python, "-c", "pass"], capture_output=True, check=True, timeout=60)
        empty.append(time.perf_counter() - t0)
    med_imp, med_empty = statistics.median(with_imports), statistics.median(empty)
    return {
        "modules": list(modules),
        "runs": runs,
        "import_s": round(med_imp - med_empty, 3),
        "import_in_process_s": round(statistics.median(in_process), 3),
        "interpreter_with_imports_s": round(med_imp, 3),
        "empty_interpreter_s": round(med_empty, 3),
    }


def spawn_json(
    argv: Sequence[str], timeout_s: float, cwd: str | os.PathLike[str] | None = None
) -> Json:
    """Run a child that prints one JSON object as its last stdout line.

    Used so state (heap, tasks, CPU affinity) cannot leak between measures.
    """
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout_s, check=False, cwd=cwd
        )
    except subprocess.TimeoutExpired:
        return {"error": f"child timed out after {timeout_s:.0f} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"error": f"child exit {proc.returncode}", "stderr_tail": proc.stderr[-2000:]}
    result: Json = json.loads(lines[-1])
    return result
