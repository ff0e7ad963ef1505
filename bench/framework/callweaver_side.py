"""callweaver behind the benchmark adapter (``measure.Adapter``).

One benchmark call is a real :class:`~callweaver.pipelines.call.Call` of a
:class:`~callweaver.pipelines.graph.Graph`, fed by a transport (``BenchIO``) the way a
WebSocket transport feeds it: the call's own task pumps ``BenchIO.frames()`` into the
graph, and the graph's ``output`` actor hands frames to ``BenchIO.write``, which is the
sink. Profiles:

- ``actors``: 10 :class:`Passthrough` processors, each its own actor (inbox, loop, task).
- ``fused``: 9 :class:`Identity` transforms fused into the pump (no queue hop each),
  then the gate passthrough actor. Same topology, the graph's fusion decides.

Frames: data = an :class:`OutputAudioFrame` subclass carrying ``(seq, stamp)`` (ordered,
interruptible); system = a frame class with ``system = True`` (the inbox's system lane).
The interrupt is callweaver's barge-in: a new turn begins and ``Call.interrupt`` reaches
every actor at once; the sink reports it when the output actor handles the interrupt.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from importlib.metadata import version

from bench.framework.measure import FRAME_BYTES, SinkCallback
from callweaver.frames import Frame, OutputAudioFrame
from callweaver.pipelines.call import Call
from callweaver.pipelines.graph import Graph, Node
from callweaver.processors.passthrough import Identity, Passthrough
from callweaver.runtime.inbox import Inbox
from callweaver.runtime.processor import Processor

_PCM = bytes(FRAME_BYTES)
_RATE = 8000
PROFILES = ("actors", "fused")
IMPORT_MODULES: tuple[str, ...] = (
    "callweaver.pipelines.call",
    "callweaver.pipelines.graph",
    "callweaver.processors.passthrough",
    "callweaver.frames",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchAudio(OutputAudioFrame):
    """Reply audio tagged for the benchmark."""

    seq: int
    stamp: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchSystemAudio(Frame):
    """A system-lane frame carrying 320 bytes of audio."""

    system = True

    pcm: bytes
    seq: int
    stamp: float


class _Gate(Passthrough):
    """The last pass-through: holds data frames while closed, so a backlog piles up."""

    def __init__(self, params: object = None) -> None:
        super().__init__(params)
        self.open = asyncio.Event()
        self.open.set()

    async def process(self, frame: Frame) -> None:
        if not self.open.is_set() and isinstance(frame, BenchAudio):
            await self.open.wait()
        await self.emit(frame)


class BenchIO:
    """The call's transport: frames in from the driver, frames out to the sink callback."""

    def __init__(self, on_sink: SinkCallback) -> None:
        self.inbox = Inbox(1 << 30, "block")
        self.on_sink = on_sink
        self.started = asyncio.Event()

    async def frames(self) -> AsyncIterator[Frame]:
        inbox = self.inbox
        self.started.set()
        while True:
            frame = inbox.get_nowait()
            if frame is None:
                await inbox.waiter()
                continue
            yield frame

    async def write(self, frame: Frame) -> None:
        if isinstance(frame, BenchAudio):
            self.on_sink("data", frame.seq, frame.stamp)
        elif isinstance(frame, BenchSystemAudio):
            self.on_sink("system", frame.seq, frame.stamp)

    async def flush(self) -> None:
        self.on_sink("interrupt", -1, 0.0)


class CallweaverChain:
    def __init__(self, call: Call, io: BenchIO, task: asyncio.Task[object], gate: str) -> None:
        self.call, self.io, self.task, self.gate_name = call, io, task, gate

    @property
    def _gate(self) -> _Gate:
        processor = self.call.actors[self.gate_name].processor
        assert isinstance(processor, _Gate)
        return processor

    async def push_data(self, seq: int, stamp: float = 0.0) -> None:
        turn = self.call.ctx.turn_id
        frame = BenchAudio(pcm=_PCM, sample_rate=_RATE, turn_id=turn, seq=seq, stamp=stamp)
        self.io.inbox.put_nowait(frame)

    async def push_system(self, seq: int, stamp: float = 0.0) -> None:
        self.io.inbox.put_nowait(BenchSystemAudio(pcm=_PCM, seq=seq, stamp=stamp))

    async def interrupt(self) -> None:
        ctx = self.call.ctx
        ctx.interrupt(ctx.begin_turn())

    def block_tail(self) -> None:
        self._gate.open.clear()

    def release_tail(self) -> None:
        self._gate.open.set()

    def tail_backlog(self) -> int:
        actor = self.call.actors[self.gate_name]
        held = 1 if actor._current is not None else 0
        return held + len(actor.inbox)

    async def close(self) -> None:
        self.release_tail()
        self.call.cancel("benchmark done")
        await asyncio.wait_for(self.task, 30)


class CallweaverAdapter:
    def __init__(self, profile: str) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown callweaver profile {profile!r}; have {PROFILES}")
        self.profile = profile
        self.name = f"callweaver {version('callweaver')} ({profile})"
        self.import_modules: Sequence[str] = IMPORT_MODULES

    def graph(self, n: int) -> Graph:
        kind: type[Processor] = Identity if self.profile == "fused" else Passthrough
        nodes = [Node.of(f"p{i}", kind, overflow="block") for i in range(n - 1)]
        nodes.append(Node.of("gate", _Gate, overflow="block"))
        return Graph(nodes)

    async def build(self, n_processors: int, on_sink: SinkCallback) -> CallweaverChain:
        io = BenchIO(on_sink)
        call = Call(self.graph(n_processors))
        task = asyncio.create_task(call.run(io))
        await asyncio.wait_for(io.started.wait(), 30)
        await asyncio.sleep(0)
        return CallweaverChain(call, io, task, "gate")


def make_adapter(profile: str) -> CallweaverAdapter:
    return CallweaverAdapter(profile)
