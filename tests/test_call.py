"""Calls end to end: lifecycle, draining, cancelling, supervision, interrupts, topologies."""

import asyncio
from typing import ClassVar

import pytest

from callweaver.errors import GraphError
from callweaver.frames import (
    DTMFFrame,
    EndFrame,
    Frame,
    InputAudioFrame,
    OutputAudioFrame,
    ReplyTextFrame,
    TranscriptFrame,
)
from callweaver.pipelines.call import Call, CallState
from callweaver.pipelines.graph import Edge, Graph, Node
from callweaver.processors.passthrough import Passthrough
from callweaver.runtime.actor import Policy, Supervision
from callweaver.runtime.clock import VirtualClock
from callweaver.runtime.processor import Processor, Transform
from callweaver.testing import Failing, ListIO, Slow


def texts(n: int, turn: int = 0) -> list[Frame]:
    return [TranscriptFrame(text=str(i), turn_id=turn) for i in range(n)]


def node(name: str, factory: type[Processor] | object, **kw: object) -> Node:
    if isinstance(factory, type):
        return Node.of(name, factory, **kw)  # type: ignore[arg-type]
    return Node(name, lambda: factory, ports=type(factory).ports, **kw)  # type: ignore[arg-type]


async def test_linear_call_delivers_everything_in_order_and_ends() -> None:
    graph = Graph([Node.of(f"n{i}", Passthrough) for i in range(5)])
    io = ListIO(texts(100))
    call = Call(graph)
    assert call.state is CallState.CREATED
    report = await call.run(io)
    assert call.state is CallState.ENDED
    assert report.reason == "hangup"
    assert [f.text for f in io.written] == [str(i) for i in range(100)]  # type: ignore[attr-defined]
    assert report.errors == []


async def test_no_task_outlives_its_call() -> None:
    before = set(asyncio.all_tasks())
    graph = Graph([Node.of(f"n{i}", Passthrough) for i in range(10)])
    for _ in range(3):
        await Call(graph).run(ListIO(texts(10)))
    # a cancelled call, and a call whose processor keeps failing, leave nothing behind either
    clock = VirtualClock()
    call = Call(Graph([node("slow", Slow(60.0))]), clock=clock)
    running = asyncio.create_task(call.run(ListIO(texts(3))))
    await asyncio.sleep(0.01)
    call.cancel("test")
    assert (await running).reason == "test"
    failing = Graph([node("bad", Failing(lambda f: True), supervision=Supervision(Policy.SKIP))])
    await Call(failing).run(ListIO(texts(3)))
    await asyncio.sleep(0)
    assert set(asyncio.all_tasks()) - before == set()


async def test_end_drains_queued_frames_in_order() -> None:
    clock = VirtualClock()
    slow = Slow(0.5)
    io = ListIO(texts(5), hold_open=asyncio.Event())
    call = Call(Graph([node("slow", slow)]), clock=clock)
    running = asyncio.create_task(call.run(io))
    await asyncio.sleep(0.01)
    assert call.state is CallState.RUNNING
    call.end("shutdown")
    await asyncio.sleep(0)
    assert call.state is CallState.DRAINING
    while not running.done():
        await clock.advance(0.5)
    report = running.result()
    assert report.reason == "shutdown"
    assert [f.text for f in io.written] == ["0", "1", "2", "3", "4"]  # type: ignore[attr-defined]


async def test_cancel_stops_at_once_and_closes_processors() -> None:
    closed: list[str] = []

    class Tracked(Slow):
        async def close(self) -> None:
            closed.append(self.name)

    clock = VirtualClock()
    call = Call(Graph([node("a", Tracked(10.0)), node("b", Tracked(10.0))]), clock=clock)
    io = ListIO(texts(50))
    running = asyncio.create_task(call.run(io))
    await asyncio.sleep(0.01)
    call.cancel("caller gone")
    report = await asyncio.wait_for(running, 1)
    assert report.reason == "caller gone"
    assert io.written == []
    assert sorted(closed) == ["a", "b"]


async def test_external_cancellation_propagates() -> None:
    call = Call(Graph([node("slow", Slow(60.0))]))
    running = asyncio.create_task(call.run(ListIO(texts(2))))
    await asyncio.sleep(0.01)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


