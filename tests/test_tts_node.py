"""The text-to-speech node on real engines (piper, flite) and real broken ones.

Reply text in, reply audio out: each sentence's text goes on ahead of its audio, the audio
leaves in ``chunk_ms`` frames at the transport's rate (or ``sample_rate``), and the end of
the reply after it. Streamed pieces are spoken as whole sentences. When every provider fails
the caller hears the fallback audio spoken at start-up, once per turn, and the call goes on;
when even that could not be spoken the node still runs.

The audio is transcribed back with whisper tiny.en; flite is deterministic, so where flite
speaks the bytes are compared with what flite says on its own.
"""

from __future__ import annotations

import logging
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from callweaver.audio.resample import resample
from callweaver.frames.audio import OutputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.metrics import MetricsFrame
from callweaver.frames.text import ReplyEndFrame, ReplyTextFrame
from callweaver.pipelines.call import Call
from callweaver.pipelines.graph import Graph, Node
from callweaver.processors.tts import TextToSpeech
from callweaver.resources import whisper
from callweaver.runtime.latency import Stage
from callweaver.services import health
from callweaver.services.local_tts import FliteTTS
from callweaver.testing import ListIO, run_processor

FLITE = shutil.which("flite") or "flite"
ROOT = Path(__file__).resolve().parent.parent
FIRST, SECOND = "Thank you for calling the clinic.", "We open at nine tomorrow morning."
FALLBACK = "Sorry, we have a technical problem."


@pytest.fixture(autouse=True)
def own_breakers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The node uses the process's breakers: each test gets its own, so that the engines a
    test breaks are not skipped by another test."""
    monkeypatch.setattr(health, "_process_health", None)


@pytest.fixture(scope="module")
def asr() -> whisper.WhisperModel:
    return whisper.shared_model("tiny.en")


def unique(name: str) -> str:
    """A provider name no other test uses: the fallback audio is cached per process by the
    providers' names."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def script(path: Path, body: str) -> str:
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return str(path)


def text(words: str, turn: int = 1, *, sentence: bool = True) -> ReplyTextFrame:
    return ReplyTextFrame(call_id="test-call", turn_id=turn, text=words, sentence=sentence)


def end(turn: int = 1) -> ReplyEndFrame:
    return ReplyEndFrame(call_id="test-call", turn_id=turn)


def node(providers: Sequence[Any], **params: Any) -> TextToSpeech:
    params = {"fallback_text": FALLBACK, **params}
    return TextToSpeech(TextToSpeech.Params(providers=list(providers), **params))


def shape(frames: Sequence[Frame]) -> list[str]:
    """The frames as "text:...", "audio" (consecutive chunks as one), "metric:..", "end"."""
    out: list[str] = []
    for f in frames:
        if isinstance(f, OutputAudioFrame):
            if out[-1:] != ["audio"]:
                out.append("audio")
        elif isinstance(f, ReplyTextFrame):
            out.append(f"text:{f.text}")
        elif isinstance(f, MetricsFrame):
            out.append(f"metric:{f.name}")
        elif isinstance(f, ReplyEndFrame):
            out.append("end")
    return out


def runs(frames: Sequence[Frame]) -> list[list[OutputAudioFrame]]:
    """Runs of consecutive audio frames (one per sentence spoken)."""
    out: list[list[OutputAudioFrame]] = []
    last: Frame | None = None
    for f in frames:
        if isinstance(f, OutputAudioFrame):
            if not isinstance(last, OutputAudioFrame):
                out.append([])
            out[-1].append(f)
        last = f
    return out


def segments(frames: Sequence[Frame]) -> list[bytes]:
    """The audio of each run."""
    return [b"".join(f.pcm for f in run) for run in runs(frames)]


async def flite_says(words: str) -> bytes:
    """What flite slt says on its own (16 kHz, the rate of these tests)."""
    return b"".join([s.pcm async for s in FliteTTS().synthesize(words)])


async def assert_heard(asr: whisper.WhisperModel, pcm: bytes, rate: int, expected: str) -> None:
    audio16 = resample(pcm, rate, whisper.SAMPLE_RATE)
    audio = np.frombuffer(audio16, dtype="<i2").astype(np.float32) / 32768
    got = Counter(re.findall(r"[a-z']+", (await asr.transcribe(audio, language="en")).text.lower()))
    want = Counter(re.findall(r"[a-z']+", expected.lower()))
    assert sum((want & got).values()) / sum(want.values()) >= 0.8, (expected, got)


