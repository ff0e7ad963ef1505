"""A call: one instance of a graph, every task of it inside one ``asyncio.TaskGroup``.

Lifecycle: ``created -> starting -> running -> draining -> ended``.

- *running*: the call's own task pumps the transport's inbound frames into ``input``.
- *draining*: the inbound stream ended (the caller hung up, the file ran out) or :meth:`end`
  was called; an :class:`~callweaver.frames.EndFrame` follows the queued data through every
  actor in order, and each actor stops once all its inputs have ended. If draining takes
  longer than ``drain_timeout_s`` the rest is cancelled.
- :meth:`cancel` stops everything at once.

Nothing a call starts outlives it: the actors are children of the task group, and the pump
runs in the task that awaits :meth:`run`.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Protocol

from callweaver.errors import PeerGone
from callweaver.frames.audio import OutputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.control import EndFrame, InterruptFrame, StartFrame
from callweaver.frames.metrics import MetricsFrame
from callweaver.frames.text import ReplyEndFrame
from callweaver.pipelines.graph import INPUT, OUTPUT, Graph
from callweaver.runtime.actor import Actor, FusedTransform, Route, TransformFn
from callweaver.runtime.clock import Clock, MonotonicClock
from callweaver.runtime.context import CallContext, ErrorRecord
from callweaver.runtime.inbox import Inbox
from callweaver.runtime.latency import Stage, TurnTimes
from callweaver.runtime.processor import Processor


class CallIO(Protocol):
    """What a transport gives a call: frames in, frames out, and a flush for barge-in.

    A transport may also say its audio rates as ``in_sample_rate`` and ``out_sample_rate``
    attributes (16000 when absent), its wire encoding of reply audio as ``out_encoding``
    ("pcm16" when absent, "mulaw"), and the call's choices as a ``parameters`` mapping; the
    call passes them on in its :class:`StartFrame` (the parameters on its context too)."""

    def frames(self) -> AsyncIterator[Frame]:
        """The caller's frames (audio, DTMF...); the iterator ends when the caller's side
        ends (hang-up, end of file)."""
        ...

    async def write(self, frame: Frame) -> None:
        """Deliver a frame that reached the graph's ``output`` (reply audio, text...)."""
        ...

    async def flush(self) -> float | None:
        """Barge-in: drop reply audio buffered in the transport that has not played yet, and
        say how many ms of it were dropped (None: the transport cannot tell)."""
        ...


class CallState(StrEnum):
    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class NodeStats:
    """Frames one node's inbox refused or dropped, by reason."""

    dropped_overflow: int
    dropped_stale: int
    purged: int


