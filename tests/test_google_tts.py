"""The Google Cloud TTS provider against a fake server speaking Google's real gRPC protocol.

The provider runs Google's own async client; the fake (``fake_google_tts``) is a grpc.aio
server on loopback serving ``google.cloud.texttospeech.v1.TextToSpeech`` with the SDK's message
classes, and flite's speech as the audio.
"""

from __future__ import annotations

import asyncio
import io
import struct
import time
import wave
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from fake_google_tts import FakeGoogleTTS, Reply, wav_header
from ports import free_port
from pydantic import ValidationError

from callweaver.audio.riff import parse_wav
from callweaver.errors import ProviderError
from callweaver.services.google_tts import GoogleTTS, google_locale
from callweaver.services.tts import TTS, Speech

VOICE = "en-US-Neural2-F"
TEXT = "Your table is booked for seven."
KEY = "AIzaSy-test-0123456789abcdef"
MakeTTS = Callable[..., GoogleTTS]
MODES = [pytest.param(False, id="unary"), pytest.param(True, id="streaming")]
Code = grpc.StatusCode


@pytest.fixture
async def server() -> AsyncIterator[FakeGoogleTTS]:
    async with FakeGoogleTTS() as fake:
        yield fake


@pytest.fixture
async def make_tts(server: FakeGoogleTTS) -> AsyncIterator[MakeTTS]:
    made: list[GoogleTTS] = []

    def make(**params: Any) -> GoogleTTS:
        params = {"voice": VOICE, "endpoint": server.address, "insecure": True, **params}
        tts = GoogleTTS(GoogleTTS.Params(**params), name="gtts")
        made.append(tts)
        return tts

    yield make
    for tts in made:
        await tts.aclose()


async def speak(tts: TTS, text: str = TEXT, language: str = "") -> list[Speech]:
    return [speech async for speech in tts.synthesize(text, language)]


async def failure(
    tts: TTS, chunks: list[Speech] | None = None, language: str = ""
) -> ProviderError:
    """Synthesize TEXT, collecting chunks, and return the ProviderError it ends with."""
    with pytest.raises(ProviderError) as info:
        async for speech in tts.synthesize(TEXT, language):
            if chunks is not None:
                chunks.append(speech)
    return info.value


# -- answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("streaming", "encoding", "rate"),
    [
        (False, "PCM", 24000),
        (False, "LINEAR16", 16000),  # the WAV header is cut off
        (False, "MULAW", 8000),  # WAV header, then mu-law: decoded
        (True, "PCM", 24000),
        (True, "MULAW", 8000),
    ],
)
async def test_the_audio_is_the_servers(
    server: FakeGoogleTTS, make_tts: MakeTTS, streaming: bool, encoding: str, rate: int
) -> None:
    tts = make_tts(streaming=streaming, encoding=encoding, sample_rate=rate)
    speeches = await speak(tts)
    (request,) = server.requests
    assert request.method == ("StreamingSynthesize" if streaming else "SynthesizeSpeech")
    assert (request.voice, request.language_code) == (VOICE, "en-US")
    assert (request.encoding, request.sample_rate, request.text) == (encoding, rate, TEXT)
    assert {s.sample_rate for s in speeches} == {rate}
    pcm = b"".join(s.pcm for s in speeches)
    assert pcm == request.pcm and sum(s.duration_s for s in speeches) > 1.0
    assert len(speeches) == (request.chunks if streaming else 1)


async def test_a_stream_is_handed_on_as_it_comes(server: FakeGoogleTTS, make_tts: MakeTTS) -> None:
    gate = asyncio.Event()
    server.default = Reply(gate=gate, gate_after=1)
    chunks = make_tts(streaming=True).synthesize(TEXT)
    first = await anext(chunks)  # while the server holds back the rest
    (request,) = server.requests
    assert first.pcm == request.pcm and request.chunks == 1
    gate.set()
    rest = [s async for s in chunks]
    assert len(rest) > 3
    assert first.pcm + b"".join(s.pcm for s in rest) == request.pcm


