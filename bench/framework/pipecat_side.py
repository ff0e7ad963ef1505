"""pipecat-ai 1.14 behind the benchmark adapter (``measure.Adapter``).

One call is what a pipecat server runs per session: a ``PipelineWorker`` over a
``Pipeline`` of our processors, run by its own ``WorkerRunner``. Profiles:

- ``lean``: ``PipelineWorker(enable_rtvi=False, enable_turn_tracking=False,
  idle_timeout_secs=None)``, the cheapest configuration pipecat offers.
- ``default``: ``PipelineWorker(pipeline)`` with pipecat's defaults (RTVI
  processor + observer, turn-tracking observer, 300 s idle-timeout monitor).

Frames: data = ``OutputAudioRawFrame`` (a ``DataFrame``: ordered, interruptible),
system = ``InputAudioRawFrame`` (a ``SystemFrame``: own priority path). Both
carry ``(seq, stamp)`` in ``frame.metadata``. They enter through
``PipelineWorker.queue_frame``, pipecat's public way to feed a running
pipeline; the interrupt is ``queue_frame(InterruptionFrame())``, the frame every
pipecat processor reacts to by cancelling its in-flight work and dropping its
queue (``FrameProcessor._start_interruption``).

The sink is a regular (queued) ``FrameProcessor`` at the end of the user
pipeline, as an output transport would be. It consumes benchmark frames and
passes everything else (StartFrame, EndFrame, ...) on so the worker's own
lifecycle keeps working.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameCallback, FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from bench.framework.measure import FRAME_BYTES, SinkCallback

# pipecat logs at DEBUG per link/start/stop; a server would not run like that.
logger.remove()
logger.add(sys.stderr, level="WARNING")

_SAMPLE_RATE = 8000
_PCM = bytes(FRAME_BYTES)
_KEY = "bench"  # metadata key holding (seq, stamp)

PROFILES: dict[str, dict[str, Any]] = {
    "lean": {"enable_rtvi": False, "enable_turn_tracking": False, "idle_timeout_secs": None},
    "default": {},
}

IMPORT_MODULES: tuple[str, ...] = (
    "pipecat.pipeline.worker",
    "pipecat.pipeline.pipeline",
    "pipecat.workers.runner",
    "pipecat.processors.frame_processor",
    "pipecat.frames.frames",
)


class _PassThrough(FrameProcessor):
    """Forwards every frame; the cost measured is pipecat's per-hop machinery."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


class _GatedPassThrough(_PassThrough):
    """Last pass-through: can hold data frames so they pile up behind it (interrupt test).

    Counts data frames arriving while closed, so the driver knows when the
    backlog is really in place.
    """

    def __init__(self) -> None:
        super().__init__()
        self._open = asyncio.Event()
        self._open.set()
        self.backlog = 0

    def close_gate(self) -> None:
        self.backlog = 0
        self._open.clear()

    def open_gate(self) -> None:
        self._open.set()

    async def queue_frame(
        self,
        frame: Frame,
        direction: FrameDirection = FrameDirection.DOWNSTREAM,
        callback: FrameCallback | None = None,
    ) -> None:
        if not self._open.is_set() and isinstance(frame, OutputAudioRawFrame):
            self.backlog += 1
        await super().queue_frame(frame, direction, callback)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if not self._open.is_set() and isinstance(frame, OutputAudioRawFrame):
            await self._open.wait()
        await super().process_frame(frame, direction)


class _Sink(FrameProcessor):
    """Reports benchmark frames to the driver; lets lifecycle frames through."""

    def __init__(self, on_sink: SinkCallback, started: asyncio.Event) -> None:
        super().__init__()
        self._on_sink = on_sink
        self._started = started

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, OutputAudioRawFrame):
            seq, stamp = frame.metadata[_KEY]
            self._on_sink("data", seq, stamp)
            return
        if isinstance(frame, InputAudioRawFrame):
            seq, stamp = frame.metadata[_KEY]
            self._on_sink("system", seq, stamp)
            return
        if isinstance(frame, InterruptionFrame):
            self._on_sink("interrupt", -1, 0.0)
        elif isinstance(frame, StartFrame):
            self._started.set()
        await self.push_frame(frame, direction)


class PipecatChain:
    """One running pipecat call (see module docstring)."""

    def __init__(
        self,
        worker: PipelineWorker,
        runner: WorkerRunner,
        run_task: asyncio.Task[None],
        gate: _GatedPassThrough,
    ) -> None:
        self._worker = worker
        self._runner = runner
        self._run_task = run_task
        self._gate = gate

    async def push_data(self, seq: int, stamp: float = 0.0) -> None:
        frame = OutputAudioRawFrame(audio=_PCM, sample_rate=_SAMPLE_RATE, num_channels=1)
        frame.metadata[_KEY] = (seq, stamp)
        await self._worker.queue_frame(frame)

    async def push_system(self, seq: int, stamp: float = 0.0) -> None:
        frame = InputAudioRawFrame(audio=_PCM, sample_rate=_SAMPLE_RATE, num_channels=1)
        frame.metadata[_KEY] = (seq, stamp)
        await self._worker.queue_frame(frame)

    async def interrupt(self) -> None:
        await self._worker.queue_frame(InterruptionFrame())

    def block_tail(self) -> None:
        self._gate.close_gate()

    def release_tail(self) -> None:
        self._gate.open_gate()

    def tail_backlog(self) -> int:
        return self._gate.backlog

    async def close(self) -> None:
        self._gate.open_gate()
        await self._runner.cancel(reason="benchmark done")
        await asyncio.wait_for(self._run_task, 30)


class PipecatAdapter:
    """Builds pipecat calls in one profile."""

    def __init__(self, profile: str) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown pipecat profile {profile!r}; have {sorted(PROFILES)}")
        self.profile = profile
        self.name = f"pipecat {version('pipecat-ai')} ({profile})"
        self.import_modules: Sequence[str] = IMPORT_MODULES

    async def build(self, n_processors: int, on_sink: SinkCallback) -> PipecatChain:
        if n_processors < 1:
            raise ValueError("need at least one processor (the last one is the gate)")
        started = asyncio.Event()
        gate = _GatedPassThrough()
        processors: list[FrameProcessor] = [_PassThrough() for _ in range(n_processors - 1)]
        pipeline = Pipeline([*processors, gate, _Sink(on_sink, started)])
        worker = PipelineWorker(pipeline, **PROFILES[self.profile])
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(worker)
        run_task = asyncio.create_task(runner.run())
        await asyncio.wait_for(started.wait(), 30)
        return PipecatChain(worker, runner, run_task, gate)


def make_adapter(profile: str) -> PipecatAdapter:
    """Entry point used by the CLI's adapter registry."""
    return PipecatAdapter(profile)
