"""Smart end of turn: the smart-turn model on real speech, alone and inside the VAD."""

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bench import vad_accuracy as va
from callweaver.audio.resample import resample
from callweaver.frames import (
    EndOfTurnFrame,
    InputAudioFrame,
    MetricsFrame,
    SpeechStartedFrame,
    SpeechStoppedFrame,
)
from callweaver.processors.silero_vad import SileroVAD, SileroVADParams
from callweaver.processors.vad import TurnParams
from callweaver.resources import smart_turn
from callweaver.testing import Run, run_processor
from callweaver.transports.wav import read_wav

ROOT = Path(__file__).parent.parent
RATE = 16000
# examples/audio/caller.wav: "Hello, I would like to book a table for two people tonight."
# ends at 3.70 s; 1.24 s is a gap between two of its words, mid-sentence.
SENTENCE_END_S = 3.70
MID_SENTENCE_S = 1.24


def caller(rate: int = RATE) -> np.ndarray:
    pcm = read_wav(ROOT / "examples" / "audio" / "caller.wav")
    data = pcm.data if rate == pcm.sample_rate else resample(pcm.data, pcm.sample_rate, rate)
    return np.frombuffer(data, dtype="<i2")


def two_cities() -> np.ndarray:
    """A human reading of the first sentence of A Tale of Two Cities (one long sentence)."""
    recordings = va.recordings()
    assert "human (two_cities.wav)" in recordings, "make test installs moonshine-voice"
    pcm = read_wav(recordings["human (two_cities.wav)"])
    return np.frombuffer(resample(pcm.data, pcm.sample_rate, RATE), dtype="<i2")


def floats(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32) / 32768


def until(x: np.ndarray, seconds: float, silence_s: float = 0.2) -> np.ndarray:
    """``x`` up to ``seconds``, then ``silence_s`` of silence: a pause as the model hears it."""
    head = floats(x[: round(seconds * RATE)])
    return np.concatenate([head, np.zeros(round(silence_s * RATE), np.float32)])


def pipecat_features() -> Callable[[np.ndarray], np.ndarray]:
    """pipecat's own Whisper features, loaded from its file without importing pipecat."""
    path = smart_turn.default_model_path().parent.parent / "_whisper_features.py"
    spec = importlib.util.spec_from_file_location("pipecat_whisper_features", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compute_whisper_log_mel_features  # type: ignore[no-any-return]


# -- the model alone ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: floats(caller()[: 3 * RATE]),  # shorter than the window: padded in front
        lambda: floats(caller()),
        lambda: floats(two_cities()[: 12 * RATE]),  # longer: its last 8 s
        lambda: np.zeros(RATE, np.float32),
        lambda: np.random.default_rng(3).standard_normal(5 * RATE).astype(np.float32) * 0.05,
    ],
    ids=["short speech", "speech", "long speech", "silence", "noise"],
)
def test_features_match_pipecats_whisper_features(make: Callable[[], np.ndarray]) -> None:
    audio = make()
    ours = smart_turn.log_mel(audio)
    theirs = pipecat_features()(smart_turn.fit_window(audio))
    assert ours.shape == theirs.shape == (80, 800)
    assert ours.dtype == np.float32
    assert np.max(np.abs(ours - theirs)) < 1e-5


def test_the_window_is_the_last_8_s_with_padding_in_front() -> None:
    short = np.ones(RATE, np.float32)
    window = smart_turn.fit_window(short)
    assert window.shape == (8 * RATE,)
    assert not window[: 7 * RATE].any() and window[7 * RATE :].all()
    ramp = np.arange(10 * RATE, dtype=np.float32)
    np.testing.assert_array_equal(smart_turn.fit_window(ramp), ramp[2 * RATE :])


def test_finished_sentences_are_heard_as_finished() -> None:
    model = smart_turn.shared_model()
    assert model.probability_now(until(caller(), SENTENCE_END_S)) > 0.7  # espeak
    human = two_cities()
    assert model.probability_now(until(human, 41.73)) > 0.7  # the end of the sentence


def test_sentences_cut_short_are_heard_as_unfinished() -> None:
    model = smart_turn.shared_model()
    for cut in (MID_SENTENCE_S, 1.34):  # "Hello, I would ... like to book a table ..."
        assert model.probability_now(until(caller(), cut)) < 0.3, cut
    human = two_cities()
    for pause in (14.82, 18.75):  # pauses between the clauses of Dickens's long sentence
        assert model.probability_now(until(human, pause)[-8 * RATE :]) < 0.3, pause


async def test_decisions_run_off_the_event_loop_on_one_shared_model() -> None:
    model = smart_turn.shared_model()
    assert model is smart_turn.shared_model()
    before = model.decisions
    prob = await model.probability(until(caller(), SENTENCE_END_S))
    assert prob > 0.7 and model.decisions == before + 1


def test_missing_model_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def without_pipecat(name: str, package: str | None = None):  # type: ignore[no-untyped-def]
        return None if name == "pipecat" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_pipecat)
    with pytest.raises(smart_turn.SmartTurnUnavailable, match=r"callweaver\[turn\]"):
        smart_turn.default_model_path()
    with pytest.raises(ValueError, match=r"callweaver\[turn\]"):
        TurnParams(end_of_turn="smart_turn")
    TurnParams()  # the silence endpoint needs nothing


