import dataclasses

import pytest

from callweaver.frames import (
    CancelFrame,
    DTMFFrame,
    EndFrame,
    Frame,
    InputAudioFrame,
    InterruptFrame,
    OutputAudioFrame,
    ReplyTextFrame,
    StartFrame,
    TranscriptFrame,
)


def test_frames_are_immutable_and_slotted() -> None:
    f = TranscriptFrame(text="hi", call_id="c", turn_id=2, ts_ns=5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.text = "no"  # type: ignore[misc]
    assert not hasattr(f, "__dict__")
    g = dataclasses.replace(f, text="hello")
    assert (g.text, g.call_id, g.turn_id, g.ts_ns) == ("hello", "c", 2, 5)


def test_urgency_is_a_class_attribute() -> None:
    assert StartFrame.system and CancelFrame.system and InterruptFrame.system
    # End of stream drains in order behind data: it is control, not system.
    assert EndFrame.control and not EndFrame.system
    assert not TranscriptFrame.system and not Frame.system
    assert InputAudioFrame.lossy and not OutputAudioFrame.lossy
    assert OutputAudioFrame.interruptible and ReplyTextFrame.interruptible
    assert not InputAudioFrame.interruptible


def test_audio_duration() -> None:
    f = InputAudioFrame(pcm=bytes(320), sample_rate=8000)
    assert f.num_samples == 160
    assert f.duration_ns == 20_000_000


def test_dtmf_rejects_bad_digits() -> None:
    assert DTMFFrame(digit="#").digit == "#"
    with pytest.raises(ValueError, match="not a DTMF digit"):
        DTMFFrame(digit="x")


def test_frames_need_keywords() -> None:
    with pytest.raises(TypeError):
        TranscriptFrame("positional")  # type: ignore[misc]