async def test_restart_policy_replaces_the_processor_and_drops_only_the_bad_frame() -> None:
    made: list[Failing] = []

    def factory() -> Failing:
        made.append(Failing(lambda f: getattr(f, "text", "") == "3"))
        return made[-1]

    graph = Graph([Node("flaky", factory)])
    io = ListIO(texts(6))
    report = await Call(graph).run(io)
    assert [f.text for f in io.written] == ["0", "1", "2", "4", "5"]  # type: ignore[attr-defined]
    assert len(made) == 2
    assert [(e.node, e.policy) for e in report.errors] == [("flaky", "restart")]
    assert report.reason == "hangup"


async def test_restart_limit_ends_the_call() -> None:
    graph = Graph(
        [
            Node(
                "broken",
                lambda: Failing(lambda f: True),
                supervision=Supervision(Policy.RESTART, max_restarts=2),
            )
        ]
    )
    io = ListIO(texts(10), hold_open=asyncio.Event())
    report = await asyncio.wait_for(Call(graph).run(io), 2)
    assert report.reason == "error"
    assert [e.policy for e in report.errors] == [
        "restart",
        "restart",
        "restart limit reached: end_call",
    ]


async def test_skip_policy_turns_the_node_into_a_passthrough() -> None:
    graph = Graph(
        [Node("opt", lambda: Failing(lambda f: True), supervision=Supervision(Policy.SKIP))]
    )
    io = ListIO(texts(4))
    report = await Call(graph).run(io)
    assert [f.text for f in io.written] == ["0", "1", "2", "3"]  # type: ignore[attr-defined]
    assert len(report.errors) == 1


async def test_end_call_policy_drains_and_keeps_other_actors_untouched() -> None:
    seen: list[str] = []

    class Watch(Processor):
        async def process(self, frame: Frame) -> None:
            seen.append(frame.text)  # type: ignore[attr-defined]
            await self.emit(frame)

    graph = Graph(
        [
            Node("watch", Watch),
            Node(
                "fatal",
                lambda: Failing(lambda f: getattr(f, "text", "") == "1"),
                supervision=Supervision(Policy.END_CALL),
            ),
        ]
    )
    io = ListIO(texts(3), hold_open=asyncio.Event())
    report = await asyncio.wait_for(Call(graph).run(io), 2)
    assert report.reason == "error"
    assert "1" in [f.text for f in io.written]  # type: ignore[attr-defined]
    assert seen[:2] == ["0", "1"]


class Reply(Processor):
    """For every transcript, emits N reply chunks slowly (the work an interrupt must stop)."""

    chunks = 5

    def __init__(self, clock_delay: float = 0.1) -> None:
        super().__init__()
        self.delay_ns = int(clock_delay * 1e9)
        self.cancelled = 0
        self.interrupts = 0

    async def process(self, frame: Frame) -> None:
        if not isinstance(frame, TranscriptFrame):
            await self.emit(frame)
            return
        try:
            for i in range(self.chunks):
                await self.ctx.clock.sleep_until(self.ctx.now_ns() + self.delay_ns)
                await self.emit(ReplyTextFrame(text=f"{frame.text}:{i}", turn_id=frame.turn_id))
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def on_interrupt(self, frame: Frame) -> None:  # type: ignore[override]
        self.interrupts += 1


async def test_interrupt_cancels_work_in_flight_and_no_stale_frame_reaches_output() -> None:
    clock = VirtualClock()
    reply = Reply()
    gate = asyncio.Event()
    io = ListIO([TranscriptFrame(text="t1", turn_id=1)], hold_open=gate)
    call = Call(Graph([node("reply", reply), Node.of("relay", Passthrough)]), clock=clock)
    running = asyncio.create_task(call.run(io))
    await clock.advance(0.25)  # two chunks of turn 1 are out
    assert [f.text for f in io.written] == ["t1:0", "t1:1"]  # type: ignore[attr-defined]
    call.ctx.begin_turn()
    call.ctx.begin_turn()
    call.interrupt(2)
    await clock.advance(1.0)
    assert reply.cancelled == 1
    assert reply.interrupts == 1
    assert io.flushes == 1
    # the actor survived the interrupt: a new turn's transcript is still answered
    call.actors["reply"].inbox.put_nowait(TranscriptFrame(text="t2", turn_id=2))
    await clock.advance(1.0)
    gate.set()
    await clock.advance(0.1)
    await running
    assert [f.text for f in io.written] == [  # type: ignore[attr-defined]
        "t1:0",
        "t1:1",
        "t2:0",
        "t2:1",
        "t2:2",
        "t2:3",
        "t2:4",
    ]


