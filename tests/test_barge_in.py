"""Barge-in end to end: the caller talks over the bot's reply and the reply stops at once."""

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from callweaver.pipelines.call import Call
from callweaver.pipelines.graph import Graph, Node
from callweaver.processors.echo import Echo, EchoParams
from callweaver.processors.energy_vad import EnergyVAD, EnergyVADParams
from callweaver.runtime.clock import VirtualClock
from callweaver.testing import tone
from callweaver.transports.file import FileIO
from callweaver.transports.wav import Pcm, read_wav, write_wav

ROOT = Path(__file__).resolve().parent.parent
RATE = 16000
SILENT = float("-inf")


def caller() -> bytes:
    """Turn 1 (1.0 s), a pause, then turn 2 starting at 1.9 s, over the bot's reply."""
    parts = [(0.3, SILENT, 440), (1.0, -10, 440), (0.6, SILENT, 440), (0.6, -10, 660),
             (1.5, SILENT, 440)]  # fmt: skip
    return b"".join(tone(s, rate=RATE, dbfs=d, freq=f) for s, d, f in parts)


async def run_call(barge_in: bool) -> tuple[np.ndarray, FileIO]:
    clock = VirtualClock()
    graph = Graph(
        [
            Node.of(
                "vad",
                EnergyVAD,
                EnergyVADParams(stop_ms=200, interrupt_min_ms=200, barge_in=barge_in),
            ),
            Node.of("bot", Echo, EchoParams(preroll_ms=0)),
        ]
    )
    io = FileIO(Pcm(caller(), RATE), clock, realtime=True)
    running = asyncio.create_task(Call(graph, clock=clock).run(io))
    while not running.done():
        await clock.advance(0.02)
    await running
    return np.frombuffer(io.recording().data, dtype="<i2"), io


def voiced(out: np.ndarray, start_s: float, end_s: float) -> float:
    """Share of 10 ms blocks in [start, end) with reply audio in them."""
    seg = out[int(start_s * RATE) : int(end_s * RATE)].reshape(-1, RATE // 100)
    return float(np.mean(np.abs(seg).max(axis=1) > 100))


async def test_caller_speech_stops_the_reply_within_a_frame() -> None:
    out, io = await run_call(barge_in=True)
    # the reply to turn 1 starts at its endpoint (1.3 s + 200 ms of silence) ...
    assert voiced(out, 1.56, 2.08) == 1.0
    # ... and the caller starts again at 1.9 s: 200 ms of speech later (2.1 s) it is cut off,
    # within one 20 ms frame
    assert voiced(out, 2.12, 2.70) == 0.0
    assert io.flushed_samples > 0
    # the reply to turn 2 (0.6 s) still plays after its own endpoint (2.5 s + 200 ms)
    assert voiced(out, 2.76, 3.26) == 1.0


async def test_without_barge_in_the_reply_plays_to_its_end() -> None:
    out, io = await run_call(barge_in=False)
    assert voiced(out, 1.56, 2.46) == 1.0  # the whole 1.0 s reply
    assert io.flushed_samples == 0


# -- what the caller heard: through callweaver simulate, a real LLM wire and flite ----------

LONG = (
    "We're open from eight in the morning to six in the evening on weekdays. "
    "On Saturdays we open at nine and close at one. "
    "We're closed on Sundays and on public holidays. "
    "You can also book online at any time of the day."
)


async def two_questions(
    tmp_path: Path, reply: str, *, gap_s: float, tail_s: float, realtime: bool
) -> tuple[dict[str, Any], list[Any]]:
    """``callweaver simulate`` of the hours question, ``gap_s`` of silence, the address
    question, then ``tail_s``; the bot an LLM (a wire fake answering ``reply``) spoken by
    flite. Returns the JSON report and the LLM's chat requests."""
    from fake_openai import FakeOpenAI
    from fake_openai import Reply as LLMReply

    audio = ROOT / "examples" / "audio"
    first, second = read_wav(audio / "question-hours.wav"), read_wav(audio / "question-address.wav")
    rate = first.sample_rate
    silence = [bytes(round(rate * s) * 2) for s in (gap_s, tail_s)]
    wav = tmp_path / "caller.wav"
    write_wav(wav, Pcm(first.data + silence[0] + second.data + silence[1], rate))
    async with FakeOpenAI(LLMReply(reply)) as llm:
        config = {
            "name": "two-questions",
            "transports": {"file": {"realtime": realtime, "tail_ms": 500}},
            "pipeline": {"nodes": [
                {"name": "vad", "type": "silero_vad", "params": {"stop_ms": 300}},
                {"name": "stt", "type": "stt", "params": {"providers": ["whisper"]}},
                {"name": "bot", "type": "llm", "params": {"providers": [
                    {"type": "openai", "base_url": llm.base_url, "model": "gpt-fake"}]}},
                {"name": "tts", "type": "tts", "params": {"providers": ["flite"]}},
            ]},
        }  # fmt: skip
        path = tmp_path / "two.yaml"
        path.write_text(json.dumps(config))
        report = tmp_path / "report.json"
        fast = [] if realtime else ["--fast"]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callweaver.cli", "simulate", str(path), "--audio", str(wav),
            "--out", str(tmp_path / "out.wav"), "--json", str(report), *fast,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(proc.communicate(), 120)
        chats = llm.chats
    assert proc.returncode == 0, stderr.decode()
    return json.loads(report.read_text()), chats


async def test_the_conversation_keeps_only_what_the_caller_heard(tmp_path: Path) -> None:
    """The caller cuts the long reply short: the model's next request carries the reply up
    to the word where the audio stopped, and the report says what was heard."""
    data, chats = await two_questions(tmp_path, LONG, gap_s=2, tail_s=3, realtime=True)
    heard = {t["turn"]: t["heard"] for t in data["turns"] if "heard" in t}
    assert list(heard) == [1], data["turns"]
    # about 2 s of the reply played before the caller's 200 ms of speech cut it
    assert LONG.startswith(heard[1]) and 3 <= len(heard[1].split()) <= 12, heard
    assert len(chats) == 2
    messages = chats[1].body["messages"]
    assistant = [m["content"] for m in messages if m["role"] == "assistant"]
    assert assistant == [heard[1].rstrip(" .,") + "..."]


async def test_a_caller_who_speaks_again_quickly_loses_no_words(tmp_path: Path) -> None:
    """In fast mode the caller's second question starts (and interrupts) while the first is
    still being transcribed: the first is not lost, and the reply answers both."""
    reply = "We're at 42 Harbour Street."
    _, chats = await two_questions(tmp_path, reply, gap_s=2, tail_s=2, realtime=False)
    said = [m["content"].lower() for m in chats[-1].body["messages"] if m["role"] == "user"]
    assert len(said) == 2, said
    assert "saturday" in said[0] and "clinic" in said[1]
