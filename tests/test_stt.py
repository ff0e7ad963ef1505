"""Speech to text: whisper on the process's shared model, and the STT node with speculation
and with a streaming provider (the real Azure SDK against ``fake_azure``)."""

import asyncio
import importlib.util
import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from fake_azure import FakeAzure, Script
from pydantic import ValidationError

from bench.corpus import edit_distance, words
from callweaver.audio.resample import resample
from callweaver.errors import ModelUnavailable, ProviderError
from callweaver.frames import (
    EndOfTurnFrame,
    Frame,
    InputAudioFrame,
    LanguageFrame,
    MetricsFrame,
    ReplyEndFrame,
    ReplyTextFrame,
    SpeechPausedFrame,
    SpeechStartedFrame,
    SpeechStoppedFrame,
    TranscriptFrame,
)
from callweaver.pipelines.call import Call, CallReport
from callweaver.pipelines.config import parse_config
from callweaver.processors.stt import SpeechToText, STTParams
from callweaver.resources import whisper
from callweaver.runtime.clock import MonotonicClock
from callweaver.runtime.latency import Stage
from callweaver.services.stt import STT, Transcript, Utterance
from callweaver.services.whisper_stt import WhisperParams, WhisperSTT
from callweaver.testing import ListIO, run_processor
from callweaver.transports.wav import read_wav

ROOT = Path(__file__).parent.parent
QUESTION = ROOT / "examples" / "audio" / "question-book.wav"
EXPECTED = "hello i'd like to book an appointment with a doctor please"
MS = 1_000_000


def human(name: str) -> Path:
    spec = importlib.util.find_spec("moonshine_voice")
    assert spec is not None and spec.submodule_search_locations, "make installs moonshine-voice"
    return Path(next(iter(spec.submodule_search_locations))) / "assets" / name


def wer(ref: str, hyp: str) -> float:
    return edit_distance(words(ref), words(hyp)) / len(words(ref))


async def test_tiny_en_transcribes_human_speech_and_any_rate() -> None:
    stt = WhisperSTT(WhisperParams())
    beckett = read_wav(human("beckett.wav"))
    result = await stt.transcribe(Utterance(beckett.data, beckett.sample_rate))
    assert result.language == "en"
    assert "ever tried" in result.text.lower() and "fail better" in result.text.lower()
    question = read_wav(QUESTION)
    phone = resample(question.data, question.sample_rate, 8000)  # a phone line's rate
    result = await stt.transcribe(Utterance(phone, 8000))
    assert wer(EXPECTED, result.text) <= 0.2, result.text


async def test_one_model_per_process_shared_by_calls() -> None:
    a, b = WhisperSTT(WhisperParams()), WhisperSTT(WhisperParams(), name="other")
    assert a.model is b.model is whisper.shared_model("tiny.en")
    question = read_wav(QUESTION)
    utterance = Utterance(question.data, question.sample_rate)
    results = await asyncio.gather(*(s.transcribe(utterance) for s in (a, b, a)))
    assert len({r.text for r in results}) == 1
    assert a.model.in_flight == 0


async def test_too_short_or_silent_input_is_not_decoded_into_words() -> None:
    stt = WhisperSTT(WhisperParams())
    decodes = stt.model.decodes
    assert (await stt.transcribe(Utterance(bytes(1600), 16000))).text == ""  # 50 ms
    assert stt.model.decodes == decodes


def test_unknown_or_missing_models_are_config_errors() -> None:
    with pytest.raises(ValueError, match="unknown whisper model"):
        WhisperParams(model="large-v9")
    with pytest.raises(ModelUnavailable, match="pip install"):
        whisper._package_dir("no_such_package_here", "tiny.en")


async def test_base_model_is_joined_once_and_speaks_many_languages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLWEAVER_CACHE", str(tmp_path))
    path = whisper.model_dir("base")
    assert path.is_relative_to(tmp_path) and (path / "model.bin").stat().st_size > 100_000_000
    mtime = (path / "model.bin").stat().st_mtime_ns
    assert whisper.model_dir("base") == path
    assert (path / "model.bin").stat().st_mtime_ns == mtime  # not joined again
    model = whisper.WhisperModel("base")
    question = read_wav(QUESTION)
    audio = np.frombuffer(question.data, dtype="<i2").astype(np.float32) / 32768
    result = await model.transcribe(audio)  # no language given: detected
    assert result.language == "en" and wer(EXPECTED, result.text) <= 0.3, result.text
    capped = await model.transcribe(audio, language="en", max_new_tokens=3)
    assert len(capped.text.split()) <= 4