async def test_leaving_a_stream_early_cancels_it(server: FakeGoogleTTS, make_tts: MakeTTS) -> None:
    server.queue.append(Reply(gate=asyncio.Event()))  # never opened
    tts = make_tts(streaming=True)
    chunks = tts.synthesize(TEXT)
    assert isinstance(chunks, AsyncGenerator)
    await anext(chunks)
    await chunks.aclose()  # the barge-in case: the rest is not wanted
    async with asyncio.timeout(2):
        await server.requests[0].ended.wait()
    assert server.requests[0].cancelled
    assert b"".join(s.pcm for s in await speak(tts)) == server.requests[1].pcm


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("streaming", MODES)
@pytest.mark.parametrize(
    ("code", "retryable"),
    [
        (Code.UNAUTHENTICATED, False),
        (Code.PERMISSION_DENIED, False),
        (Code.INVALID_ARGUMENT, False),
        (Code.RESOURCE_EXHAUSTED, True),
        (Code.UNAVAILABLE, True),
        (Code.INTERNAL, True),
    ],
)
async def test_status_errors(
    server: FakeGoogleTTS,
    make_tts: MakeTTS,
    streaming: bool,
    code: grpc.StatusCode,
    retryable: bool,
) -> None:
    server.default = Reply.error(code, f"the server says {code.name}")
    error = await failure(make_tts(streaming=streaming))
    assert error.retryable is retryable and error.provider == "gtts"
    assert f"{code.name}: the server says {code.name}" in str(error)


async def test_a_stream_refused_at_once(server: FakeGoogleTTS, make_tts: MakeTTS) -> None:
    """Google refuses a bad key before it reads a message. grpc-python then often reports
    INTERNAL instead of the server's status (grpc/grpc#36066), about every other time here:
    the provider asks again unary, and the error is always the server's."""
    server.default = Reply.error(Code.UNAUTHENTICATED, at_once=True)
    tts = make_tts(streaming=True)
    for _ in range(20):
        error = await failure(tts)
        assert not error.retryable and "UNAUTHENTICATED" in str(error)


@pytest.mark.parametrize(
    ("then", "retryable"),
    [(Reply(), None), (Reply.error(Code.UNAUTHENTICATED), False)],
    ids=["audio", "unauthenticated"],
)
async def test_a_lost_status_is_asked_again_unary(
    server: FakeGoogleTTS, make_tts: MakeTTS, then: Reply, retryable: bool | None
) -> None:
    """What grpc-python reports when it lost the status, sent by the server itself: the
    deterministic version of the race above."""
    server.queue.extend([Reply.error(Code.INTERNAL, "Internal error from Core"), then])
    tts = make_tts(streaming=True, encoding="MULAW", sample_rate=8000)
    if retryable is None:
        pcm = b"".join(s.pcm for s in await speak(tts))
        assert pcm == server.requests[1].pcm
    else:
        error = await failure(tts)
        assert error.retryable is retryable and "UNAUTHENTICATED" in str(error)
    stream, unary = server.requests
    assert (stream.method, unary.method) == ("StreamingSynthesize", "SynthesizeSpeech")
    assert (unary.voice, unary.encoding, unary.sample_rate, unary.text) == (
        VOICE,
        "MULAW",
        8000,
        TEXT,
    )


@pytest.mark.parametrize("streaming", MODES)
async def test_a_voice_google_does_not_have(
    server: FakeGoogleTTS, make_tts: MakeTTS, streaming: bool
) -> None:
    server.known_voices = {VOICE}
    error = await failure(make_tts(voice="en-US-Bogus-Z", streaming=streaming))
    assert not error.retryable
    assert "INVALID_ARGUMENT" in str(error) and "'en-US-Bogus-Z' does not exist" in str(error)


async def test_api_key_is_sent_and_never_leaks(server: FakeGoogleTTS, make_tts: MakeTTS) -> None:
    server.default = Reply.error(Code.UNAUTHENTICATED, f"API key not valid: {KEY}")
    tts = make_tts(api_key=KEY)
    error = await failure(tts)
    assert not error.retryable and "API key not valid: ***" in str(error)
    assert server.requests[0].metadata["x-goog-api-key"] == KEY
    for text in (str(error), repr(error), repr(tts), repr(tts.params), str(tts.params)):
        assert KEY not in text
    assert KEY not in tts.params.model_dump_json()


@pytest.mark.parametrize("streaming", MODES)
async def test_refused_connection_is_retryable_and_quick(
    make_tts: MakeTTS, streaming: bool
) -> None:
    tts = make_tts(endpoint=f"127.0.0.1:{free_port()}", streaming=streaming)
    await tts.warm()  # best effort: no error
    started = time.monotonic()
    error = await failure(tts)
    assert error.retryable and "UNAVAILABLE" in str(error)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("streaming", MODES)
