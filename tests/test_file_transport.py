"""The file transport and the `simulate` command, end to end on real files."""

import asyncio
import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from callweaver.audio.resample import resample
from callweaver.frames import InputAudioFrame, OutputAudioFrame
from callweaver.runtime.clock import VirtualClock
from callweaver.testing import tone
from callweaver.transports.file import FileIO
from callweaver.transports.wav import Pcm, WavError, read_wav, wav_bytes

ROOT = Path(__file__).parent.parent
CALLER = ROOT / "examples" / "audio" / "caller.wav"


def write_stereo_24bit(path: Path, left: np.ndarray, right: np.ndarray, rate: int) -> None:
    inter = np.stack([left, right], axis=1).reshape(-1).astype(np.int32) << 8
    raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in inter)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(3)
        w.setframerate(rate)
        w.writeframes(raw)


def test_read_wav_mixes_stereo_24_bit_down_to_mono_16(tmp_path: Path) -> None:
    left = np.full(480, 1000, dtype=np.int32)
    right = np.full(480, 3000, dtype=np.int32)
    path = tmp_path / "st.wav"
    write_stereo_24bit(path, left, right, 48000)
    pcm = read_wav(path)
    assert pcm.sample_rate == 48000
    samples = np.frombuffer(pcm.data, "<i2")
    assert samples.size == 480 and set(samples.tolist()) == {2000}


def test_read_wav_rejects_what_is_not_a_wav(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....not a wave at all")
    with pytest.raises(WavError, match="not a PCM WAV"):
        read_wav(bad)


async def test_file_input_is_cut_into_20ms_frames_paced_on_the_clock() -> None:
    clock = VirtualClock()
    io = FileIO(Pcm(tone(0.1, rate=8000), 8000), clock, realtime=True)
    got: list[tuple[int, int]] = []

    async def consume() -> None:
        async for f in io.frames():
            assert isinstance(f, InputAudioFrame)
            got.append((f.pts_ns, f.ts_ns))

    task = asyncio.create_task(consume())
    while not task.done():
        await clock.advance(0.02)
    assert [p for p, _ in got] == [i * 20_000_000 for i in range(5)]
    # each chunk is delivered when its last sample has "arrived"
    assert [t for _, t in got] == [(i + 1) * 20_000_000 for i in range(5)]


async def test_output_timeline_and_barge_in_flush() -> None:
    clock = VirtualClock()
    io = FileIO(Pcm(bytes(2 * 8000), 8000), clock, realtime=True)
    frames = io.frames()

    async def take(n: int) -> None:
        for _ in range(n):
            await anext(frames)

    taking = asyncio.create_task(take(10))  # 200 ms of input "played"
    while not taking.done():
        await clock.advance(0.02)
    reply = OutputAudioFrame(pcm=tone(0.5, rate=8000), sample_rate=8000)
    await io.write(reply)
    await clock.advance(0.1)
    await io.flush()  # 100 ms of the reply played, the rest is dropped
    out = np.frombuffer(io.recording().data, "<i2")
    voiced = np.nonzero(out)[0]
    assert voiced[0] >= int(0.2 * 8000) - 1
    assert voiced[-1] < int(0.32 * 8000)
    assert io.flushed_samples > 0
    with pytest.raises(Exception, match="16000 Hz"):
        await io.write(OutputAudioFrame(pcm=bytes(640), sample_rate=16000))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callweaver.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def test_simulate_default_config_end_to_end(tmp_path: Path) -> None:
    out, report = tmp_path / "out.wav", tmp_path / "report.json"
    res = run_cli(
        "simulate", "configs/default.yaml", "--audio", str(CALLER), "--out", str(out),
        "--fast", "--json", str(report), "--param", "clinic=harbour", "--param", "lang=en-US",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "voice_to_voice" in res.stdout
    data = json.loads(report.read_text())
    assert data["reason"] == "hangup"
    assert data["parameters"] == {"clinic": "harbour", "lang": "en-US"}  # on the call's context
    assert len(data["turns"]) >= 2
    assert all(t["endpoint"] is not None for t in data["turns"])
    recorded = read_wav(out)
    assert recorded.sample_rate == 16000
    assert np.abs(np.frombuffer(recorded.data, "<i2")).max() > 1000  # the caller was echoed


def test_simulate_real_time_measures_voice_to_voice(tmp_path: Path) -> None:
    # the first 1.5 s of real speech, as a phone line carries it (8 kHz)
    caller = read_wav(CALLER)
    phone = resample(caller.data[: int(1.5 * caller.sample_rate) * 2], caller.sample_rate, 8000)
    clip = tmp_path / "clip.wav"
    clip.write_bytes(wav_bytes(Pcm(phone, 8000)))
    out, report = tmp_path / "out.wav", tmp_path / "r.json"
    res = run_cli("simulate", "configs/default.yaml", "--audio", str(clip), "--out", str(out),
                  "--json", str(report))  # fmt: skip
    assert res.returncode == 0, res.stderr
    turn = json.loads(report.read_text())["turns"][0]
    # the endpoint waits for stop_ms (200) of silence: that bounds voice-to-voice from below
    # (less one 20 ms chunk: arrival stamps jitter by up to a chunk)
    assert turn["voice_to_voice_ms"] >= 180
    assert turn["first_audio_out"] >= turn["endpoint"]


def test_simulate_reports_bad_input_clearly(tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_text("hello")
    res = run_cli("simulate", "configs/default.yaml", "--audio", str(junk), "--out", "x.wav")
    assert res.returncode == 2
    assert "not a PCM WAV" in res.stderr
    res = run_cli("simulate", "configs/default.yaml", "--audio", str(CALLER), "--out", "x.wav",
                  "--param", "no-equals-sign")  # fmt: skip
    assert res.returncode == 2
    assert "'no-equals-sign' is not NAME=VALUE" in res.stderr
    res = run_cli("simulate", str(tmp_path / "nope.yaml"), "--audio", str(CALLER), "--out", "x.wav")
    assert res.returncode == 2
    assert "cannot read" in res.stderr
