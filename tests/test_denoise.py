"""The denoise node: RNNoise and WebRTC noise suppression on real speech and real noise."""

import asyncio
import math
import re
import sys
import textwrap
import threading

import numpy as np
import pytest
from pydantic import ValidationError

from bench import denoise_eval
from bench import vad_accuracy as va
from callweaver.audio.levels import level_dbfs
from callweaver.audio.resample import resample
from callweaver.errors import ConfigError
from callweaver.frames import (
    DTMFFrame,
    Frame,
    InputAudioFrame,
    OutputAudioFrame,
    SpeechStartedFrame,
    SpeechStoppedFrame,
    TranscriptFrame,
)
from callweaver.pipelines.call import Call
from callweaver.pipelines.config import parse_config
from callweaver.pipelines.graph import Graph, Node
from callweaver.pipelines.registry import BUILTINS, ParamsError, Registry
from callweaver.processors.denoise import Denoise, DenoiseParams, DenoiseUnavailable, _Serial
from callweaver.processors.silero_vad import SileroVAD, SileroVADParams
from callweaver.testing import ListIO, run_processor
from callweaver.transports.wav import read_wav

BACKENDS = ["webrtc", "rnnoise"]
RATES = [8000, 16000, 48000]
CALLER = va.ROOT / "examples" / "audio" / "caller.wav"


def speech(rate: int) -> np.ndarray:
    pcm = read_wav(CALLER)
    return np.frombuffer(resample(pcm.data, pcm.sample_rate, rate), dtype="<i2")


def noise(rate: int, seconds: float = 3.0, dbfs: float = -35.0) -> np.ndarray:
    white = np.random.default_rng(3).standard_normal(int(rate * seconds))
    pink = np.convolve(white, np.ones(8) / 8, mode="same")  # as vad_accuracy.mix_noise
    return (pink / math.sqrt(np.mean(pink * pink)) * 32768 * 10 ** (dbfs / 20)).astype(np.int16)


def joined(frames: list[Frame]) -> np.ndarray:
    pcm = b"".join(f.pcm for f in frames if isinstance(f, InputAudioFrame))
    return np.frombuffer(pcm, dtype="<i2")


async def denoise(backend: str, samples: np.ndarray, rate: int, **options: object) -> np.ndarray:
    node = Denoise(DenoiseParams(backend=backend, **options))  # type: ignore[arg-type]
    run = await run_processor(node, va.chunks(samples, rate))
    return joined(run.downstream)


def correlation(a: np.ndarray, b: np.ndarray, lag: int) -> float:
    """Correlation of a[k] with b[k + lag], away from the ends."""
    n = min(a.size, b.size) - 4000
    x = a[2000 : 2000 + n].astype(np.float64)
    y = b[2000 + lag : 2000 + lag + n].astype(np.float64)
    return float(np.dot(x, y) / math.sqrt(np.dot(x, x) * np.dot(y, y)))