async def test_back_at_once_when_the_server_is(make_tts: MakeTTS, streaming: bool) -> None:
    """No waiting out gRPC's reconnect backoff once the server listens again."""
    port = free_port()
    tts = make_tts(endpoint=f"127.0.0.1:{port}", streaming=streaming)
    assert (await failure(tts)).retryable
    async with FakeGoogleTTS(port=port) as server:
        assert await speak(tts)
        assert len(server.requests) == 1
        await tts.aclose()


async def test_a_peer_that_never_speaks_grpc(make_tts: MakeTTS) -> None:
    held: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accept, read nothing, answer nothing

    listener = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        tts = make_tts(endpoint=f"127.0.0.1:{port}", connect_timeout_s=0.3)
        started = time.monotonic()
        error = await failure(tts)
        elapsed = time.monotonic() - started
        assert error.retryable and f"cannot connect to 127.0.0.1:{port} within 0.3 s" in str(error)
        assert 0.25 < elapsed < 2
        await tts.aclose()
    finally:
        for writer in held:
            writer.close()
        listener.close()
        await listener.wait_closed()


@pytest.mark.parametrize("streaming", MODES)
async def test_a_server_that_never_answers(
    server: FakeGoogleTTS, make_tts: MakeTTS, streaming: bool
) -> None:
    server.default = Reply(hang=True)
    started = time.monotonic()
    error = await failure(make_tts(streaming=streaming, first_audio_timeout_s=0.3))
    elapsed = time.monotonic() - started
    assert error.retryable and "no audio within 0.3 s" in str(error)
    assert 0.25 < elapsed < 2


async def test_a_stream_that_stalls(server: FakeGoogleTTS, make_tts: MakeTTS) -> None:
    server.default = Reply(gate=asyncio.Event(), gate_after=2)  # never opened
    chunks: list[Speech] = []
    started = time.monotonic()
    error = await failure(make_tts(streaming=True, idle_timeout_s=0.3), chunks)
    assert error.retryable and "stalled: nothing for 0.3 s after 2 chunks" in str(error)
    assert len(chunks) == 2 and time.monotonic() - started < 2


@pytest.mark.parametrize("code", [Code.UNAVAILABLE, Code.INTERNAL, Code.CANCELLED])
async def test_a_stream_cut_midway(
    server: FakeGoogleTTS, make_tts: MakeTTS, code: grpc.StatusCode
) -> None:
    server.default = Reply(cut_after=3, cut_code=code)
    chunks: list[Speech] = []
    error = await failure(make_tts(streaming=True), chunks)
    assert error.retryable and f"stream cut after 3 chunks: {code.name}" in str(error)
    assert b"".join(s.pcm for s in chunks) == server.requests[0].pcm


def pcm_wav(pcm: bytes, rate: int) -> bytes:
    return wav_header(1, rate, 16, len(pcm)) + pcm


@pytest.mark.parametrize(
    ("streaming", "encoding", "raw"),
    [
        (False, "PCM", (b"\x01\x02\x03",)),  # half a sample
        (False, "LINEAR16", (b"<html>Service Unavailable</html>",)),  # no WAV header
        (False, "LINEAR16", (pcm_wav(b"\x01\x02\x03", 24000),)),
        (False, "MULAW", (pcm_wav(b"\x01\x02" * 100, 24000),)),  # a WAV, but not mu-law
        (True, "PCM", (b"\x01\x02\x03\x04", b"\x05")),
    ],
    ids=["odd-pcm", "not-wav", "odd-wav", "wrong-format", "odd-stream"],
)
async def test_garbage_audio_is_retryable(
    server: FakeGoogleTTS,
    make_tts: MakeTTS,
    streaming: bool,
    encoding: str,
    raw: tuple[bytes, ...],
) -> None:
    server.default = Reply(raw=raw)
    error = await failure(make_tts(streaming=streaming, encoding=encoding))
    assert error.retryable and "bad audio" in str(error)


@pytest.mark.parametrize("streaming", MODES)
async def test_no_audio_is_retryable(
    server: FakeGoogleTTS, make_tts: MakeTTS, streaming: bool
) -> None:
    server.default = Reply(raw=(b"",) if streaming else ())
    error = await failure(make_tts(streaming=streaming))
    assert error.retryable and "no audio" in str(error)


# -- the channel ------------------------------------------------------------------------------