async def test_interrupt_overtakes_300_queued_frames_and_purges_them() -> None:
    clock = VirtualClock()
    stuck = Slow(10.0)
    io = ListIO(hold_open=asyncio.Event())
    call = Call(Graph([node("tail", stuck, inbox_capacity=512)]), clock=clock)
    running = asyncio.create_task(call.run(io))
    await asyncio.sleep(0)
    inbox = call.actors["tail"].inbox
    for i in range(300):
        inbox.put_nowait(OutputAudioFrame(pcm=bytes(320), sample_rate=8000, turn_id=1, pts_ns=i))
    await asyncio.sleep(0)
    call.interrupt(2)
    assert len(inbox) == 1  # only the interrupt is left
    assert inbox.purged == 299  # one was already in flight (and got cancelled)
    io.hold_open.set()  # type: ignore[union-attr]
    await clock.advance(20)
    await running
    assert io.written == []


async def test_stale_frames_emitted_after_an_interrupt_are_refused() -> None:
    class Late(Processor):
        async def process(self, frame: Frame) -> None:
            self.ctx.interrupt(5)
            await self.emit(ReplyTextFrame(text="stale", turn_id=4))
            await self.emit(ReplyTextFrame(text="fresh", turn_id=5))

    io = ListIO(texts(1))
    report = await Call(Graph([Node.of("late", Late), Node.of("relay", Passthrough)])).run(io)
    assert [f.text for f in io.written] == ["fresh"]  # type: ignore[attr-defined]
    assert report.nodes["relay"].dropped_stale == 1


class Router(Processor):
    """A branch: transcripts to ``text``, everything else to ``other``."""

    ports: ClassVar[tuple[str, ...]] = ("text", "other")

    async def process(self, frame: Frame) -> None:
        await self.emit(frame, "text" if isinstance(frame, TranscriptFrame) else "other")


class Tag(Transform):
    def transform(self, frame: Frame) -> Frame | None:
        if isinstance(frame, TranscriptFrame):
            return TranscriptFrame(text=frame.text + "!", turn_id=frame.turn_id)
        return frame


async def test_branch_fan_out_and_fan_in() -> None:
    nodes = [
        Node.of("route", Router),
        Node.of("a", Passthrough),
        Node.of("b", Passthrough),
        Node.of("tag", Tag, fuse=False),
        Node.of("join", Passthrough),
    ]
    edges = [
        Edge.parse(e)
        for e in [
            "input -> route",
            "route.text -> a",
            "route.text -> b",  # fan-out
            "route.other -> tag",
            "a -> join",
            "b -> join",
            "tag -> join",  # fan-in of three
            "join -> output",
        ]
    ]
    io = ListIO([TranscriptFrame(text="x"), DTMFFrame(digit="5")])
    report = await Call(Graph(nodes, edges)).run(io)
    got = sorted(type(f).__name__ + getattr(f, "text", getattr(f, "digit", "")) for f in io.written)
    assert got == ["DTMFFrame5", "TranscriptFramex", "TranscriptFramex"]
    assert report.reason == "hangup"


async def test_transforms_fuse_into_their_upstream_actor() -> None:
    graph = Graph([Node.of("p", Passthrough), *(Node.of(f"t{i}", Tag) for i in range(3))])
    assert graph.fused == {"t0", "t1", "t2"}
    call = Call(graph)
    io = ListIO(texts(2))
    await call.run(io)
    assert set(call.actors) == {"p", "output"}
    assert [f.text for f in io.written] == ["0!!!", "1!!!"]  # type: ignore[attr-defined]
    # a transform with two inputs cannot be fused
    two_in = Graph(
        [Node.of("r", Router), Node.of("t", Tag)],
        [Edge.parse(e) for e in ["input -> r", "r.text -> t", "r.other -> t", "t -> output"]],
    )
    assert two_in.fused == frozenset()