# -- speaking ---------------------------------------------------------------------------------

RATES = {
    # how the rate is set: (expected rate, chunk_ms)
    "start-frame": (16000, 20),  # run_processor's StartFrame: 16 kHz
    "param": (8000, 40),  # sample_rate: 8000 overrides the transport's
    "transport": (24000, 10),  # a transport announcing 24 kHz, through a real Call
}


@pytest.mark.parametrize("how", RATES)
async def test_each_sentence_is_spoken_after_its_text_at_the_output_rate(
    how: str, asr: whisper.WhisperModel
) -> None:
    rate, chunk_ms = RATES[how]
    params: dict[str, Any] = {"chunk_ms": chunk_ms}
    if how == "param":
        params["sample_rate"] = rate
    tts = node(["piper", {"type": "flite", "voice": "slt"}], **params)
    frames = [text(FIRST), text(SECOND), end()]
    if how == "transport":
        io = ListIO(frames)
        io.out_sample_rate = rate  # type: ignore[attr-defined]
        report = await Call(Graph([Node("tts", lambda: tts)])).run(io)
        out, errors, latency = io.written, report.errors, report.turns
    else:
        run = await run_processor(tts, frames)
        assert run.ctx is not None
        out, errors, latency = run.downstream, run.ctx.errors, run.ctx.latency.turns

    assert shape(out) == [f"text:{FIRST}", "audio", f"text:{SECOND}", "audio", "end"]
    assert errors == []  # piper spoke: no failover
    audio = [f for f in out if isinstance(f, OutputAudioFrame)]
    assert {(f.sample_rate, f.turn_id) for f in audio} == {(rate, 1)}
    step = rate * chunk_ms // 1000 * 2
    # every frame is chunk_ms long but the last of each sentence, which is no longer
    for segment in runs(out):
        assert all(len(f.pcm) == step for f in segment[:-1])
        assert 0 < len(segment[-1].pcm) <= step
    (turn,) = latency
    assert Stage.FIRST_TTS_AUDIO in turn.marks
    await assert_heard(asr, b"".join(segments(out)), rate, f"{FIRST} {SECOND}")


async def test_streamed_pieces_are_spoken_as_whole_sentences() -> None:
    pieces = ["Thank you for", " calling the clinic.", " We open", " at nine tomorrow morning."]
    run = await run_processor(
        node([{"type": "flite", "voice": "slt"}]),
        [*(text(p, sentence=False) for p in pieces), end()],
    )
    # the first sentence is complete once the next piece starts; the last one at the end;
    # the text goes on as sentences (a transport shows each once, never in pieces)
    assert shape(run.downstream) == [
        f"text:{FIRST}",
        "audio",
        f"text:{SECOND}",
        "audio",
        "end",
    ]
    assert all(f.sentence for f in run.downstream if isinstance(f, ReplyTextFrame))
    assert segments(run.downstream) == [await flite_says(FIRST), await flite_says(SECOND)]


async def test_a_failing_provider_is_replaced_and_the_switch_reported(tmp_path: Path) -> None:
    broken = unique("broken")
    count = tmp_path / "count"
    binary = script(  # speaks the fallback audio at start-up, then crashes
        tmp_path / "broken",
        f'n=$(($(cat "{count}" 2>/dev/null || echo 0) + 1)); echo $n > "{count}"\n'
        f'[ $n -le 1 ] && exec "{FLITE}" "$@"\n'
        'echo "segmentation fault" >&2; exit 1',
    )
    tts = node([{"type": "flite", "name": broken, "binary": binary}, {"type": "flite"}])
    run = await run_processor(tts, [text(FIRST), end()])

    # the switch is reported once the sentence is spoken
    assert shape(run.downstream) == [
        f"text:{FIRST}",
        "audio",
        f"metric:failover.tts.{broken}",
        "end",
    ]
    assert segments(run.downstream) == [await flite_says(FIRST)]
    assert run.ctx is not None and run.ctx.errors == []


# -- when every provider fails ----------------------------------------------------------------


