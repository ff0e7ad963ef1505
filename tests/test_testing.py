"""The public test harness: run_processor collects what a processor really emits."""

from typing import ClassVar

from callweaver.frames import DTMFFrame, Frame, ReplyTextFrame, TranscriptFrame
from callweaver.runtime.actor import Policy, Supervision
from callweaver.runtime.processor import Processor
from callweaver.testing import Failing, run_processor


class Splitter(Processor):
    ports: ClassVar[tuple[str, ...]] = ("text", "keys")

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, DTMFFrame):
            await self.emit(frame, "keys")
            await self.emit_upstream(ReplyTextFrame(text=f"pressed {frame.digit}"))
            if frame.digit == "#":
                self.ctx.end("caller pressed #")
        else:
            await self.emit(frame, "text")


async def test_run_processor_collects_ports_in_emission_order_and_upstream() -> None:
    frames = [TranscriptFrame(text="a"), DTMFFrame(digit="1"), TranscriptFrame(text="b"),
              DTMFFrame(digit="#")]  # fmt: skip
    run = await run_processor(Splitter(), frames)
    downstream, upstream = run
    assert downstream == frames
    assert run.ports["text"] == [frames[0], frames[2]]
    assert run.ports["keys"] == [frames[1], frames[3]]
    assert [f.text for f in upstream] == ["pressed 1", "pressed #"]  # type: ignore[attr-defined]
    assert run.ended == ["caller pressed #"]


async def test_run_processor_applies_the_supervision_policy() -> None:
    bad = Failing(lambda f: getattr(f, "text", "") == "x")
    run = await run_processor(
        bad,
        [TranscriptFrame(text="x"), TranscriptFrame(text="y")],
        supervision=Supervision(Policy.SKIP),
    )
    assert [f.text for f in run.downstream] == ["x", "y"]  # type: ignore[attr-defined]
    assert run.ctx is not None and [e.policy for e in run.ctx.errors] == ["skip"]