def test_max_stop_cannot_undercut_stop() -> None:
    with pytest.raises(ValueError, match="max_stop_ms must be at least stop_ms"):
        TurnParams(end_of_turn="smart_turn", stop_ms=500, max_stop_ms=400)


# -- inside the VAD -------------------------------------------------------------------------


def with_pause(rate: int, pause_s: float, tail_s: float = 4.0) -> np.ndarray:
    """The caller's first sentence with a pause inserted mid-sentence, then silence."""
    x = caller(rate)
    cut, end = round(MID_SENTENCE_S * rate), round(SENTENCE_END_S * rate)
    pause, tail = (
        np.zeros(round(pause_s * rate), np.int16),
        np.zeros(round(tail_s * rate), np.int16),
    )
    return np.concatenate([x[:cut], pause, x[cut:end], tail])


async def detect(
    end_of_turn: str, rate: int, audio: np.ndarray, **params: int
) -> tuple[SileroVAD, Run]:
    vad = SileroVAD(SileroVADParams(barge_in=False, end_of_turn=end_of_turn, **params))  # type: ignore[arg-type]
    return vad, await run_processor(vad, va.chunks(audio, rate))


def stops(run: Run) -> list[float]:
    return [f.pts_ns / 1e9 for f in run.downstream if isinstance(f, SpeechStoppedFrame)]


def heard_at_endpoint(run: Run) -> list[float]:
    """For each endpoint: how much audio (s) the VAD had received when it decided."""
    heard, out = 0, []
    for f in run.downstream:
        if isinstance(f, InputAudioFrame):
            heard = f.pts_ns + f.duration_ns
        elif isinstance(f, EndOfTurnFrame):
            out.append(heard / 1e9)
    return out


async def test_silence_ends_the_turn_at_a_mid_sentence_pause() -> None:
    _, run = await detect("silence", RATE, with_pause(RATE, 0.8))
    assert len(stops(run)) == 2  # the caller was cut off at the pause
    assert stops(run)[0] == pytest.approx(MID_SENTENCE_S, abs=0.05)


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
async def test_smart_turn_keeps_the_turn_open_through_a_mid_sentence_pause(rate: int) -> None:
    _, run = await detect("smart_turn", rate, with_pause(rate, 0.8))
    events = [f for f in run.downstream if isinstance(f, SpeechStartedFrame | SpeechStoppedFrame)]
    assert [type(f) for f in events] == [SpeechStartedFrame, SpeechStoppedFrame]  # one turn
    assert stops(run)[0] == pytest.approx(SENTENCE_END_S + 0.8, abs=0.05)
    # asked at the pause (unfinished) and at the end (finished), which ended the turn at once
    metrics = [f for f in run.downstream if isinstance(f, MetricsFrame)]
    probabilities = [f.value for f in metrics if f.name == "smart_turn_probability"]
    assert len(probabilities) == 2
    assert probabilities[0] < 0.5 < probabilities[1]  # unfinished, then finished
    assert [f.node for f in metrics] == ["under_test"] * 4
    assert all(f.value > 0 for f in metrics if f.name == "smart_turn_ms")
    assert heard_at_endpoint(run)[0] - stops(run)[0] < 0.3  # stop_ms, then the model's answer
    assert run.ctx is not None
    (turn,) = run.ctx.latency.turns
    assert {"speech_end", "endpoint"} <= {s.value for s in turn.marks}


async def test_a_turn_the_model_calls_unfinished_ends_after_max_stop_ms() -> None:
    x = caller()
    audio = np.concatenate([x[: round(MID_SENTENCE_S * RATE)], np.zeros(3 * RATE, np.int16)])
    _, run = await detect("smart_turn", RATE, audio, max_stop_ms=1000)
    assert len(stops(run)) == 1
    waited = heard_at_endpoint(run)[0] - stops(run)[0]
    assert 1.0 <= waited < 1.1  # the model said unfinished; silence alone ended it later


async def test_a_caller_cut_off_who_goes_on_is_heard_as_one_sentence() -> None:
    # a threshold this low makes the model end the turn at the mid-sentence pause; the caller
    # goes on within max_stop_ms, so the model hears the new turn with the one before it
    vad = SileroVAD(
        SileroVADParams(barge_in=False, end_of_turn="smart_turn", smart_turn_threshold=0.01)
    )
    run = await run_processor(vad, va.chunks(with_pause(RATE, 0.8), RATE))
    assert len(stops(run)) == 2
    assert stops(run)[0] == pytest.approx(MID_SENTENCE_S, abs=0.05)
    first, last = vad.decisions
    assert (first.turn_id, first.complete, last.turn_id, last.complete) == (1, True, 2, True)
    assert first.heard_ms / 1000 == pytest.approx(MID_SENTENCE_S + 0.22, abs=0.05)
    end_s = last.pause_pts / 1e9 + last.silence_ms / 1000
    assert last.heard_ms / 1000 == pytest.approx(end_s, abs=0.05)  # from the call's start