async def test_every_provider_failing_plays_the_fallback_once_per_turn(tmp_path: Path) -> None:
    # an engine that works once (at start-up, speaking the fallback), then crashes every time
    count = tmp_path / "count"
    once = unique("flite-once")
    binary = script(
        tmp_path / "flite-once",
        f'n=$(($(cat "{count}" 2>/dev/null || echo 0) + 1)); echo $n > "{count}"\n'
        f'[ $n -le 1 ] && exec "{FLITE}" "$@"\n'
        'echo "engine crashed" >&2; exit 1',
    )
    missing = unique("flite-missing")
    tts = node(
        [
            {"type": "flite", "name": once, "binary": binary},
            {"type": "flite", "name": missing, "binary": str(tmp_path / "no-such-flite")},
        ]
    )
    run = await run_processor(
        tts, [text(FIRST, 1), text(SECOND, 1), end(1), text("Goodbye now.", 2), end(2)]
    )

    fallback = await flite_says(FALLBACK)
    assert shape([f for f in run.downstream if f.turn_id == 1]) == [
        f"text:{FIRST}",
        f"metric:failover.tts.{once}",
        f"metric:failover.tts.{missing}",
        "audio",  # the fallback, and nothing for the turn's next sentence
        f"text:{SECOND}",
        "end",
    ]
    assert shape([f for f in run.downstream if f.turn_id == 2]) == [
        "text:Goodbye now.",
        f"metric:failover.tts.{once}",  # the missing binary's breaker is open: skipped
        "audio",
        "end",
    ]
    # the same audio as spoken at start-up, whole, once per turn
    assert segments(run.downstream) == [fallback, fallback]
    assert run.ctx is not None
    assert [(e.policy, "every provider failed" in e.message) for e in run.ctx.errors] == [
        ("fallback", True),
        ("fallback", True),
    ]
    assert count.read_text().strip() == "3"  # start-up, turn 1, turn 2


async def test_the_node_runs_when_even_the_fallback_cannot_be_spoken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tts = node(
        [
            {"type": "flite", "name": unique("gone"), "binary": str(tmp_path / "no-flite")},
            {"type": "espeak", "name": unique("gone"), "binary": str(tmp_path / "no-espeak")},
        ]
    )
    with caplog.at_level(logging.ERROR, logger="callweaver.tts"):
        run = await run_processor(tts, [text(FIRST, 1), end(1), text(SECOND, 2), end(2)])

    assert "fallback audio could not be synthesized" in caplog.text
    # silent, but every frame went on and the call was not failed
    assert shape(run.downstream) == [f"text:{FIRST}", "end", f"text:{SECOND}", "end"]
    assert run.ctx is not None
    assert [e.policy for e in run.ctx.errors] == ["fallback", "fallback"]


# -- hedging ----------------------------------------------------------------------------------


async def test_a_slow_provider_is_hedged_and_the_waste_reported(tmp_path: Path) -> None:
    slow = unique("flite-slow")
    binary = script(tmp_path / "slow", f'sleep 1\nexec "{FLITE}" "$@"')
    tts = node(
        [{"type": "flite", "name": slow, "binary": binary}, {"type": "flite"}],
        hedge_after_s=0.2,
        first_audio_timeout_s=3,
    )
    run = await run_processor(tts, [text(FIRST), end()])
    assert shape(run.downstream) == [
        f"text:{FIRST}",
        "audio",
        "metric:hedge.tts.lost",
        "metric:hedge.tts.wasted_chars",
        "end",
    ]
    assert segments(run.downstream) == [await flite_says(FIRST)]  # the plain flite won
    # the hedge happened at start-up, on the fallback text; the call then stays on the
    # provider that won, so the sentence went straight to it
    wasted = [f for f in run.downstream if isinstance(f, MetricsFrame)][-1]
    assert wasted.value == len(FALLBACK)


def test_a_hedge_must_come_before_the_timeout() -> None:
    with pytest.raises(ValidationError, match="hedge_after_s must be below"):
        TextToSpeech.Params(hedge_after_s=2, first_audio_timeout_s=2)


# -- the audio cache ----------------------------------------------------------------------------


def said(log: Path) -> list[str]:
    """What the counting flite was asked to say, in order."""
    return log.read_text().splitlines() if log.exists() else []