class Relay:
    """A TCP relay in front of the server that counts the connections it carries."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.connections = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Server | None = None

    @property
    def address(self) -> str:
        assert self._listener is not None
        return f"127.0.0.1:{self._listener.sockets[0].getsockname()[1]}"

    async def __aenter__(self) -> Relay:
        self._listener = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._listener is not None
        self._listener.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._listener.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        host, port = self.target.split(":")
        up_reader, up_writer = await asyncio.open_connection(host, int(port))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(1 << 16):
                    sink.write(data)
                    await sink.drain()
            except ConnectionError:
                pass
            finally:
                sink.close()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except asyncio.CancelledError:
            pass
        finally:
            writer.close()
            up_writer.close()
            self._tasks.discard(task)


@pytest.mark.parametrize("streaming", MODES)
async def test_warm_then_turns_share_one_connection(
    server: FakeGoogleTTS, make_tts: MakeTTS, streaming: bool
) -> None:
    async with Relay(server.address) as relay:
        tts = make_tts(endpoint=relay.address, streaming=streaming)
        await tts.warm()
        assert relay.connections == 1 and not server.requests  # connected, nothing asked yet
        for _ in range(2):
            assert await speak(tts)
        assert relay.connections == 1
        assert len({r.peer for r in server.requests}) == 1
        await tts.aclose()


async def test_a_closed_provider_opens_a_new_channel(
    server: FakeGoogleTTS, make_tts: MakeTTS
) -> None:
    tts = make_tts()
    await speak(tts)
    await tts.aclose()
    await tts.aclose()  # twice is fine
    assert await speak(tts)
    first, second = server.requests
    assert first.peer != second.peer


async def test_a_secure_channel_with_an_api_key(make_tts: MakeTTS) -> None:
    """TLS and the key in the client's own credentials: nothing listens, so UNAVAILABLE."""
    tts = make_tts(endpoint=f"127.0.0.1:{free_port()}", insecure=False, api_key=KEY)
    error = await failure(tts)
    assert error.retryable and "UNAVAILABLE" in str(error) and KEY not in str(error)


async def test_no_credentials_is_not_retryable(
    make_tts: MakeTTS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    error = await failure(make_tts(insecure=False))
    assert not error.retryable and "no credentials" in str(error)
    await make_tts(insecure=False).warm()  # best effort: no error


def test_a_bad_service_account_file(tmp_path: Path) -> None:
    (tmp_path / "sa.json").write_text('{"type": "service_account", "private_key": "secret"}')
    for path in (tmp_path / "sa.json", tmp_path / "missing.json"):
        params = GoogleTTS.Params(voice=VOICE, credentials_file=str(path))
        with pytest.raises(ProviderError, match="service-account file") as info:
            GoogleTTS(params)
        assert not info.value.retryable and "secret" not in str(info.value)


# -- languages and text -----------------------------------------------------------------------


def test_languages() -> None:
    tts = GoogleTTS(GoogleTTS.Params(voice="cy-GB-Standard-A"))  # a locale not in the list
    assert tts.languages is not None
    assert {"en", "en-US", "en-GB", "fr", "cmn-CN", "zh", "yue", "yue-HK", "zh-HK"} <= tts.languages
    assert {"cy", "cy-GB"} <= tts.languages
    assert google_locale("zh-HK") == google_locale("yue") == "yue-HK"
    assert google_locale("zh_TW") == "cmn-TW" and google_locale("zh-Hans-CN") == "cmn-CN"
    assert google_locale("en-NZ") == google_locale("en") == "en-US"
    assert google_locale("fr") == "fr-FR" and google_locale("fr-ca") == "fr-CA"
    assert google_locale("xx-YY") is None


async def test_the_voice_follows_the_language(server: FakeGoogleTTS, make_tts: MakeTTS) -> None:
    tts = make_tts()
    for language in ("", "en", "en-GB", "fr-CA", "zh-HK", "zh", "pa-IN"):
        assert await speak(tts, language=language)
    asked = [(r.language_code, r.voice) for r in server.requests]
    assert asked == [
        ("en-US", VOICE),
        ("en-US", VOICE),
        ("en-US", VOICE),  # the configured voice for its own language, any region
        ("fr-CA", "fr-CA-Neural2-A"),  # the locale table's voice
        ("yue-HK", "yue-HK-Standard-A"),
        ("cmn-CN", "cmn-CN-Wavenet-A"),
        ("pa-IN", ""),  # not in the table: Google's default voice for it
    ]
    error = await failure(tts, language="xx")
    assert error.retryable and "no Google voice for 'xx'" in str(error)
    assert len(server.requests) == 7


async def test_voices_per_language_and_none_for_the_others(
    server: FakeGoogleTTS, make_tts: MakeTTS
) -> None:
    tts = make_tts(voices={"es": "es-US-Neural2-B", "zh-HK": "yue-HK-Standard-B"},
                   other_languages="none")  # fmt: skip
    for language in ("es-MX", "zh-MO", "en-AU"):
        assert await speak(tts, language=language)
    asked = [(r.language_code, r.voice) for r in server.requests]
    assert asked == [
        ("es-US", "es-US-Neural2-B"),
        ("yue-HK", "yue-HK-Standard-B"),  # zh-MO is Cantonese too
        ("en-US", VOICE),
    ]
    assert tts.languages is not None and "fr" not in tts.languages and "yue" in tts.languages
    error = await failure(tts, language="fr-FR")  # a failover would have skipped it
    assert error.retryable and "no Google voice" in str(error)
    with pytest.raises(ValidationError, match="not a Google voice name"):
        GoogleTTS.Params(voice=VOICE, voices={"es": "Elvira"})
    with pytest.raises(ValidationError, match="not a language or locale"):
        GoogleTTS.Params(voice=VOICE, voices={"Spanish": "es-US-Neural2-B"})


async def test_text_without_words_or_too_long(server: FakeGoogleTTS, make_tts: MakeTTS) -> None:
    tts = make_tts()
    assert await speak(tts, " ... ") == []
    with pytest.raises(ProviderError, match="too long") as info:
        await speak(tts, "word " * 1001)
    assert info.value.retryable
    assert not server.requests


# -- params -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "voice",
    ["en-US-Neural2-F", "cmn-CN-Wavenet-A", "yue-HK-Standard-A", "en-US-Chirp3-HD-Kore"],
)
def test_good_voice_names(voice: str) -> None:
    params = GoogleTTS.Params(voice=voice)
    assert params.language_code == "-".join(voice.split("-")[:2])