async def test_fused_transform_failure_follows_its_own_policy() -> None:
    class Boom(Transform):
        def transform(self, frame: Frame) -> Frame | None:
            raise ValueError("boom")

    graph = Graph(
        [Node.of("p", Passthrough), Node.of("boom", Boom, supervision=Supervision(Policy.SKIP))]
    )
    assert graph.fused == {"boom"}
    io = ListIO(texts(3))
    report = await Call(graph).run(io)
    assert [f.text for f in io.written] == ["0", "1", "2"]  # type: ignore[attr-defined]
    assert [(e.node, e.policy) for e in report.errors] == [("boom", "skip")]


async def test_backpressure_slows_the_sender_and_loses_nothing() -> None:
    clock = VirtualClock()
    graph = Graph([Node("slow", lambda: Slow(0.01), inbox_capacity=2)])
    io = ListIO(texts(20))
    call = Call(graph, clock=clock)
    running = asyncio.create_task(call.run(io))
    for _ in range(40):
        await clock.advance(0.01)
        assert len(call.actors["slow"].inbox) <= 2
    await running
    assert len(io.written) == 20


async def test_real_time_audio_is_dropped_when_a_stage_falls_behind() -> None:
    clock = VirtualClock()
    audio = [InputAudioFrame(pcm=bytes(320), sample_rate=8000, pts_ns=i) for i in range(50)]
    graph = Graph([Node("slow", lambda: Slow(0.1), inbox_capacity=4)])
    io = ListIO(audio, clock=clock, interval_s=0.02)
    call = Call(graph, clock=clock)
    running = asyncio.create_task(call.run(io))
    while not running.done():
        await clock.advance(0.02)
    report = running.result()
    dropped = report.nodes["slow"].dropped_overflow
    assert dropped > 0
    assert len(io.written) + dropped == 50
    # the freshest audio survives: the last frame sent is the last one written
    assert io.written[-1].pts_ns == 49  # type: ignore[attr-defined]
    # lossless mode (files read as fast as possible) keeps everything
    clock2 = VirtualClock()
    io2 = ListIO(audio)
    running = asyncio.create_task(Call(graph, clock=clock2, lossless=True).run(io2))
    while not running.done():
        await clock2.advance(0.1)
    assert len(io2.written) == 50


def test_graph_rejects_what_cannot_drain() -> None:
    with pytest.raises(GraphError, match="cycle"):
        Graph(
            [Node.of("a", Passthrough), Node.of("b", Passthrough)],
            [Edge.parse(e) for e in ["input -> a", "a -> b", "b -> a", "a -> output"]],
        )
    with pytest.raises(GraphError, match="not reachable from input"):
        Graph(
            [Node.of("a", Passthrough), Node.of("b", Passthrough)],
            [Edge.parse(e) for e in ["input -> a", "a -> output", "b -> output"]],
        )
    with pytest.raises(GraphError, match="leads nowhere"):
        Graph(
            [Node.of("r", Router)],
            [Edge.parse(e) for e in ["input -> r", "r.text -> output"]],
        )


async def test_end_frame_reaches_output_once_per_edge() -> None:
    ends: list[Frame] = []

    class CountEnds(ListIO):
        async def write(self, frame: Frame) -> None:
            if isinstance(frame, EndFrame):
                ends.append(frame)
            await super().write(frame)

    graph = Graph([Node.of("a", Passthrough)])
    await Call(graph).run(CountEnds(texts(1)))
    assert ends == []  # end of stream stops the output actor; it is not written to the peer


async def test_failing_hooks_never_crash_the_call_or_block_draining() -> None:
    class BadStart(Passthrough):
        async def start(self, frame: Frame) -> None:  # type: ignore[override]
            raise OSError("provider unreachable")

    class BadEnd(Passthrough):
        async def on_end(self, frame: EndFrame) -> None:
            raise RuntimeError("flush failed")

        async def close(self) -> None:
            raise RuntimeError("close failed")

    graph = Graph(
        [
            Node.of("starts_badly", BadStart, supervision=Supervision(Policy.SKIP)),
            Node.of("ends_badly", BadEnd),
        ]
    )
    io = ListIO(texts(3))
    report = await asyncio.wait_for(Call(graph).run(io), 2)
    assert report.reason == "hangup"
    assert [f.text for f in io.written] == ["0", "1", "2"]  # type: ignore[attr-defined]
    assert [(e.node, e.policy) for e in report.errors] == [
        ("starts_badly", "skip"),
        ("ends_badly", "on_end failed"),
        ("ends_badly", "close failed"),
    ]