# -- the node ---------------------------------------------------------------------------------


def turn_frames(
    pcm: bytes, rate: int, *, pause_pts: int | None = None, resume: bool = False
) -> list[Frame]:
    """A caller turn as a VAD would send it: audio, speech started, (paused), stopped, end."""
    step = rate // 50 * 2
    chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)]
    frames: list[Frame] = []
    end_pts = len(pcm) // 2 * 1_000_000_000 // rate
    speech_end = end_pts - 200 * MS
    for i, chunk in enumerate(chunks):
        pts = i * 20 * MS
        frames.append(InputAudioFrame(pcm=chunk, sample_rate=rate, pts_ns=pts, turn_id=1))
        if i == 5:
            frames.append(SpeechStartedFrame(pts_ns=60 * MS, turn_id=1))
        if (
            pause_pts is not None
            and pts >= pause_pts
            and not any(isinstance(f, SpeechPausedFrame) for f in frames)
        ):
            frames.append(SpeechPausedFrame(pts_ns=pause_pts, turn_id=1))
    stopped = speech_end if resume or pause_pts is None else pause_pts
    frames.append(SpeechStoppedFrame(pts_ns=stopped, speech_end_ns=0, turn_id=1))
    frames.append(EndOfTurnFrame(speech_end_ns=0, turn_id=1))
    return frames


