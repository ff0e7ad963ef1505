"""Reply text spoken as it is written: LLM tokens into one provider stream (``stream_text``).

Real components only: the TTS node as a real actor, the ElevenLabs ``stream-input`` WebSocket
and Azure's text stream (the real SDK) against their wire fakes on loopback, flite as the
per-sentence provider behind them, and the audio transcribed back with whisper tiny.en.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_azure import FakeAzure
from fake_elevenlabs import FakeElevenLabs
from fake_elevenlabs import Reply as SpeechReply
from fake_openai import FakeOpenAI
from fake_openai import Reply as LLMReply

from callweaver.audio.resample import resample
from callweaver.frames.audio import OutputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.metrics import MetricsFrame
from callweaver.frames.text import ReplyEndFrame, ReplyTextFrame
from callweaver.pipelines.call import Call
from callweaver.pipelines.graph import Graph, Node
from callweaver.processors.tts import TextToSpeech
from callweaver.resources import whisper
from callweaver.services import health
from callweaver.services.azure_tts import AzureTTS
from callweaver.testing import ListIO, run_processor
from callweaver.transports.wav import read_wav

ROOT = Path(__file__).resolve().parent.parent
KEY = "test-key-0123456789"
VOICE = "AAAAAAAAAAAAAAAAAAAA"
FIRST = "Thank you for calling the Harbour Street clinic this morning."
SECOND = "We open at nine tomorrow."
REPLY = f"{FIRST} {SECOND}"


@pytest.fixture(autouse=True)
def own_breakers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_process_health", None)


@pytest.fixture(scope="module")
def asr() -> whisper.WhisperModel:
    return whisper.shared_model("tiny.en")


@pytest.fixture
async def eleven() -> AsyncIterator[FakeElevenLabs]:
    async with FakeElevenLabs(api_key=KEY) as fake:
        yield fake


def tokens(text: str) -> list[str]:
    """``text`` as an LLM streams it: a word at a time, the space in front."""
    words = text.split(" ")
    return [words[0], *(" " + w for w in words[1:])]


def piece(words: str, turn: int = 1) -> ReplyTextFrame:
    return ReplyTextFrame(call_id="test-call", turn_id=turn, text=words, sentence=False)


def end(turn: int = 1) -> ReplyEndFrame:
    return ReplyEndFrame(call_id="test-call", turn_id=turn)


def elevenlabs(server: FakeElevenLabs, **extra: Any) -> dict[str, Any]:
    return {"type": "elevenlabs", "api_key": KEY, "voice_id": VOICE, "base_url": server.base_url,
            "transport": "websocket", "output_format": "pcm_16000", **extra}  # fmt: skip


def flite() -> dict[str, Any]:
    # a name of its own: the fallback audio is cached per process by the providers' names
    return {"type": "flite", "voice": "slt", "name": f"flite-{uuid.uuid4().hex[:8]}"}


def node(*providers: dict[str, Any], **params: Any) -> TextToSpeech:
    params = {"fallback_text": "Sorry.", "stream_text": True, **params}
    return TextToSpeech(TextToSpeech.Params(providers=list(providers), **params))


def streams(server: FakeElevenLabs) -> list[Any]:
    """The server's WebSocket requests but the fallback audio's (spoken at start-up)."""
    return [r for r in server.requests if r.websocket and "Sorry." not in "".join(r.texts)]


def audio_of(frames: list[Frame]) -> bytes:
    return b"".join(f.pcm for f in frames if isinstance(f, OutputAudioFrame))


def words(text: str) -> Counter[str]:
    return Counter(re.findall(r"[a-z']+", text.lower()))


async def heard(asr: whisper.WhisperModel, pcm: bytes, rate: int = 16000) -> str:
    audio16 = resample(pcm, rate, whisper.SAMPLE_RATE)
    audio = np.frombuffer(audio16, dtype="<i2").astype(np.float32) / 32768
    return (await asr.transcribe(audio, language="en")).text


def share(expected: str, got: str) -> float:
    want = words(expected)
    return sum((want & words(got)).values()) / sum(want.values())


# -- ElevenLabs: tokens in, one stream ------------------------------------------------------


async def test_tokens_go_into_one_stream_and_the_reply_is_heard(
    eleven: FakeElevenLabs, asr: whisper.WhisperModel
) -> None:
    run = await run_processor(node(elevenlabs(eleven)), [*(piece(t) for t in tokens(REPLY)), end()])
    assert run.ctx is not None and run.ctx.errors == []
    (request,) = streams(eleven)  # one stream for the turn
    sent = request.texts[1:-1]  # after the opening " ", before the closing ""
    assert "".join(sent).strip() == REPLY
    # the first sentence is flushed as soon as it is complete, not at the schedule
    flushed = [m for m in request.messages if m.get("flush")]
    assert flushed and "".join(request.texts[1 : request.messages.index(flushed[0]) + 1])
    # shown as sentences, each once, before the end
    shown = [f for f in run.downstream if isinstance(f, ReplyTextFrame)]
    assert [f.text for f in shown] == [FIRST, SECOND] and all(f.sentence for f in shown)
    assert isinstance(run.downstream[-1], ReplyEndFrame)
    assert share(REPLY, await heard(asr, audio_of(run.downstream))) >= 0.8


async def test_first_audio_comes_before_the_reply_is_written(eleven: FakeElevenLabs) -> None:
    """Through a real call: the second sentence is held back until audio has gone out."""
    audio_out = asyncio.Event()
    io = ListIO([*(piece(t) for t in tokens(FIRST)), piece(" We")], hold_open=audio_out)
    io.on_write = lambda f: audio_out.set() if isinstance(f, OutputAudioFrame) else None
    graph = Graph([Node.of("tts", TextToSpeech, node(elevenlabs(eleven)).p)])
    async with asyncio.timeout(20):
        report = await Call(graph).run(io)
    assert report.errors == []
    assert any(isinstance(f, OutputAudioFrame) for f in io.written)


@pytest.mark.parametrize("fault", ["error", "hang"])
async def test_a_stream_that_fails_before_audio_moves_to_a_sentence_provider(
    eleven: FakeElevenLabs, asr: whisper.WhisperModel, fault: str
) -> None:
    broken = SpeechReply.error_reply(503) if fault == "error" else SpeechReply(hang=True)
    eleven.queue.extend([SpeechReply(), broken])  # the fallback audio at start-up, the turn
    run = await run_processor(
        node(elevenlabs(eleven), flite(), first_audio_timeout_s=0.5),
        [*(piece(t) for t in tokens(REPLY)), end()],
    )
    switches = [f for f in run.downstream if isinstance(f, MetricsFrame)]
    assert [f.name for f in switches if f.name.startswith("failover.")] == [
        "failover.tts.elevenlabs"
    ]
    # the whole reply, first sentence included, from flite
    assert share(REPLY, await heard(asr, audio_of(run.downstream))) >= 0.8


async def test_a_stream_cut_mid_way_goes_on_after_what_was_heard(
    eleven: FakeElevenLabs, asr: whisper.WhisperModel
) -> None:
    # the fallback audio at start-up, then the turn: its first sentence's audio breaks off
    eleven.queue.extend([SpeechReply(), SpeechReply(cut_after=4)])
    run = await run_processor(
        node(elevenlabs(eleven), flite()), [*(piece(t) for t in tokens(REPLY)), end()]
    )
    assert [f.name for f in run.downstream if isinstance(f, MetricsFrame)] == [
        "failover.tts.elevenlabs"
    ]
    text = await heard(asr, audio_of(run.downstream))
    # ElevenLabs' alignment said the first sentence had started: flite goes on with the
    # second, and does not say the first again
    assert share(SECOND, text) >= 0.8
    assert words(text)["clinic"] <= 1


async def test_barge_in_closes_the_stream(eleven: FakeElevenLabs) -> None:
    gate = asyncio.Event()  # never set: the server holds the stream after 400 ms of audio
    eleven.queue.extend([SpeechReply(), SpeechReply(gate=gate, gate_after=8)])
    done = asyncio.Event()
    io = ListIO([*(piece(t) for t in tokens(REPLY))], hold_open=done)
    call = Call(Graph([Node.of("tts", TextToSpeech, node(elevenlabs(eleven)).p)]))

    def on_write(frame: Frame) -> None:
        if isinstance(frame, OutputAudioFrame) and not done.is_set():
            call.interrupt(2)  # the caller speaks over the first audio
            done.set()

    io.on_write = on_write
    async with asyncio.timeout(20):
        report = await call.run(io)
    assert report.errors == []
    (request,) = streams(eleven)
    # the client dropped the stream: the server never got the end of the text
    await asyncio.sleep(0.2)
    assert request.texts[-1] != ""


@pytest.mark.parametrize("pieces", [[], ["", " ", "  ", "\n"], [" ", "...", " "]])
async def test_nothing_to_say_says_nothing(eleven: FakeElevenLabs, pieces: list[str]) -> None:
    run = await run_processor(node(elevenlabs(eleven)), [*(piece(p) for p in pieces), end()])
    assert run.ctx is not None and run.ctx.errors == []
    assert audio_of(run.downstream) == b""
    assert isinstance(run.downstream[-1], ReplyEndFrame)
    assert not streams(eleven)  # no stream was opened


# -- Azure's text stream (the real SDK) ------------------------------------------------------


async def test_azure_speaks_a_text_stream_as_it_is_written(asr: whisper.WhisperModel) -> None:
    async with FakeAzure() as server:
        tts = AzureTTS(
            AzureTTS.Params(
                key=server.key, host=server.host, output_format="raw-16khz-16bit-mono-pcm"
            )
        )
        first_audio = asyncio.Event()

        async def written() -> AsyncIterator[str]:
            rest = tokens(SECOND)
            for t in [*tokens(FIRST), " " + rest[0]]:  # the first sentence, complete
                yield t
            await first_audio.wait()  # the rest only once the first sentence is heard
            for t in rest[1:]:
                yield t

        chunks = []
        try:
            async with asyncio.timeout(20):
                async for speech in tts.synthesize_stream(written()):
                    chunks.append(speech)
                    first_audio.set()
        finally:
            await tts.aclose()
        (synthesis,) = server.syntheses
        assert synthesis.streamed and synthesis.voice == "en-US-JennyNeural"
        assert synthesis.text.strip() == REPLY and len(synthesis.pieces) > 5
        assert share(REPLY, await heard(asr, b"".join(c.pcm for c in chunks))) >= 0.8


# -- callweaver simulate with stream_text ------------------------------------------------------


async def test_simulate_with_streamed_tokens(
    eleven: FakeElevenLabs, asr: whisper.WhisperModel, tmp_path: Path
) -> None:
    async with FakeOpenAI(LLMReply(REPLY, delay=0.02)) as llm:
        config = {
            "name": "streamed-reply",
            "transports": {"file": {"realtime": False, "tail_ms": 3000}},
            "pipeline": {"nodes": [
                {"name": "vad", "type": "silero_vad", "params": {"stop_ms": 200}},
                {"name": "stt", "type": "stt", "params": {"providers": ["whisper"]}},
                {"name": "bot", "type": "llm", "params": {"stream_tokens": True, "providers": [
                    {"type": "openai", "base_url": llm.base_url, "model": "gpt-fake"}]}},
                {"name": "tts", "type": "tts", "params": {
                    "stream_text": True, "providers": [elevenlabs(eleven), "flite"]}},
            ]},
        }  # fmt: skip
        path = tmp_path / "streamed.yaml"
        path.write_text(json.dumps(config))
        out, report = tmp_path / "out.wav", tmp_path / "report.json"
        audio = ROOT / "examples" / "audio" / "question-hours.wav"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "callweaver.cli", "simulate", str(path), "--audio", str(audio),
            "--out", str(out), "--fast", "--json", str(report),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, stderr.decode()
    data = json.loads(report.read_text())
    assert data["errors"] == []
    spoken = ["".join(r.texts).strip() for r in streams(eleven)]
    assert spoken[-1] == REPLY and len(spoken) == 2, spoken  # the fallback audio, the reply
    recorded = read_wav(out)
    caller = read_wav(audio)
    bot = recorded.data[len(caller.data) :]  # the reply follows the question
    assert share(REPLY, await heard(asr, bot, recorded.sample_rate)) >= 0.8


# -- the spoken log: what each synthesis said, and where ---------------------------------------


async def test_azure_word_boundaries_place_a_barge_in_cut_on_words() -> None:
    """Azure's word boundaries reach the spoken log through the TTS node: the reply is laid
    out word by word on its audio, so a cut part-way keeps the words whose start had played."""
    from callweaver.processors.tts import TTSParams
    from callweaver.runtime.spoken import SpokenLog, estimate_words

    async with FakeAzure() as server:
        azure = {"type": "azure", "key": server.key, "host": server.host,
                 "output_format": "raw-16khz-16bit-mono-pcm"}  # fmt: skip
        node = TextToSpeech(
            TTSParams.model_validate(
                {"providers": [azure], "lead_clause": False, "stream_text": False}
            )
        )
        frames = [
            ReplyTextFrame(turn_id=1, text=FIRST, sentence=True),
            ReplyEndFrame(turn_id=1),
        ]
        run = await run_processor(node, frames)
    assert run.ctx is not None
    spoken: SpokenLog = run.ctx.spoken
    audio_ms = sum(f.duration_ns / 1e6 for f in run.downstream if isinstance(f, OutputAudioFrame))
    assert abs(spoken.spoken_ms(1) - audio_ms) < 25  # the log covers the audio sent
    (piece,) = spoken._pieces[1]
    # every word placed by Azure's boundary offset, not spread by length
    assert len(piece.words) == len(FIRST.split())
    # the fake spreads its boundaries evenly per word: not where word lengths would put them
    starts = [w.start_ms for w in piece.words]
    step = starts[1] - starts[0]
    assert all(abs(b - a - step) < 2 for a, b in itertools.pairwise(starts))
    assert starts != [w.start_ms for w in estimate_words(FIRST, piece.duration_ms)]
    half = spoken.spoken_ms(1) / 2
    spoken.cut(1, half)
    heard = spoken.heard(1)
    assert heard is not None and FIRST.startswith(heard) and 0 < len(heard) < len(FIRST)