async def test_a_processor_that_cannot_restart_ends_the_call() -> None:
    attempts = []

    class NeverStarts(Passthrough):
        async def start(self, frame: Frame) -> None:  # type: ignore[override]
            attempts.append(1)
            raise OSError("no model")

    io = ListIO(texts(2), hold_open=asyncio.Event())
    report = await asyncio.wait_for(Call(Graph([Node.of("m", NeverStarts)])).run(io), 2)
    assert report.reason == "error"
    assert [e.policy for e in report.errors] == ["restart", "restart failed: end_call"]
    assert [f.text for f in io.written] == ["0", "1"]  # type: ignore[attr-defined]


async def test_ending_early_closes_the_transport_stream_inside_the_call() -> None:
    closed: list[bool] = []

    class Endless(ListIO):
        async def frames(self):  # type: ignore[no-untyped-def,override]
            try:
                i = 0
                while True:
                    yield TranscriptFrame(text=str(i))
                    i += 1
                    await asyncio.sleep(0)
            finally:
                closed.append(True)

    call = Call(Graph([Node.of("p", Passthrough)]))
    io = Endless()
    running = asyncio.create_task(call.run(io))
    await asyncio.sleep(0.01)
    call.end("shutdown")
    report = await asyncio.wait_for(running, 2)
    assert report.reason == "shutdown"
    assert closed == [True]  # closed before run() returned, not later by the loop
    assert len(io.written) > 0


async def test_a_call_cancelled_before_it_starts_does_nothing() -> None:
    call = Call(Graph([Node.of("p", Passthrough)]))
    call.cancel("never mind")
    io = ListIO(texts(3))
    report = await call.run(io)
    assert report.reason == "never mind"
    assert io.written == []
    assert call.state is CallState.ENDED


async def test_a_drain_that_takes_too_long_is_cut_short() -> None:
    closed: list[bool] = []

    class Stuck(Slow):
        async def close(self) -> None:
            closed.append(True)

    clock = VirtualClock()  # never advanced: the slow stage never finishes by itself
    call = Call(Graph([node("stuck", Stuck(1.0))]), clock=clock, drain_timeout_s=0.05)
    report = await asyncio.wait_for(call.run(ListIO(texts(3))), 2)
    assert report.reason == "hangup; drain timed out after 0.05 s"
    assert closed == [True]
    assert call.state is CallState.ENDED


class Breaking(ListIO):
    """Yields its frames, then fails the way a transport does."""

    def __init__(self, frames: list[Frame], exc: Exception) -> None:
        super().__init__(frames)
        self.exc = exc

    async def frames(self):  # type: ignore[no-untyped-def,override]
        async for frame in super().frames():
            yield frame
        raise self.exc


async def test_the_peer_going_away_is_a_hangup_and_what_was_queued_drains() -> None:
    from callweaver.errors import PeerGone

    io = Breaking(texts(3), PeerGone("websocket closed"))
    report = await Call(Graph([Node.of("p", Passthrough)])).run(io)
    assert report.reason == "hangup"
    assert report.errors == []
    assert len(io.written) == 3


async def test_a_broken_transport_ends_its_call_as_an_error_without_raising() -> None:
    io = Breaking(texts(2), ValueError("garbled frame"))
    report = await Call(Graph([Node.of("p", Passthrough)])).run(io)
    assert report.reason == "error"
    assert [(e.node, e.policy) for e in report.errors] == [("input", "end_call")]
    assert len(io.written) == 2


async def test_hang_up_while_the_bot_speaks_ends_the_call_quietly() -> None:
    from callweaver.errors import PeerGone

    class HungUp(ListIO):
        async def write(self, frame: Frame) -> None:
            raise PeerGone("socket closed")

    io = HungUp(texts(2), hold_open=asyncio.Event())
    report = await asyncio.wait_for(Call(Graph([Node.of("p", Passthrough)])).run(io), 2)
    assert report.reason == "hangup"
    assert report.errors == []