@pytest.mark.parametrize(
    "voice",
    ["", "Neural2-F", "en-US", "en-US-", "en_US-Neural2-F", "EN-us-Neural2-F", "en-US-Neural2 F"],
)
def test_bad_voice_names(voice: str) -> None:
    with pytest.raises(ValidationError, match="not a Google voice name"):
        GoogleTTS.Params(voice=voice)


def test_params() -> None:
    params = GoogleTTS.Params(voice=VOICE, language_code="en-GB", api_key=KEY)
    assert params.language_code == "en-GB" and params.sample_rate is None  # the transport's
    assert (params.encoding, params.streaming) == ("auto", False)
    outside = GoogleTTS(params)  # outside a call: 24 kHz PCM
    assert (outside.rate, outside.params.encoding) == (24000, "PCM")
    assert KEY not in repr(params)
    bad: list[dict[str, Any]] = [
        {"language_code": "English!"},
        {"streaming": True, "encoding": "LINEAR16"},  # streaming sends no WAV
        {"encoding": "MP3"},
        {"sample_rate": 4000},
        {"api_key": KEY, "credentials_file": "/etc/sa.json"},
        {"first_audio_timeout_s": 0},
        {"voce": "en-US-Neural2-F"},
    ]
    for extra in bad:
        with pytest.raises(ValidationError):
            GoogleTTS.Params(voice=VOICE, **extra)


# -- the WAV header ---------------------------------------------------------------------------


def test_parse_wav() -> None:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(b"\x01\x00" * 10)
    wav = parse_wav(out.getvalue())
    assert (wav.format_tag, wav.channels, wav.sample_rate, wav.bits) == (1, 1, 22050, 16)
    assert wav.data == b"\x01\x00" * 10

    # mu-law, an odd-sized chunk before the data (padded), a data size past the end
    mulaw = wav_header(7, 8000, 8, 0)[:36] + b"LIST" + struct.pack("<I", 3) + b"abc\0"
    mulaw += b"data" + struct.pack("<I", 1000) + b"\xff" * 10
    wav = parse_wav(mulaw)
    assert (wav.format_tag, wav.sample_rate, wav.bits, wav.data) == (7, 8000, 8, b"\xff" * 10)

    # WAVE_FORMAT_EXTENSIBLE: the sub-format is the format
    fmt = struct.pack("<HHIIHHHHI", 0xFFFE, 1, 16000, 32000, 2, 16, 22, 16, 4)
    fmt += struct.pack("<H", 1) + bytes(14)
    blob = b"RIFF\0\0\0\0WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data\2\0\0\0\1\2"
    assert parse_wav(blob).format_tag == 1

    for broken, why in [
        (b"", "no RIFF"),
        (b"RIFF\0\0\0\0WAVE", "no fmt"),
        (wav_header(1, 8000, 16, 0)[:36], "no data"),
        (b"RIFF\0\0\0\0WAVEdata\0\0\0\0", "before the fmt"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_wav(broken)