# -- what it does to the audio ------------------------------------------------------------


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(("backend", "min_drop_db"), [("webrtc", 9.0), ("rnnoise", 20.0)])
async def test_noise_alone_is_suppressed(backend: str, min_drop_db: float, rate: int) -> None:
    x = noise(rate)
    y = await denoise(backend, x, rate)
    assert y.size == x.size
    settled = slice(rate, None)  # after the first second: the suppressors adapt to the noise
    drop = level_dbfs(x[settled].tobytes()) - level_dbfs(y[settled].tobytes())
    assert drop >= min_drop_db  # measured: webrtc 12-13 dB, rnnoise 31-63 dB


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_clean_speech_keeps_its_level_and_its_timing(backend: str, rate: int) -> None:
    x = speech(rate)
    y = await denoise(backend, x, rate)
    assert y.size == x.size - x.size % (rate // 50)  # whole 20 ms frames in, as many out
    assert abs(level_dbfs(x[: y.size].tobytes()) - level_dbfs(y.tobytes())) < 3.0
    # time-aligned: the backend's own delay is taken off, so the output is the input at lag 0
    step = max(rate // 4000, 1)
    around = {lag: correlation(x, y, lag) for lag in range(-12 * step, 13 * step, step)}
    assert max(around, key=around.__getitem__) in (-step, 0, step)
    assert around[0] > 0.85  # measured 0.88-0.99


async def test_a_worker_thread_gives_the_same_bytes_as_inline() -> None:
    x = np.concatenate([speech(16000), noise(16000, 1.0)])
    inline = await denoise("rnnoise", x, 16000, thread=False)
    threaded = await denoise("rnnoise", x, 16000, thread=True)
    assert threaded.tobytes() == inline.tobytes()
    webrtc = await denoise("webrtc", x, 16000, thread=True)
    assert webrtc.tobytes() == (await denoise("webrtc", x, 16000)).tobytes()


async def test_a_job_whose_await_is_cancelled_still_runs_and_the_next_waits_for_it() -> None:
    serial, seen = _Serial(), []
    started, gate = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        gate.wait(5)
        seen.append("first")

    async with asyncio.TaskGroup() as tg:
        waiting = tg.create_task(serial.run(slow))
        assert await asyncio.to_thread(started.wait, 5)
        waiting.cancel()  # an interrupt, or the call being cancelled, while the backend works
        await asyncio.sleep(0)
        assert waiting.cancelled()
        second = tg.create_task(serial.run(lambda: seen.append("second")))
        gate.set()
        await second
    assert seen == ["first", "second"]


# -- frames -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_frames_keep_timestamps_and_order_and_others_pass_untouched(backend: str) -> None:
    audio = va.chunks(speech(16000)[:16000], 16000)  # 50 frames of 20 ms
    others: dict[int, Frame] = {
        0: DTMFFrame(call_id="c", digit="5"),
        7: TranscriptFrame(call_id="c", text="hello"),
        20: OutputAudioFrame(call_id="c", turn_id=3, pcm=bytes(640), sample_rate=16000),
        33: InputAudioFrame(call_id="c", pcm=bytes(1280), sample_rate=16000, channels=2),
        49: DTMFFrame(call_id="c", digit="#"),
    }
    sent: list[Frame] = []
    for i, frame in enumerate(audio):
        sent.append(frame)
        if i in others:
            sent.append(others[i])
    node = Denoise(DenoiseParams(backend=backend))  # type: ignore[arg-type]
    out = (await run_processor(node, sent)).downstream
    assert len(out) == len(sent)
    for before, after in zip(sent, out, strict=True):
        if before in others.values():
            assert after is before  # untouched, and in its place among the audio
        else:
            assert isinstance(after, InputAudioFrame) and isinstance(before, InputAudioFrame)
            assert after.pcm != before.pcm and len(after.pcm) == len(before.pcm)
            assert {**_fields(after), "pcm": b""} == {**_fields(before), "pcm": b""}


def _fields(frame: Frame) -> dict[str, object]:
    return {name: getattr(frame, name) for name in frame.__dataclass_fields__}


async def test_a_change_of_rate_ends_one_stream_and_starts_another() -> None:
    sent = [*va.chunks(speech(16000)[:8000], 16000), *va.chunks(speech(8000)[:4000], 8000)]
    out = (await run_processor(Denoise(DenoiseParams()), sent)).downstream

    def shape(frames: list[Frame]) -> list[tuple[int, int, int]]:
        return [
            (f.sample_rate, len(f.pcm), f.pts_ns) for f in frames if isinstance(f, InputAudioFrame)
        ]

    assert shape(out) == shape(sent)


# -- params and installation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"backend": "speex"}, "backend"),
        ({"level": 0}, "level"),
        ({"level": 5}, "level"),
        ({"backend": "rnnoise", "level": 3}, "level"),
        ({"backend": "rnnoise", "auto_gain": True}, "auto_gain"),
        ({"strength": 1}, "strength"),
    ],
)
def test_bad_params_are_rejected_naming_the_key(raw: dict[str, object], key: str) -> None:
    with pytest.raises(ParamsError) as info:
        Registry.params(Denoise, raw)
    assert [k for k, _ in info.value.problems] == [key]