def question_pcm() -> tuple[bytes, int]:
    q = read_wav(QUESTION)
    return q.data + bytes(q.sample_rate * 2 // 2), q.sample_rate  # + 500 ms of silence


async def test_node_transcribes_at_the_endpoint() -> None:
    pcm, rate = question_pcm()
    node = SpeechToText(STTParams(speculative=False, language="en"))
    run = await run_processor(node, turn_frames(pcm, rate))
    finals = [f for f in run.downstream if isinstance(f, TranscriptFrame)]
    assert len(finals) == 1 and finals[0].final and finals[0].turn_id == 1
    assert wer(EXPECTED, finals[0].text) <= 0.2, finals[0].text
    assert not any(isinstance(f, InputAudioFrame) for f in run.downstream)
    # the endpoint frame goes on ahead of the transcript
    kinds = [type(f) for f in run.downstream if not isinstance(f, MetricsFrame)]
    assert kinds.index(EndOfTurnFrame) < kinds.index(TranscriptFrame)
    assert run.ctx.latency.turns[0].marks.keys() >= {"final_transcript"}


async def test_speculation_at_the_pause_is_used_when_the_turn_ends_there() -> None:
    pcm, rate = question_pcm()
    end = (len(pcm) // 2 - rate // 2) * 1_000_000_000 // rate  # where the speech ends
    node = SpeechToText(STTParams(language="en"))
    run = await run_processor(node, turn_frames(pcm, rate, pause_pts=end))
    finals = [f for f in run.downstream if isinstance(f, TranscriptFrame)]
    assert node.speculations_used == 1 and node.speculations_dropped == 0
    assert wer(EXPECTED, finals[0].text) <= 0.2, finals[0].text


async def test_speculation_is_dropped_when_the_caller_goes_on() -> None:
    pcm, rate = question_pcm()
    node = SpeechToText(STTParams(language="en"))
    # a pause one second in, then more speech: the turn ends later
    run = await run_processor(node, turn_frames(pcm, rate, pause_pts=1000 * MS, resume=True))
    finals = [f for f in run.downstream if isinstance(f, TranscriptFrame)]
    assert node.speculations_used == 0 and node.speculations_dropped == 1
    assert wer(EXPECTED, finals[0].text) <= 0.2, finals[0].text  # the whole turn, not 1 s


class Broken:
    """An STT provider whose engine fails on every utterance."""

    name = "broken"

    async def aclose(self) -> None:
        pass

    async def transcribe(self, utterance: Utterance) -> Transcript:
        raise ProviderError(self.name, "decoder crashed", retryable=True)


class NodeWithBrokenProvider(SpeechToText):
    def providers(self) -> list[STT]:
        return [Broken()]


async def test_every_provider_failing_gives_the_spoken_fallback_and_the_call_goes_on() -> None:
    pcm, rate = question_pcm()
    node = NodeWithBrokenProvider(STTParams(speculative=False, fallback_reply="Pardon?"))
    run = await run_processor(node, turn_frames(pcm, rate) + turn_frames(pcm, rate))
    replies = [f for f in run.downstream if isinstance(f, ReplyTextFrame)]
    assert [r.text for r in replies] == ["Pardon?", "Pardon?"]
    assert sum(isinstance(f, ReplyEndFrame) for f in run.downstream) == 2
    assert run.ctx.errors and "decoder crashed" in run.ctx.errors[0].message


async def test_the_fallback_is_said_in_the_calls_language() -> None:
    pcm, rate = question_pcm()
    fallback = {"en": "Pardon?", "es": "¿Perdón?"}
    params = STTParams(speculative=False, follow_language=False, fallback_reply=fallback)
    node = NodeWithBrokenProvider(params)
    switch = LanguageFrame(call_id="test-call", locale="es-MX", previous="en-US")
    run = await run_processor(node, [*turn_frames(pcm, rate), switch, *turn_frames(pcm, rate)])
    replies = [(f.text, f.language) for f in run.downstream if isinstance(f, ReplyTextFrame)]
    assert replies == [("Pardon?", ""), ("¿Perdón?", "es-MX")]
    assert node.language == ""  # not following: the provider goes on detecting
    with pytest.raises(ValidationError, match="not a language or locale"):
        STTParams(fallback_reply={"Spanish": "¿Perdón?"})
    with pytest.raises(ValidationError, match="one per language"):
        STTParams(fallback_reply={})


@pytest.mark.parametrize(
    ("text", "runaway", "cut"),
    [
        ("Do you take my insurance? Do you take my", False, "Do you take my insurance?"),
        ("Where can I park? Where can I park? Where can", False, "Where can I park?"),
        (
            "How much does a check-up cost? How much does a check-",
            False,
            "How much does a check-up cost?",
        ),
        (
            "is the clinic open on Sunday afternoon is the clinic open on",
            False,
            "is the clinic open on Sunday afternoon",
        ),
        ("I said the same four words the same four words again", False, None),
        (
            "We had everything before us, we had nothing before us. We had nothing before",
            False,
            "We had everything before us, we had nothing before us.",
        ),
        # a whole sentence said twice is read as a loop too (harmless if the caller did)
        ("We had nothing before us. We had nothing before us.", False, "We had nothing before us."),
        ("Hello I need the same four words the same four words the same", True, "cut"),
        ("no no no", False, None),  # a real short repeat is kept
        ("Can I book for two people tonight?", True, None),
    ],
)
def test_cut_repetition(text: str, runaway: bool, cut: str | None) -> None:
    out = whisper.cut_repetition(text, runaway=runaway)
    if cut is None:
        assert out == text
    elif cut == "cut":
        assert out == "Hello I need the same four words"
    else:
        assert out == cut


async def test_short_window_transcribes_like_the_full_one_in_a_fraction_of_the_time() -> None:
    model = whisper.shared_model("tiny.en")
    beckett = read_wav(human("beckett.wav"))
    pcm = resample(beckett.data, beckett.sample_rate, 16000)
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768
    full = await model.transcribe(audio, window="full")
    short = await model.transcribe(audio, window="short")
    assert wer(full.text, short.text) <= 0.1, (full.text, short.text)
    assert short.compute_s < full.compute_s  # measured side by side: ~4x here


@pytest.mark.parametrize("tail_ms", [0, 100])
async def test_short_window_does_not_say_an_utterance_cut_at_its_speech_end_again(
    tail_ms: int,
) -> None:
    # what the STT node sends when the turn ends: from its preroll to the last voiced sample
    # (speculation) or 100 ms after it. The decoder that heard only the short window's
    # positions went round again: "height where is the clinic located where is the clinic
    # located where is the".
    question = read_wav(ROOT / "examples" / "audio" / "question-address.wav")
    samples = np.frombuffer(question.data, dtype="<i2").astype(np.float32) / 32768
    audio = samples[4240 : 38480 + 16 * tail_ms]  # speech ends at sample 38480
    model = whisper.shared_model("tiny.en")
    short = await model.transcribe(audio, language="en", window="short")
    full = await model.transcribe(audio, language="en", window="full")
    assert words(short.text) == words(full.text) == words("height where is the clinic located")


# -- the node with a streaming provider --------------------------------------------------------

SAID = "Hello, I'd like to book an appointment with a doctor, please."


@pytest.fixture
async def azure() -> AsyncIterator[FakeAzure]:
    async with FakeAzure(default=Script(text=SAID, hypothesis_ms=300)) as fake:
        yield fake


class Heard(ListIO):
    """The caller's side paced in real time; what reaches the output, with when it came."""

    def __init__(self) -> None:
        question = read_wav(QUESTION)
        pcm = bytes(6400) + question.data + bytes(32000)  # 0.2 s before, 1 s after
        step = 640  # 20 ms at 16 kHz
        frames = [
            InputAudioFrame(pcm=pcm[i : i + step], sample_rate=16000, pts_ns=i // 2 * 62_500)
            for i in range(0, len(pcm), step)
        ]
        super().__init__(frames, clock=MonotonicClock(), interval_s=0.02)
        self.at: list[tuple[int, Frame]] = []
        self.first_interim = asyncio.Event()
        self.on_write = self._note

    def _note(self, frame: Frame) -> None:
        self.at.append((self.clock.now_ns(), frame))
        if isinstance(frame, TranscriptFrame) and not frame.final:
            self.first_interim.set()

    def transcripts(self) -> list[TranscriptFrame]:
        return [f for _, f in self.at if isinstance(f, TranscriptFrame)]

    def when(self, kind: type[Frame]) -> int:
        return next(t for t, f in self.at if isinstance(f, kind))


async def streaming_call(azure: FakeAzure, io: Heard, **stt: object) -> CallReport:
    """silero VAD -> stt [azure (the fake), whisper], as a config would have it."""
    providers = [{"type": "azure", "key": azure.key, "host": azure.host}, "whisper"]
    config = {
        "name": "streaming-stt",
        "pipeline": {"nodes": [
            {"name": "vad", "type": "silero_vad", "params": {"stop_ms": 200}},
            {"name": "stt", "type": "stt",
             "params": {"language": "en", "providers": providers, **stt}},
        ]},
    }  # fmt: skip
    dep = parse_config(json.dumps(config), "streaming.yaml")
    async with asyncio.timeout(30):
        return await Call(dep.graph, clock=io.clock).run(io)


async def test_node_streams_interim_transcripts_while_the_caller_speaks(azure: FakeAzure) -> None:
    io = Heard()
    report = await streaming_call(azure, io)
    assert report.errors == []
    *interim, final = io.transcripts()
    assert final.final and final.text == SAID and final.language == "en" and final.turn_id == 1
    # the interim ones came during the turn, before its end, one more word each
    texts = [f.text for f in interim]
    assert len(texts) >= 5 and texts[:2] == ["hello,", "hello, i'd"]
    assert not any(f.final for f in interim) and {f.turn_id for f in interim} == {1}
    assert all(t < io.when(SpeechStoppedFrame) for t, f in io.at if f in interim[:5])
    assert io.when(EndOfTurnFrame) < next(t for t, f in io.at if f is final)
    # the service heard the turn as it went: one stream, its audio in before the end
    (recognition,) = azure.recognitions
    assert recognition.started_at is not None and recognition.ended_at is not None
    assert recognition.ended_at - recognition.started_at > 3.5  # in real time, as it was said
    assert recognition.seconds > 3.5  # the preroll and the whole turn (and its pause)
    turn = report.turns[0]
    assert turn.switches == [] and turn.since_speech_end_ms(Stage.FINAL_TRANSCRIPT) is not None


async def test_node_without_streaming_sends_the_utterance_at_the_end(azure: FakeAzure) -> None:
    io = Heard()
    report = await streaming_call(azure, io, stream=False, speculative=False)
    assert report.errors == []
    assert [(f.text, f.final) for f in io.transcripts()] == [(SAID, True)]
    (recognition,) = azure.recognitions
    assert recognition.started_at is not None and recognition.ended_at is not None
    assert recognition.ended_at - recognition.started_at < 0.5  # all of it at the end


async def test_a_stream_broken_mid_turn_gives_the_whole_utterance_to_whisper(
    azure: FakeAzure,
) -> None:
    io = Heard()

    async def break_the_service() -> None:
        await io.first_interim.wait()
        await azure.stop()  # the service goes away while the caller speaks

    async with asyncio.TaskGroup() as tg:
        tg.create_task(break_the_service())
        report = await streaming_call(azure, io)
    *interim, final = io.transcripts()
    assert interim and final.final
    assert wer(EXPECTED, final.text) <= 0.2, final.text  # whisper heard the whole turn
    assert final.text != SAID
    assert report.turns[0].switches == ["stt:azure->whisper"]
    assert not any(isinstance(f, ReplyTextFrame) for _, f in io.at)  # no fallback reply