@dataclass(slots=True)
class CallReport:
    """How a call went: why it ended, its turns' latency marks, failures and drops."""

    call_id: str
    reason: str
    duration_ns: int
    turns: list[TurnTimes]
    errors: list[ErrorRecord]
    nodes: dict[str, NodeStats] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    heard: dict[int, str] = field(default_factory=dict)
    """Replies cut by a barge-in: turn -> what the caller heard of the reply."""

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON-able data (latency in ms after the end of caller speech)."""
        return {
            "call_id": self.call_id,
            "reason": self.reason,
            "duration_s": self.duration_ns / 1e9,
            "parameters": self.parameters,
            "turns": [
                {
                    "turn": t.turn_id,
                    **{s.value: t.since_speech_end_ms(s) for s in t.marks},
                    "voice_to_voice_ms": t.voice_to_voice_ms,
                    "failover": t.switches,
                    **({"metrics": t.metrics} if t.metrics else {}),
                    **({"heard": self.heard[t.turn_id]} if t.turn_id in self.heard else {}),
                }
                for t in self.turns
            ],
            "errors": [asdict(e) for e in self.errors],
            "nodes": {k: asdict(v) for k, v in self.nodes.items()},
        }


class _Output(Processor):
    """The graph's ``output`` node: hands frames to the transport, marks first reply audio.

    At a barge-in it cuts the reply being played in the call's spoken log
    (:class:`~callweaver.runtime.spoken.SpokenLog`) where the caller stopped hearing it: the
    audio of the turn given to the transport, less what the transport dropped. A reply whose
    end had reached the transport and played out whole is not cut."""

    ports = ()

    def __init__(self, io: CallIO) -> None:
        super().__init__()
        self._io = io
        self._marked_turn = -1
        self._turn = 0  # the last turn whose reply audio reached the transport
        self._written_ms = 0.0  # of that turn's audio
        self._ended = False  # that turn's ReplyEndFrame reached the transport

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, OutputAudioFrame):
            if frame.turn_id != self._marked_turn:
                self._marked_turn = frame.turn_id
                self.ctx.mark(frame.turn_id, Stage.FIRST_AUDIO_OUT)
            if frame.turn_id != self._turn:
                self._turn, self._written_ms, self._ended = frame.turn_id, 0.0, False
            self._written_ms += frame.duration_ns / 1e6
        elif isinstance(frame, ReplyEndFrame) and frame.turn_id == self._turn:
            self._ended = True
        elif isinstance(frame, MetricsFrame) and frame.turn_id:
            self.ctx.latency.metric(frame.turn_id, frame.name, frame.value)
        try:
            await self._io.write(frame)
        except PeerGone:  # the caller hung up while we were talking: not an error
            self.ctx.end("hangup")

    async def on_interrupt(self, frame: InterruptFrame) -> None:
        dropped = await self._io.flush()
        turn = self._turn
        if dropped is None or not turn or turn >= frame.turn_id:
            return
        if dropped <= 0 and self._ended:
            return  # the whole reply had played
        self.ctx.spoken.cut(turn, self._written_ms - dropped)


_ids = itertools.count(1)


class Call:
    """One run of a graph for one caller.

    ``lossless=True`` makes every inbox apply backpressure instead of dropping caller audio:
    for input that is not real time (a file read as fast as possible, a test).
    """

    def __init__(
        self,
        graph: Graph,
        *,
        call_id: str | None = None,
        clock: Clock | None = None,
        drain_timeout_s: float = 10.0,
        lossless: bool = False,
    ) -> None:
        self.graph = graph
        self.lossless = lossless
        self.call_id = call_id or f"call-{next(_ids)}-{uuid.uuid4().hex[:8]}"
        self.ctx = CallContext(
            self.call_id,
            clock or MonotonicClock(),
            deployment=graph.name,
            _interrupt=self.interrupt,
            _end=self.end,
            _cancel=self.cancel,
        )
        self.drain_timeout_s = drain_timeout_s
        self.state = CallState.CREATED
        self.actors: dict[str, Actor] = {}
        self._task: asyncio.Task[Any] | None = None
        self._end_reason: str | None = None
        self._cancel_reason: str | None = None

    # -- levers -------------------------------------------------------------------------------

    def interrupt(self, before_turn: int) -> None:
        """Make reply frames of turns older than ``before_turn`` stale everywhere, at once."""
        frame = InterruptFrame(call_id=self.call_id, turn_id=before_turn, ts_ns=self.ctx.now_ns())
        for actor in self.actors.values():
            actor.interrupt(before_turn, frame)

    def end(self, reason: str = "completed") -> None:
        """Stop taking input and drain. Idempotent; the first reason wins."""
        if self._end_reason is not None or self.state in (CallState.DRAINING, CallState.ENDED):
            return
        self._end_reason = reason
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop everything now: actors are cancelled, queued frames are dropped."""
        if self._cancel_reason is not None or self.state is CallState.ENDED:
            return
        self._cancel_reason = reason
        if self._task is not None:
            self._task.cancel()

    # -- running ------------------------------------------------------------------------------

    async def run(self, io: CallIO) -> CallReport:
        """Run the call until it has drained or been cancelled; return its report."""
        if self.state is not CallState.CREATED:
            raise RuntimeError("a Call runs once")
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        ctx = self.ctx
        started = ctx.now_ns()
        if self._cancel_reason is not None:  # cancelled before it started
            self.state = CallState.ENDED
            return CallReport(self.call_id, self._cancel_reason, 0, [], [])
        self.state = CallState.STARTING
        entry = self._wire(io)
        ctx.parameters = MappingProxyType(dict(getattr(io, "parameters", None) or {}))
        start = StartFrame(
            call_id=self.call_id,
            ts_ns=started,
            in_sample_rate=getattr(io, "in_sample_rate", 16000),
            out_sample_rate=getattr(io, "out_sample_rate", 16000),
            out_encoding=getattr(io, "out_encoding", "pcm16"),
            parameters=ctx.parameters,
        )
        for actor in self.actors.values():
            actor.inbox.put_nowait(start)
        reason = "completed"
        try:
            async with asyncio.timeout(None) as deadline, asyncio.TaskGroup() as tg:
                for actor in self.actors.values():
                    tg.create_task(actor.run(), name=f"{self.call_id}/{actor.name}")
                self.state = CallState.RUNNING
                reason = await self._pump(io, entry)
                self.state = CallState.DRAINING
                await entry.send(EndFrame(call_id=self.call_id, ts_ns=ctx.now_ns(), reason=reason))
                deadline.reschedule(asyncio.get_running_loop().time() + self.drain_timeout_s)
        except TimeoutError:
            reason = f"{reason}; drain timed out after {self.drain_timeout_s:g} s"
        except asyncio.CancelledError:
            if self._cancel_reason is None or task.uncancel() > 0:
                raise
            reason = self._cancel_reason
        finally:
            self.state = CallState.ENDED
        return CallReport(
            call_id=self.call_id,
            reason=reason,
            duration_ns=ctx.now_ns() - started,
            turns=ctx.latency.turns,
            errors=list(ctx.errors),
            nodes={
                name: NodeStats(a.inbox.dropped_overflow, a.inbox.dropped_stale, a.inbox.purged)
                for name, a in self.actors.items()
            },
            parameters=dict(ctx.parameters),
            heard=ctx.spoken.cuts(),
        )

    async def _pump(self, io: CallIO, entry: Route) -> str:
        """Feed inbound frames to ``input`` until the caller's side ends or :meth:`end`."""
        frames = io.frames()
        try:
            async for frame in frames:
                await entry.send(frame)
                if self._end_reason is not None:
                    return self._end_reason
        except asyncio.CancelledError:
            task = self._task
            assert task is not None
            if self._end_reason is None or self._cancel_reason is not None:
                raise
            task.uncancel()
            return self._end_reason
        except PeerGone:
            return "hangup"
        except Exception as exc:  # a broken transport ends this call, never the process
            self.ctx.record_error(INPUT, exc, "end_call")
            return "error"
        finally:
            # close the transport's generator here, not later in a task of its own
            if isinstance(frames, AsyncGenerator):
                await frames.aclose()
        return self._end_reason or "hangup"

    def _wire(self, io: CallIO) -> Route:
        """Create this call's actors and connect their ports; return the route into ``input``."""
        graph, ctx = self.graph, self.ctx
        for name, node in graph.nodes.items():
            if name not in graph.fused:
                inbox = Inbox(node.inbox_capacity, "block" if self.lossless else node.overflow)
                self.actors[name] = Actor(
                    name, node.factory, ctx, inbox=inbox, supervision=node.supervision
                )
        output = Actor(OUTPUT, lambda: _Output(io), ctx, inbox=Inbox(256, "block"))
        self.actors[OUTPUT] = output
        fused: dict[str, TransformFn] = {
            name: FusedTransform(
                name, graph.nodes[name].factory, ctx, graph.nodes[name].supervision
            )
            for name in graph.fused
        }

        def route(src: str, port: str) -> Route:
            targets = graph.targets(src, port)
            if len(targets) == 1 and targets[0] in fused:
                after = route(targets[0], "out")
                return Route((fused[targets[0]], *after.transforms), after.inboxes)
            return Route((), tuple(self.actors[t].inbox for t in targets))

        entry = route(INPUT, "out")
        by_inbox = {id(a.inbox): a for a in self.actors.values()}
        for a in self.actors.values():
            a.in_degree = 0
        for name, actor in self.actors.items():
            if name == OUTPUT:
                continue
            for port in graph.nodes[name].ports:
                actor.routes[port] = route(name, port)
        for r in [entry, *(r for a in self.actors.values() for r in a.routes.values())]:
            for inbox in r.inboxes:
                by_inbox[id(inbox)].in_degree += 1
        for name, actor in self.actors.items():
            feeders = self._feeders(name)
            actor.upstream.inboxes = tuple(self.actors[f].inbox for f in feeders)
        return entry

    def _feeders(self, name: str) -> list[str]:
        """The actors that feed ``name``, looking through fused transforms."""
        graph = self.graph
        out: list[str] = []
        for e in graph.edges:
            if e.dst != name or e.src == INPUT:
                continue
            if e.src in graph.fused:
                out.extend(f for f in self._feeders(e.src) if f not in out)
            elif e.src not in out:
                out.append(e.src)
        return out