def test_defaults_and_threading() -> None:
    p = DenoiseParams()
    assert (p.backend, p.level, p.auto_gain, p.threaded) == ("webrtc", 2, False, False)
    assert DenoiseParams(backend="rnnoise").threaded
    assert not DenoiseParams(backend="rnnoise", thread=False).threaded


@pytest.mark.parametrize(
    ("backend", "module", "package", "extra"),
    [
        ("webrtc", "webrtc_noise_gain", "webrtc-noise-gain", "denoise"),
        ("rnnoise", "pyrnnoise", "pyrnnoise", "rnnoise"),
    ],
)
def test_a_missing_backend_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, backend: str, module: str, package: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what an uninstalled package looks like
    hint = f"needs the '{package}' package (pip install 'callweaver[{extra}]')"
    with pytest.raises(ValidationError, match=re.escape(hint)):
        DenoiseParams(backend=backend)  # type: ignore[arg-type]
    if backend == "webrtc":  # the default backend: a node with no params is checked too
        with pytest.raises(ParamsError, match=re.escape(hint)):
            Registry.params(Denoise, {})
    with pytest.raises(DenoiseUnavailable) as info:
        Denoise(DenoiseParams.model_construct(backend=backend))
    assert hint in str(info.value)
    config = f"""\
        name: noisy
        pipeline:
          nodes:
            - name: clean
              type: callweaver.processors.denoise:Denoise
              params: {{backend: {backend}}}
        """
    with pytest.raises(ConfigError) as err:
        parse_config(textwrap.dedent(config), "agent.yaml", Registry(BUILTINS), {})
    [issue] = err.value.issues
    assert (issue.line, issue.node, issue.key) == (6, "clean", "params.backend")
    assert hint in issue.message


# -- in a call ------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_in_a_call_before_silero_vad(backend: str) -> None:
    x = speech(16000)
    reference = va.reference_segments(x, 16000, stop_s=0.2, start_s=0.06)
    noisy = va.mix_noise(x, reference, 16000, 10.0)
    frames = va.chunks(np.concatenate([noisy, np.zeros(16000, np.int16)]), 16000)
    graph = Graph([
        Node.of("denoise", Denoise, DenoiseParams(backend=backend)),  # type: ignore[arg-type]
        Node.of("vad", SileroVAD, SileroVADParams(barge_in=False)),
    ])  # fmt: skip
    io = ListIO(frames)
    report = await Call(graph, lossless=True).run(io)
    assert report.reason == "hangup" and not report.errors  # the caller's stream ran out
    out = [f for f in io.written if isinstance(f, InputAudioFrame)]
    assert [(f.pts_ns, f.ts_ns, len(f.pcm)) for f in out] == [
        (f.pts_ns, f.ts_ns, len(f.pcm)) for f in frames if isinstance(f, InputAudioFrame)
    ]
    starts = [f.pts_ns / 1e9 for f in io.written if isinstance(f, SpeechStartedFrame)]
    stops = [f.pts_ns / 1e9 for f in io.written if isinstance(f, SpeechStoppedFrame)]
    detected = list(zip(starts, stops, strict=True))
    score = va.score(reference, detected, x.size / 16000)
    assert score.precision > 0.9 and score.recall > 0.95  # measured 0.94-0.95, 0.99
    assert abs(detected[0][0] - reference[0][0]) < 0.1
    assert len(report.turns) == len(detected) >= 2


@pytest.mark.parametrize(
    ("backend", "rate", "frames"),
    [("webrtc", 8000, 1), ("webrtc", 16000, 1), ("webrtc", 48000, 1),
     ("rnnoise", 8000, 2), ("rnnoise", 16000, 2), ("rnnoise", 48000, 1)],
)  # fmt: skip
def test_the_delay_the_docs_state(backend: str, rate: int, frames: int) -> None:
    _, delay = denoise_eval.node_cost(backend, rate, seconds=1.0)
    assert delay == frames  # 20 ms frames held back, as the module docstring says


def test_the_evaluation_counts_word_errors() -> None:
    ref, hyp = (
        denoise_eval.words("It was the best of times,"),
        denoise_eval.words("it was best of tims"),
    )
    assert denoise_eval.edit_distance(ref, hyp) == 2
