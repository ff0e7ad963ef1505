"""Test helpers that ship with callweaver, for its own tests and for teams writing processors.

- :func:`run_processor`: run one processor as a real actor over a list of frames and collect
  what it emits downstream (per port) and upstream.
- :class:`ListIO`: an in-memory transport for whole calls: plays a list of frames, records
  what reaches the output.
- Fakes configured by constructor: :class:`Failing` (raises on chosen frames) and
  :class:`Slow` (awaits before forwarding, on the call's clock).
- :func:`tone`: PCM16 test audio.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from callweaver.frames.base import Frame
from callweaver.frames.control import EndFrame, InterruptFrame, StartFrame
from callweaver.runtime.actor import Actor, Route, Supervision
from callweaver.runtime.clock import Clock, MonotonicClock
from callweaver.runtime.context import CallContext
from callweaver.runtime.inbox import Inbox
from callweaver.runtime.processor import Processor

_UNBOUNDED = 1 << 30


@dataclass(slots=True)
class Run:
    """What :func:`run_processor` collected. Unpacks as ``downstream, upstream``."""

    downstream: list[Frame]
    upstream: list[Frame]
    ports: dict[str, list[Frame]] = field(default_factory=dict)
    ctx: CallContext | None = None
    ended: list[str] = field(default_factory=list)
    """Reasons the processor gave when it asked to end or cancel the call."""
    interrupts: list[int] = field(default_factory=list)
    """The turns the processor interrupted the call for (barge-in)."""

    def __iter__(self) -> Iterator[list[Frame]]:
        yield self.downstream
        yield self.upstream


def _drain(inbox: Inbox) -> list[Frame]:
    out = []
    while (frame := inbox.get_nowait()) is not None:
        if not isinstance(frame, EndFrame):
            out.append(frame)
    return out


async def run_processor(
    processor: Processor,
    frames: Iterable[Frame],
    *,
    clock: Clock | None = None,
    supervision: Supervision | None = None,
    call_id: str = "test-call",
) -> Run:
    """Run ``processor`` as a real actor: start, every frame of ``frames`` in order, then end
    of stream. Returns every frame it emitted (end of stream excluded).

    Interrupts requested through ``ctx.interrupt`` reach the processor's own actor.
    """
    ctx = CallContext(call_id, clock or MonotonicClock())
    actor = Actor(
        "under_test",
        lambda: processor,
        ctx,
        inbox=Inbox(_UNBOUNDED, "block"),
        supervision=supervision,
    )
    everything = Inbox(_UNBOUNDED, "block")  # all ports, in the order they were emitted
    collectors = {port: Inbox(_UNBOUNDED, "block") for port in type(processor).ports}
    for port, inbox in collectors.items():
        actor.routes[port] = Route((), (inbox, everything))
    upstream = Inbox(_UNBOUNDED, "block")
    actor.upstream.inboxes = (upstream,)
    ended: list[str] = []
    interrupts: list[int] = []

    def interrupt(turn: int) -> None:
        interrupts.append(turn)
        actor.interrupt(turn, _interrupt_frame(ctx, turn))

    ctx._interrupt = interrupt
    ctx._end = ended.append
    ctx._cancel = ended.append

    actor.inbox.put_nowait(StartFrame(call_id=call_id, ts_ns=ctx.now_ns()))
    async with asyncio.TaskGroup() as tg:
        tg.create_task(actor.run())
        for frame in frames:
            await actor.inbox.put(frame)
            await asyncio.sleep(0)
        await actor.inbox.put(EndFrame(call_id=call_id, ts_ns=ctx.now_ns()))
    ports = {port: _drain(inbox) for port, inbox in collectors.items()}
    return Run(_drain(everything), _drain(upstream), ports, ctx, ended, interrupts)


def _interrupt_frame(ctx: CallContext, turn: int) -> InterruptFrame:
    return InterruptFrame(call_id=ctx.call_id, turn_id=turn, ts_ns=ctx.now_ns())


class ListIO:
    """An in-memory transport: yields ``frames`` (optionally one every ``interval_s`` on
    ``clock``) and records every frame that reaches the output."""

    def __init__(
        self,
        frames: Iterable[Frame] = (),
        *,
        clock: Clock | None = None,
        interval_s: float = 0.0,
        hold_open: asyncio.Event | None = None,
    ) -> None:
        self._frames = list(frames)
        self.clock = clock or MonotonicClock()
        self.interval_ns = round(interval_s * 1e9)
        self.hold_open = hold_open
        self.written: list[Frame] = []
        self.flushes = 0
        self.on_write: Callable[[Frame], None] | None = None

    async def frames(self) -> AsyncIterator[Frame]:
        start = self.clock.now_ns()
        for i, frame in enumerate(self._frames):
            if self.interval_ns:
                await self.clock.sleep_until(start + i * self.interval_ns)
            yield frame
        if self.hold_open is not None:
            await self.hold_open.wait()

    async def write(self, frame: Frame) -> None:
        self.written.append(frame)
        if self.on_write is not None:
            self.on_write(frame)

    async def flush(self) -> None:
        self.flushes += 1


class Failing(Processor):
    """Forwards frames, but raises ``exc`` on every frame for which ``when(frame)`` is true."""

    def __init__(
        self,
        when: Callable[[Frame], bool],
        exc: Exception | None = None,
    ) -> None:
        super().__init__()
        self.when = when
        self.exc = exc or RuntimeError("injected failure")
        self.seen = 0

    async def process(self, frame: Frame) -> None:
        self.seen += 1
        if self.when(frame):
            raise self.exc
        await self.emit(frame)


class Slow(Processor):
    """Waits ``delay_s`` on the call's clock before forwarding each frame."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_ns = round(delay_s * 1e9)
        self.started = 0
        self.finished = 0

    async def process(self, frame: Frame) -> None:
        self.started += 1
        await self.ctx.clock.sleep_until(self.ctx.now_ns() + self.delay_ns)
        self.finished += 1
        await self.emit(frame)


def tone(seconds: float, *, rate: int = 16000, freq: float = 440.0, dbfs: float = -12.0) -> bytes:
    """A sine tone as PCM16 (``dbfs`` = peak level); ``dbfs=-inf`` gives silence."""
    n = round(seconds * rate)
    if math.isinf(dbfs):
        return bytes(2 * n)
    amp = 32767 * 10 ** (dbfs / 20)
    t = np.arange(n) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()
