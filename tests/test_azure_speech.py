"""The Azure TTS provider, the USP codec and a process with both providers (the STT:
``test_azure_stt.py``): the real Azure Speech SDK against a fake service speaking Azure's USP
protocol over real WebSockets on loopback (``fake_azure``)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from fake_azure import (
    FakeAzure,
    Script,
    audio_for,
    decode_binary,
    decode_text,
    encode_binary,
    encode_text,
    wav_rate,
    word_boundaries,
)
from ports import free_port
from pydantic import ValidationError

from callweaver.audio.mulaw import ulaw_to_pcm16
from callweaver.errors import ProviderError
from callweaver.services.azure_stt import AzureSTT
from callweaver.services.azure_tts import AzureTTS, _Turn, build_ssml
from callweaver.services.tts import TTS, Speech

TEXT = "Your table for two is booked at seven."
MakeTTS = Callable[..., AzureTTS]


@pytest.fixture
async def server() -> AsyncIterator[FakeAzure]:
    async with FakeAzure() as fake:
        yield fake


@pytest.fixture
async def make_tts(server: FakeAzure) -> AsyncIterator[MakeTTS]:
    made: list[AzureTTS] = []

    def make(**params: Any) -> AzureTTS:
        params = {"key": server.key, "host": server.host, "voice": "en-US-JennyNeural", **params}
        tts = AzureTTS(AzureTTS.Params(**params), name="az")
        made.append(tts)
        return tts

    yield make
    for tts in made:
        await tts.aclose()


async def speak(tts: TTS, text: str = TEXT) -> list[Speech]:
    return [chunk async for chunk in tts.synthesize(text)]


async def tts_failure(tts: AzureTTS, chunks: list[Speech] | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        async for chunk in tts.synthesize(TEXT):
            if chunks is not None:
                chunks.append(chunk)
    return info.value


# -- the USP codec --------------------------------------------------------------------------


def test_usp_frames_round_trip() -> None:
    headers = {"Path": "speech.phrase", "X-RequestId": "abc", "Content-Type": "application/json"}
    text = encode_text(headers, '{"a": 1}')
    assert text.startswith("Path:speech.phrase\r\n") and "\r\n\r\n{" in text
    assert decode_text(text) == (headers, '{"a": 1}')
    frame = encode_binary({"Path": "audio", "X-RequestId": "abc"}, b"\x01\x02\x03")
    assert frame[:2] == len("Path:audio\r\nX-RequestId:abc\r\n").to_bytes(2, "big")
    assert decode_binary(frame) == ({"Path": "audio", "X-RequestId": "abc"}, b"\x01\x02\x03")
    assert decode_binary(encode_binary({"Path": "audio"}, b"")) == ({"Path": "audio"}, b"")
    with pytest.raises(ValueError):
        decode_binary(b"\x00\x10Path:audio")
    with pytest.raises(ValueError):
        decode_text("Path:turn.end")
    riff = b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0" + (8000).to_bytes(4, "little")
    assert wav_rate(riff) == 8000 and wav_rate(b"\0" * 44) is None


# -- TTS ------------------------------------------------------------------------------------


def test_ssml_escapes_the_text_and_names_the_voice() -> None:
    ssml = build_ssml("zh-HK-HiuMaanNeural", "A & B <c> \x01")
    assert '<voice name="zh-HK-HiuMaanNeural">A &amp; B &lt;c&gt;  </voice>' in ssml
    assert 'xml:lang="zh-HK"' in ssml


@pytest.mark.parametrize(
    "voice",
    ["en-US-JennyNeural", "zh-HK-HiuMaanNeural", "zh-CN-shaanxi-XiaoniNeural",
     "sr-Latn-RS-NicholasNeural", "en-US-Ava:DragonHDLatestNeural"],
)  # fmt: skip
def test_voice_names(voice: str) -> None:
    AzureTTS.Params(key="k", region="westeurope", voice=voice)


@pytest.mark.parametrize("bad", [{"voice": "Jenny"}, {"voice": "en-US-Jenny Neural"}, {}])
def test_params_are_checked(bad: dict[str, Any]) -> None:
    fields = {"key": "k", "region": "westeurope", **bad}
    if not bad:
        fields["host"] = "ws://127.0.0.1:1"  # both region and host
    with pytest.raises(ValidationError):
        AzureTTS.Params(**fields)
    with pytest.raises(ValidationError):
        AzureSTT.Params(key="k")  # neither


async def test_tts_streams_audio_as_it_comes(server: FakeAzure, make_tts: MakeTTS) -> None:
    gate = asyncio.Event()
    server.default = Script(gate=gate)
    text = 'Fish & chips <today> for "two", at 7.'
    tts = make_tts()
    chunks = tts.synthesize(text)
    first = await anext(chunks)  # while the fake holds back the rest, turn.end included
    assert first.sample_rate == 24000 and len(first.pcm) == 4800
    assert tts.last_first_audio_s is not None and tts.last_first_audio_s < 1.0
    gate.set()
    rest = [chunk async for chunk in chunks]
    assert first.pcm + b"".join(c.pcm for c in rest) == audio_for(text, "raw-24khz-16bit-mono-pcm")
    assert {c.sample_rate for c in rest} == {24000}

    (request,) = server.syntheses
    assert request.voice == "en-US-JennyNeural" and request.lang == "en-US"
    assert request.output_format == "raw-24khz-16bit-mono-pcm"
    assert request.text == text
    assert "Fish &amp; chips &lt;today&gt;" in request.ssml
    seconds = len(audio_for(text, request.output_format)) / 2 / 24000
    expected = word_boundaries(text, seconds)
    assert [w for _, w in tts.last_word_boundaries] == [w for _, w in expected]
    got = [offset for offset, _ in tts.last_word_boundaries]
    assert got == pytest.approx([offset for offset, _ in expected], abs=1e-6)


@pytest.mark.parametrize(
    ("output_format", "rate"),
    [("raw-8khz-8bit-mono-mulaw", 8000), ("raw-16khz-16bit-mono-pcm", 16000),
     ("raw-48khz-16bit-mono-pcm", 48000)],
)  # fmt: skip
async def test_tts_output_formats(
    server: FakeAzure, make_tts: MakeTTS, output_format: str, rate: int
) -> None:
    chunks = await speak(make_tts(output_format=output_format))
    sent = audio_for(TEXT, output_format)
    expected = ulaw_to_pcm16(sent) if "mulaw" in output_format else sent
    assert b"".join(c.pcm for c in chunks) == expected
    assert {c.sample_rate for c in chunks} == {rate}
    assert server.syntheses[0].output_format == output_format


async def test_tts_warm_then_one_socket_for_every_sentence(
    server: FakeAzure, make_tts: MakeTTS
) -> None:
    tts = make_tts()
    await tts.warm()
    assert server.connections == 1 and not server.syntheses
    await speak(tts, "First sentence.")
    await speak(tts, "Second sentence.")
    assert server.connections == 1
    assert [(s.connection, s.text) for s in server.syntheses] == [
        (1, "First sentence."),
        (1, "Second sentence."),
    ]
    assert server.syntheses[0].request_id != server.syntheses[1].request_id
    assert [w for _, w in tts.last_word_boundaries] == ["Second", "sentence"]


async def test_tts_abandoned_synthesis_then_the_next(server: FakeAzure, make_tts: MakeTTS) -> None:
    gate = asyncio.Event()
    server.default = Script(gate=gate)
    tts = make_tts()
    chunks = tts.synthesize(TEXT)
    await anext(chunks)
    await chunks.aclose()  # a barge-in: the rest is not wanted
    gate.set()
    server.default = Script()
    again = await speak(tts, "Anything else?")
    assert b"".join(c.pcm for c in again) == audio_for("Anything else?", "raw-24khz-16bit-mono-pcm")


async def test_tts_nothing_to_say(server: FakeAzure, make_tts: MakeTTS) -> None:
    assert await speak(make_tts(), " ... ") == []
    assert server.attempts == 0


@pytest.mark.parametrize("how", ["scripted", "wrong key"])
async def test_tts_401_is_final_and_the_key_stays_secret(
    server: FakeAzure, make_tts: MakeTTS, how: str
) -> None:
    key = "wrong-key-5b7e9c" if how == "wrong key" else server.key
    if how == "scripted":
        server.default = Script(status=401)
    tts = make_tts(key=key)
    error = await tts_failure(tts)
    assert not error.retryable and error.provider == "az"
    assert "AuthenticationFailure" in str(error) and "401" in str(error)
    for text in (str(error), repr(error), repr(tts), repr(tts.params), str(tts.params)):
        assert key not in text
    assert key not in tts.params.model_dump_json()


async def test_tts_429_is_retryable(server: FakeAzure, make_tts: MakeTTS) -> None:
    server.default = Script(status=429)
    error = await tts_failure(make_tts())
    assert error.retryable and "TooManyRequests" in str(error)


async def test_tts_stream_cut_by_1011(server: FakeAzure, make_tts: MakeTTS) -> None:
    server.default = Script(close_code=1011, close_after=2)
    chunks: list[Speech] = []
    error = await tts_failure(make_tts(), chunks)
    assert error.retryable and "ServiceError" in str(error) and "1011" in str(error)
    assert len(chunks) == 2  # what came before the cut was let through


async def test_tts_bad_request_is_final(server: FakeAzure, make_tts: MakeTTS) -> None:
    # what Azure does with a voice it does not have: it closes the socket with 1007
    server.default = Script(close_code=1007, reason="Unsupported voice en-US-NobodyNeural.")
    error = await tts_failure(make_tts(voice="en-US-NobodyNeural"))
    assert not error.retryable and "BadRequest" in str(error) and "Unsupported voice" in str(error)


async def test_tts_silent_server_times_out(server: FakeAzure, make_tts: MakeTTS) -> None:
    server.default = Script(hang=True)
    started = time.monotonic()
    error = await tts_failure(make_tts(first_audio_timeout_s=0.5))
    elapsed = time.monotonic() - started
    assert error.retryable and "ServiceTimeout" in str(error)
    assert 0.45 < elapsed < 1.5


async def test_tts_refused_port(make_tts: MakeTTS) -> None:
    started = time.monotonic()
    error = await tts_failure(make_tts(host=f"ws://127.0.0.1:{free_port()}"))
    assert error.retryable and "ConnectionFailure" in str(error)
    assert time.monotonic() - started < 1.0


async def test_tts_garbled_audio(server: FakeAzure, make_tts: MakeTTS) -> None:
    server.default = Script(garbage=True)
    error = await tts_failure(make_tts())
    assert error.retryable and "odd" in str(error)


async def test_tts_word_boundaries_after_the_last_audio_are_kept(make_tts: MakeTTS) -> None:
    """The SDK fires a word's boundary event when the audio reaches its offset, so under load
    the last word's can come after the last audio event: it is placed back on that audio
    (a chunk of no audio, the word's offset negative), not dropped. The SDK's events in the
    order seen on a loaded CI machine, fed to the provider's event reader."""
    tts = make_tts(output_format="raw-16khz-16bit-mono-pcm")
    turn = _Turn()
    second = bytes(32000)  # 1 s of 16 kHz PCM16
    for event in [("word", (0.0, "Hello", True)), ("audio", second),
                  ("word", (0.6, "there", True)), ("completed", None)]:  # fmt: skip
        turn.queue.put_nowait(event)
    chunks = [chunk async for chunk in tts._audio(turn, time.monotonic())]
    assert [(len(c.pcm), c.words) for c in chunks] == [
        (len(second), ((0.0, "Hello"),)),
        (0, ((pytest.approx(-0.4), "there"),)),
    ]


# -- configs and the process ----------------------------------------------------------------


def test_tts_languages() -> None:
    tts = AzureTTS(AzureTTS.Params(key="k", region="westeurope"))
    assert tts.name == "azure"
    assert tts.languages is not None and len(tts.languages) >= 50
    assert {"zh-HK", "yue", "zh-CN", "zh-TW", "zh", "en", "en-US"} <= tts.languages


EXIT_SCRIPT = """
import asyncio, sys
sys.path.insert(0, {tests!r})
from fake_azure import FakeAzure, flite_pcm
from callweaver.services.azure_stt import AzureSTT
from callweaver.services.azure_tts import AzureTTS
from callweaver.services.stt import Utterance

async def main():
    async with FakeAzure() as server:
        where = {{"key": server.key, "host": server.host}}
        tts = AzureTTS(AzureTTS.Params(**where))
        stt = AzureSTT(AzureSTT.Params(**where))
        await tts.warm()
        chunks = [c async for c in tts.synthesize("Goodbye.")]
        text = (await stt.transcribe(Utterance(flite_pcm("Bye."), 16000))).text
        print(len(chunks) > 0, bool(text))
        if {close}:
            await tts.aclose()
            await stt.aclose()

asyncio.run(main())
"""


@pytest.mark.parametrize("close", [True, False])
def test_process_exits_cleanly(close: bool) -> None:
    """The SDK can abort the interpreter at exit (rc 134) when a synthesizer or recognizer
    still has Python callbacks: not with these providers, closed or not."""
    script = EXIT_SCRIPT.format(tests=str(Path(__file__).parent), close=close)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "True"]