def counting_flite(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """Real flite behind a script that logs each text it is asked to speak."""
    log = tmp_path / "said.log"
    binary = script(tmp_path / "flite", f'echo "$*" >> "{log}"\nexec "{FLITE}" "$@"')
    return {"type": "flite", "name": unique("flite-counting"), "binary": binary}, log


async def test_a_cacheable_sentence_is_played_from_the_audio_cache_the_next_time(
    tmp_path: Path,
) -> None:
    provider, log = counting_flite(tmp_path)
    cache = {"type": "memory", "prefix": f"test-{uuid.uuid4().hex}:"}  # a store of its own
    frames = [
        ReplyTextFrame(call_id="test-call", turn_id=1, text=FIRST, sentence=True, cacheable=True),
        end(1),
        ReplyTextFrame(call_id="test-call", turn_id=2, text=FIRST, sentence=True, cacheable=True),
        end(2),
        text(SECOND, 3),  # not cacheable: spoken every time, never kept
        end(3),
        text(SECOND, 4),
        end(4),
    ]
    run = await run_processor(node([provider], audio_cache=cache, lead_clause=False), frames)
    spoken = [t for t in said(log) if FALLBACK not in t]  # the fallback line at start-up
    assert sum(FIRST in t for t in spoken) == 1 and sum(SECOND in t for t in spoken) == 2
    first, again, second, second_again = segments(run.downstream)
    assert again == first  # the same audio, from the cache
    assert second and second_again
    hits = [
        f for f in run.downstream if isinstance(f, MetricsFrame) and f.name == "cache.audio.hit"
    ]
    assert [h.turn_id for h in hits] == [2]
    assert run.ctx is not None
    marks = {t.turn_id: t.marks for t in run.ctx.latency.turns}
    assert Stage.FIRST_TTS_AUDIO in marks[2]  # a cached turn still reports its first audio
    assert run.ctx.spoken.spoken_ms(2) > 500  # and what it said, for barge-in accounting


async def test_audio_from_a_failover_provider_is_not_kept(tmp_path: Path) -> None:
    broken = script(tmp_path / "broken", "exit 3")
    provider, log = counting_flite(tmp_path)
    cache = {"type": "memory", "prefix": f"test-{uuid.uuid4().hex}:"}
    frames = []
    for turn in (1, 2):
        frames += [
            ReplyTextFrame(
                call_id="test-call", turn_id=turn, text=FIRST, sentence=True, cacheable=True
            ),
            end(turn),
        ]
    tts = node([{"type": "flite", "name": unique("broken"), "binary": broken}, provider],
               audio_cache=cache)  # fmt: skip
    await run_processor(tts, frames)
    # the second provider spoke both times: its voice is not the voice the cache keys
    assert sum(FIRST in t for t in said(log)) == 2


async def test_simulate_answers_a_repeated_question_from_the_audio_cache(tmp_path: Path) -> None:
    """Through `callweaver simulate`: the same question twice in one call; the declared
    answer is synthesized once, then played from the audio cache."""
    import asyncio
    import json
    import sys

    import yaml

    from callweaver.transports.wav import Pcm, read_wav, write_wav

    root = ROOT
    provider, log = counting_flite(tmp_path)
    config = yaml.safe_load((root / "configs" / "local.yaml").read_text())
    for n in config["pipeline"]["nodes"]:
        if n["type"] == "tts":
            n["params"] = {"providers": [provider], "audio_cache": {"type": "memory"},
                           "fallback_text": FALLBACK}  # fmt: skip
    path = tmp_path / "cached.yaml"
    path.write_text(yaml.safe_dump(config))
    question = read_wav(root / "examples" / "audio" / "question-address.wav")
    rate = question.sample_rate
    pause = bytes(rate * 2 * 5)  # the answer plays out before the question comes again
    wav = tmp_path / "twice.wav"
    write_wav(wav, Pcm(question.data + pause + question.data + pause, rate))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callweaver.cli", "simulate", str(path), "--audio", str(wav),
        "--out", str(tmp_path / "out.wav"), "--json", str(tmp_path / "report.json"),
        cwd=root, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    except TimeoutError:  # say where it was: its log so far
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"simulate did not end: {err.decode()[-4000:]}") from None
    assert proc.returncode == 0, err.decode()
    report = json.loads((tmp_path / "report.json").read_text())
    assert len([t for t in report["turns"] if t.get("voice_to_voice_ms")]) == 2
    assert out.decode().count("Harbour Street") == 2  # answered twice
    spoken = [t for t in said(log) if FALLBACK not in t]
    assert sum("Harbour Street" in t for t in spoken) == 1, spoken  # synthesized once
