"""The processor contract: what a node of a call's graph implements.

A :class:`Processor` receives frames one at a time in :meth:`~Processor.process` and emits
frames on named output ports (``ports``) or upstream. The runtime (:mod:`.actor`) gives each
processor its own inbox and loop, so ``process`` may await (network I/O, a model in a thread)
without blocking any other stage of the call.

A :class:`Transform` is a pure, synchronous frame -> frame function. The graph may run it
*fused* inside its upstream actor, saving a queue hop and a task switch per frame.

Parameters: a processor class declares ``Params``, a pydantic model (or any class whose
constructor takes keyword arguments), and takes an instance of it as its only constructor
argument. The registry validates a node's ``params:`` against it before a call starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from callweaver.frames.audio import OutputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.control import EndFrame, InterruptFrame, StartFrame
from callweaver.frames.metrics import MetricsFrame

if TYPE_CHECKING:
    from callweaver.runtime.actor import Route
    from callweaver.runtime.context import CallContext


class NoParams:
    """The params of a processor that takes none."""

    def __init__(self, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"takes no params, got {sorted(kwargs)}")


class Processor:
    """Base class of every graph node. Override :meth:`process`; the default forwards."""

    Params: ClassVar[type[Any]] = NoParams
    ports: ClassVar[tuple[str, ...]] = ("out",)
    caller_side: ClassVar[bool] = False
    """Its work is on the caller's speech (transcribing a turn), not on the bot's reply: a
    barge-in never cancels it, so a caller who speaks again quickly loses no words."""

    name: str
    ctx: CallContext
    _routes: dict[str, Route]
    _upstream: Route

    def __init__(self, params: Any = None) -> None:
        self.params = params

    # -- lifecycle hooks ------------------------------------------------------------------

    def attached(self) -> None:
        """The processor has its call context (``self.ctx``), before any frame reaches any
        node of the call: say on the context what other nodes may need from the start."""

    async def start(self, frame: StartFrame) -> None:
        """The call starts: open what the processor needs (connections, model handles)."""

    async def process(self, frame: Frame) -> None:
        """Handle one data frame. The default passes it on unchanged."""
        await self.emit(frame)

    async def on_interrupt(self, frame: InterruptFrame) -> None:
        """Barge-in happened; queued stale frames are already gone and in-flight work on them
        has been cancelled. Reset per-turn state here."""

    async def on_end(self, frame: EndFrame) -> None:
        """Every input has ended: flush what is buffered (emit is still allowed)."""

    async def close(self) -> None:
        """Always called once when the actor stops, however it stops (end, cancel, error)."""

    # -- emitting ---------------------------------------------------------------------------

    async def emit(self, frame: Frame, port: str = "out") -> None:
        """Send ``frame`` to every node connected to ``port``, waiting for room if a
        receiver applies backpressure."""
        # Route.send, inlined: this is the per-frame hot path of every processor.
        route = self._routes[port]
        if route.transforms and not frame.control:
            for transform in route.transforms:
                out = transform(frame)
                if out is None:
                    return
                frame = out
        for inbox in route.inboxes:
            if not inbox.put_nowait(frame):
                await inbox.put(frame)

    async def emit_metric(self, name: str, value: float, turn_id: int | None = None) -> None:
        """Report a measurement of this node (default: the call's current turn) downstream,
        where the call's output collects it."""
        ctx = self.ctx
        await self.emit(
            MetricsFrame(
                call_id=ctx.call_id,
                turn_id=ctx.turn_id if turn_id is None else turn_id,
                ts_ns=ctx.now_ns(),
                name=name,
                value=value,
                node=self.name,
            )
        )

    async def emit_audio(self, pcm: bytes, sample_rate: int, turn_id: int, chunk: int) -> None:
        """Send reply audio (mono PCM16) downstream as frames of ``chunk`` bytes."""
        ctx = self.ctx
        for i in range(0, len(pcm), chunk):
            await self.emit(
                OutputAudioFrame(
                    call_id=ctx.call_id,
                    turn_id=turn_id,
                    ts_ns=ctx.now_ns(),
                    pcm=pcm[i : i + chunk],
                    sample_rate=sample_rate,
                )
            )

    async def emit_upstream(self, frame: Frame) -> None:
        """Send ``frame`` back to every node that feeds this one."""
        await self._upstream.send(frame)


class Transform(Processor):
    """A pure synchronous frame transform, fusible into its upstream actor.

    Override :meth:`transform`: return the frame to pass on (the same or a new one), or None
    to drop it. Control frames never reach it. It must not await, emit, or keep per-turn
    state that needs :meth:`on_interrupt`.
    """

    fusible: ClassVar[bool] = True

    def transform(self, frame: Frame) -> Frame | None:
        return frame

    async def process(self, frame: Frame) -> None:
        out = self.transform(frame)
        if out is not None:
            await self.emit(out)
