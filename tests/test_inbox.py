import asyncio

import pytest

from callweaver.frames import EndFrame, InputAudioFrame, InterruptFrame, OutputAudioFrame
from callweaver.runtime.inbox import Inbox


def audio_in(i: int) -> InputAudioFrame:
    return InputAudioFrame(pcm=bytes(320), sample_rate=8000, pts_ns=i)


def audio_out(turn: int, i: int = 0) -> OutputAudioFrame:
    return OutputAudioFrame(pcm=bytes(320), sample_rate=8000, turn_id=turn, pts_ns=i)


def test_system_lane_overtakes_data() -> None:
    box = Inbox(8)
    for i in range(3):
        assert box.put_nowait(audio_in(i))
    box.put_nowait(InterruptFrame(turn_id=1))
    assert isinstance(box.get_nowait(), InterruptFrame)
    assert [box.get_nowait().pts_ns for _ in range(3)] == [0, 1, 2]  # type: ignore[union-attr]
    assert box.get_nowait() is None


def test_lossy_overflow_drops_oldest_and_counts() -> None:
    box = Inbox(3)
    for i in range(5):
        assert box.put_nowait(audio_in(i))
    assert box.dropped_overflow == 2
    assert [box.get_nowait().pts_ns for _ in range(3)] == [2, 3, 4]  # type: ignore[union-attr]


def test_lossy_frame_dropped_when_head_is_not_lossy() -> None:
    box = Inbox(1)
    box.put_nowait(audio_out(0))
    assert box.put_nowait(audio_in(1))  # accepted, but dropped: it never blocks the sender
    assert box.dropped_overflow == 1
    assert isinstance(box.get_nowait(), OutputAudioFrame)


def test_non_lossy_frames_are_refused_not_dropped() -> None:
    box = Inbox(2)
    assert box.put_nowait(audio_out(0, 0))
    assert box.put_nowait(audio_out(0, 1))
    assert not box.put_nowait(audio_out(0, 2))
    assert not box.put_nowait(EndFrame())
    assert box.dropped_overflow == 0
    # block mode applies backpressure to lossy frames too
    strict = Inbox(1, "block")
    assert strict.put_nowait(audio_in(0))
    assert not strict.put_nowait(audio_in(1))


async def test_put_waits_for_room() -> None:
    box = Inbox(1)
    box.put_nowait(audio_out(0, 0))
    sender = asyncio.create_task(box.put(audio_out(0, 1)))
    await asyncio.sleep(0)
    assert not sender.done()
    assert box.get_nowait().pts_ns == 0  # type: ignore[union-attr]
    await asyncio.wait_for(sender, 1)
    assert box.get_nowait().pts_ns == 1  # type: ignore[union-attr]


def test_purge_drops_stale_reply_frames_and_refuses_later_ones() -> None:
    box = Inbox(16)
    box.put_nowait(audio_in(0))
    box.put_nowait(audio_out(1))
    box.put_nowait(audio_out(2))
    box.put_nowait(EndFrame())
    assert box.purge(2) == 1
    assert box.put_nowait(audio_out(1))  # accepted and discarded as stale
    assert box.dropped_stale == 1
    kinds = []
    while (f := box.get_nowait()) is not None:
        kinds.append((type(f).__name__, f.turn_id))
    assert kinds == [("InputAudioFrame", 0), ("OutputAudioFrame", 2), ("EndFrame", 0)]


async def test_wait_returns_when_a_frame_arrives() -> None:
    box = Inbox(4)
    waiter = asyncio.create_task(box.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    box.put_nowait(audio_in(0))
    await asyncio.wait_for(waiter, 1)


def test_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Inbox(0)
