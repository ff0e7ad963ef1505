"""The ElevenLabs TTS provider against a fake server speaking ElevenLabs' HTTP streaming and
stream-input WebSocket protocols on loopback, with real (flite) speech."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fake_elevenlabs import FakeElevenLabs, Reply, speech
from ports import free_port
from pydantic import ValidationError

from callweaver.audio.mulaw import ulaw_to_pcm16
from callweaver.errors import ProviderError
from callweaver.services.elevenlabs_tts import ElevenLabsTTS
from callweaver.services.elevenlabs_wire import AudioDecoder
from callweaver.services.tts import TTS, Speech

KEY = "sk_0123456789abcdef0123456789abcdef"
VOICE = "21m00Tcm4TlvDq8ikWAM"
TEXT = "Hello, thanks for calling. How can I help?"
TRANSPORTS = ["http", "websocket"]
MakeTTS = Callable[..., ElevenLabsTTS]


@pytest.fixture
async def server() -> AsyncIterator[FakeElevenLabs]:
    async with FakeElevenLabs(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def make_tts(server: FakeElevenLabs) -> AsyncIterator[MakeTTS]:
    made: list[ElevenLabsTTS] = []

    def make(**params: Any) -> ElevenLabsTTS:
        params = {"api_key": KEY, "voice_id": VOICE, "base_url": server.base_url, **params}
        tts = ElevenLabsTTS(ElevenLabsTTS.Params(**params), name="11labs")
        made.append(tts)
        return tts

    yield make
    for tts in made:
        await tts.aclose()


async def spoken(tts: ElevenLabsTTS, text: str = TEXT, language: str = "") -> list[Speech]:
    return [s async for s in tts.synthesize(text, language)]


async def failure(
    tts: ElevenLabsTTS, text: str = TEXT, chunks: list[Speech] | None = None
) -> ProviderError:
    """Synthesize ``text``, collecting chunks, and return the ProviderError it ends with."""
    with pytest.raises(ProviderError) as info:
        async for chunk in tts.synthesize(text):
            if chunks is not None:
                chunks.append(chunk)
    return info.value


# -- the normal answer ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["pcm_16000", "pcm_24000", "ulaw_8000"])
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_streams_the_servers_audio(
    server: FakeElevenLabs, make_tts: MakeTTS, transport: str, fmt: str
) -> None:
    gate = asyncio.Event()
    server.default = Reply(gate=gate, gate_after=1)
    tts: TTS = make_tts(transport=transport, output_format=fmt)
    audio = tts.synthesize(TEXT)
    first = await anext(audio)  # while the server holds back the rest
    (request,) = server.requests
    assert 0 < len(request.audio) < len(speech(TEXT, fmt))
    gate.set()
    chunks = [first] + [s async for s in audio]

    rate = 8000 if fmt == "ulaw_8000" else int(fmt.removeprefix("pcm_"))
    assert {c.sample_rate for c in chunks} == {rate}
    assert all(c.pcm and len(c.pcm) % 2 == 0 for c in chunks)  # no torn samples
    sent = request.audio
    expected = ulaw_to_pcm16(sent) if fmt == "ulaw_8000" else sent
    assert b"".join(c.pcm for c in chunks) == expected
    assert sent == speech(TEXT, fmt) and len(chunks) > 3
    assert sum(c.duration_s for c in chunks) > 1.0

    assert (request.voice_id, request.model_id) == (VOICE, "eleven_flash_v2_5")
    assert request.output_format == fmt
    assert request.key == KEY and request.headers["xi-api-key"] == "***"
    if transport == "http":
        assert (request.method, request.path) == ("POST", f"/v1/text-to-speech/{VOICE}/stream")
        assert request.body == {"text": TEXT, "model_id": "eleven_flash_v2_5"}
    else:
        assert request.path == f"/v1/text-to-speech/{VOICE}/stream-input"
        assert request.query["inactivity_timeout"] == "20"
        opening, text, end = request.messages
        assert opening == {"text": " ", "generation_config": {"chunk_length_schedule": [50]}}
        assert text == {"text": TEXT + " ", "flush": True}
        assert end == {"text": ""}


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_voice_settings_and_language(
    server: FakeElevenLabs, make_tts: MakeTTS, transport: str
) -> None:
    settings = {"stability": 0.4, "similarity_boost": 0.8}
    tts = make_tts(transport=transport, voice_settings=settings, model_id="eleven_turbo_v2_5")
    assert await spoken(tts, "Hola.", language="es-MX")
    (request,) = server.requests
    assert request.model_id == "eleven_turbo_v2_5"
    if transport == "http":
        assert request.body["voice_settings"] == settings
        assert request.body["language_code"] == "es"
    else:
        assert request.messages[0]["voice_settings"] == settings
        assert request.query["language_code"] == "es"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_nothing_to_say_sends_nothing(
    server: FakeElevenLabs, make_tts: MakeTTS, transport: str
) -> None:
    assert await spoken(make_tts(transport=transport), " ... ") == []
    assert server.requests == []


def test_languages_are_flash_v2_5s_without_cantonese() -> None:
    params = ElevenLabsTTS.Params(api_key=KEY, voice_id=VOICE)
    languages = ElevenLabsTTS(params).languages
    assert {"en", "es", "zh", "ja", "hi", "fr-CA", "pt-BR"} <= languages
    assert not {"yue", "zh-HK", "zh-MO", "zh-yue"} & {lang for lang in languages}


async def test_cantonese_is_refused_without_a_request(
    server: FakeElevenLabs, make_tts: MakeTTS
) -> None:
    tts = make_tts()
    for language in ("zh-HK", "yue", "sw"):
        with pytest.raises(ProviderError, match="does not speak") as info:
            await spoken(tts, language=language)
        assert info.value.retryable  # another provider may speak it
    assert await spoken(tts, "Ni hao.", language="zh-CN")
    assert len(server.requests) == 1


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_bad_key_is_not_retryable_and_never_shown(
    server: FakeElevenLabs, make_tts: MakeTTS, transport: str
) -> None:
    wrong = "sk_wrong_0123456789abcdef0123456789"
    tts = make_tts(transport=transport, api_key=wrong)
    error = await failure(tts)
    assert not error.retryable and error.provider == "11labs"
    assert "invalid_api_key" in str(error) and "***" in str(error)
    assert server.requests[0].key == wrong  # the server got it, and echoed it back
    for text in (str(error), repr(error), repr(tts), repr(tts.params), str(tts.params)):
        assert wrong not in text
    assert wrong not in tts.params.model_dump_json()


STATUSES = [(429, True), (500, True), (503, True), (403, False), (404, False), (422, False)]


@pytest.mark.parametrize(("status", "retryable"), STATUSES)
@pytest.mark.parametrize("transport", ["http", "websocket", "websocket-handshake"])
async def test_status_errors(
    server: FakeElevenLabs, make_tts: MakeTTS, transport: str, status: int, retryable: bool
) -> None:
    reject = transport == "websocket-handshake"
    server.default = Reply.error_reply(status, f"server says {status}", reject=reject)
    error = await failure(make_tts(transport=transport.removesuffix("-handshake")))
    assert error.retryable is retryable
    assert f"server says {status}" in str(error)
    if transport != "websocket":
        assert f"HTTP {status}" in str(error)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_unknown_model_is_not_retryable(
    server: FakeElevenLabs, make_tts: MakeTTS, transport: str
) -> None:
    server.default = Reply.error_reply(
        422, "model_id eleven_nope is not a TTS model", error="model_not_found", validation=True
    )
    error = await failure(make_tts(transport=transport, model_id="eleven_nope"))
    assert not error.retryable and "eleven_nope" in str(error)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_refused_connection_is_retryable_and_quick(make_tts: MakeTTS, transport: str) -> None:
    tts = make_tts(transport=transport, base_url=f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    error = await failure(tts)
    assert error.retryable and "cannot connect" in str(error)
    assert time.monotonic() - started < 1
    await tts.warm()  # best effort: no error


@pytest.mark.parametrize(
    ("transport", "reply"),
    [
        ("http", Reply(hang=True)),
        ("websocket", Reply(hang=True)),  # the handshake completes, then nothing
        ("websocket", Reply(hang_upgrade=True)),  # not even the handshake
    ],
    ids=["http", "websocket", "websocket-handshake"],
)
async def test_a_server_that_never_answers(
    server: FakeElevenLabs, make_tts: MakeTTS, transport: str, reply: Reply
) -> None:
    server.default = reply
    started = time.monotonic()
    error = await failure(make_tts(transport=transport, first_audio_timeout_s=0.3))
    elapsed = time.monotonic() - started
    assert error.retryable and "no audio within 0.3 s" in str(error)
    assert 0.25 < elapsed < 1.5


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_stalled_stream_is_retryable(
    server: FakeElevenLabs, make_tts: MakeTTS, transport: str
) -> None:
    server.default = Reply(gate=asyncio.Event(), gate_after=2)  # never opened
    chunks: list[Speech] = []
    started = time.monotonic()
    error = await failure(make_tts(transport=transport, idle_timeout_s=0.3), chunks=chunks)
    assert error.retryable and "stalled" in str(error)
    assert len(chunks) == 2
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("transport", "reply"),
    [
        ("http", Reply(cut_after=3)),
        ("websocket", Reply(cut_after=3)),  # the TCP connection drops
        ("websocket", Reply(cut_after=3, close_code=1011)),
        ("websocket", Reply(cut_after=3, close_code=1000)),  # a clean close, but no isFinal
        ("websocket", Reply(final=False)),  # all the audio, but no isFinal
    ],
    ids=["http", "ws-drop", "ws-1011", "ws-1000", "ws-no-final"],
)
async def test_cut_stream_is_retryable(
    server: FakeElevenLabs, make_tts: MakeTTS, transport: str, reply: Reply
) -> None:
    server.default = reply
    chunks: list[Speech] = []
    error = await failure(make_tts(transport=transport), chunks=chunks)
    assert error.retryable
    assert len(chunks) >= 3
    assert "cut" in str(error) or "1011" in str(error)


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_garbage_audio_is_retryable(
    server: FakeElevenLabs, make_tts: MakeTTS, transport: str
) -> None:
    server.default = Reply(garbage=True)
    error = await failure(make_tts(transport=transport))
    assert error.retryable
    assert ("odd-length" if transport == "http" else "base64") in str(error)


async def test_a_200_that_is_not_audio(server: FakeElevenLabs, make_tts: MakeTTS) -> None:
    server.default = Reply(content_type="text/html; charset=utf-8")  # a proxy's page
    error = await failure(make_tts())
    assert error.retryable and "not audio" in str(error)


# -- streaming text in -------------------------------------------------------------------------


async def test_synthesize_stream_sends_pieces_as_they_come(
    server: FakeElevenLabs, make_tts: MakeTTS
) -> None:
    heard = asyncio.Event()
    pieces = ["Hello there, ", "this is a ", "reply that is ", "still being ", "written. "]
    last = "Goodbye for now."

    async def tokens() -> AsyncIterator[str]:
        for piece in pieces:
            yield piece
        async with asyncio.timeout(5):
            await heard.wait()  # audio came before the last piece is even written
        yield last

    tts = make_tts(transport="websocket")
    chunks: list[Speech] = []
    async for chunk in tts.synthesize_stream(tokens()):
        chunks.append(chunk)
        heard.set()

    (request,) = server.requests
    assert request.texts == [" ", *pieces, last, " ", ""]
    assert request.messages[-2] == {"text": " ", "flush": True}
    kinds = [kind for kind, _ in request.timeline]
    assert kinds.index("audio") < request.timeline.index(("text", last))
    assert b"".join(c.pcm for c in chunks) == request.audio
    assert request.audio == speech("".join(pieces).strip()) + speech(last)


async def test_a_slow_text_source_is_not_the_providers_timeout(
    server: FakeElevenLabs, make_tts: MakeTTS
) -> None:
    async def tokens() -> AsyncIterator[str]:
        yield "Hello "
        await asyncio.sleep(0.5)  # the LLM thinks; too little text for the server to speak
        yield "there."

    tts = make_tts(transport="websocket", first_audio_timeout_s=0.3, idle_timeout_s=0.3)
    chunks = [c async for c in tts.synthesize_stream(tokens())]
    assert b"".join(c.pcm for c in chunks) == speech("Hello there.")


async def test_synthesize_stream_raises_the_text_sources_error(
    server: FakeElevenLabs, make_tts: MakeTTS
) -> None:
    llm_error = ProviderError("llm", "model overloaded", retryable=True)

    async def tokens() -> AsyncIterator[str]:
        yield "Hello "
        raise llm_error

    with pytest.raises(ProviderError) as info:
        async for _ in make_tts(transport="websocket").synthesize_stream(tokens()):
            pass
    assert info.value is llm_error


async def test_synthesize_stream_over_http_speaks_the_whole_text(
    server: FakeElevenLabs, make_tts: MakeTTS
) -> None:
    async def tokens() -> AsyncIterator[str]:
        for piece in ("Good ", "morning."):
            yield piece

    chunks = [c async for c in make_tts().synthesize_stream(tokens())]
    assert b"".join(c.pcm for c in chunks) == speech("Good morning.")
    assert server.requests[0].texts == ["Good morning."]


# -- connections -------------------------------------------------------------------------------


async def test_warm_then_syntheses_reuse_one_connection(
    server: FakeElevenLabs, make_tts: MakeTTS
) -> None:
    tts = make_tts()
    await tts.warm()
    for _ in range(2):
        assert await spoken(tts)
    stream = f"/v1/text-to-speech/{VOICE}/stream"
    assert [r.path for r in server.requests] == ["/v1/models", stream, stream]
    assert server.requests[0].key == KEY
    assert server.connections == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_leaving_early_closes_the_stream(
    server: FakeElevenLabs, make_tts: MakeTTS, transport: str
) -> None:
    server.queue.append(Reply(gate=asyncio.Event()))  # never opened
    tts = make_tts(transport=transport)
    audio = tts.synthesize(TEXT)
    assert isinstance(audio, AsyncGenerator)
    assert await anext(audio)
    started = time.monotonic()
    await audio.aclose()  # barge-in: the rest is not wanted
    assert time.monotonic() - started < 0.5
    assert await spoken(tts)  # the next sentence, on a new connection
    assert server.connections == 2


async def test_the_sdk_speaks_the_fakes_protocol(server: FakeElevenLabs) -> None:
    """The fake is checked against the vendor's own client: same path, query, header, body."""
    sdk = pytest.importorskip("elevenlabs.client")
    async with httpx.AsyncClient() as http:
        client = sdk.AsyncElevenLabs(api_key=KEY, base_url=server.base_url, httpx_client=http)
        stream = client.text_to_speech.stream(
            VOICE, text=TEXT, model_id="eleven_flash_v2_5", output_format="pcm_16000"
        )
        audio = b"".join([chunk async for chunk in stream])
    assert audio == speech(TEXT)
    (request,) = server.requests
    assert request.key == KEY and request.output_format == "pcm_16000"
    assert request.body["text"] == TEXT and request.model_id == "eleven_flash_v2_5"


# -- params and the decoder --------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        {"voice_id": "Rachel"},
        {"voice_id": "21m00Tcm4TlvDq8ikWA"},  # 19 characters
        {"voice_id": "21m00Tcm4TlvDq8ikWA-"},
        {"output_format": "mp3_44100_128"},
        {"transport": "grpc"},
        {"chunk_length_schedule": [10]},
        {"base_url": "api.elevenlabs.io"},
        {"voce_id": VOICE},
    ],
)
def test_params_validation(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ElevenLabsTTS.Params(**{"api_key": KEY, "voice_id": VOICE, **bad})


def test_params_defaults_and_required_key() -> None:
    with pytest.raises(ValidationError, match="api_key"):
        ElevenLabsTTS.Params(voice_id=VOICE)  # type: ignore[call-arg]
    params = ElevenLabsTTS.Params(api_key=KEY, voice_id=VOICE)
    assert (params.model_id, params.output_format) == ("eleven_flash_v2_5", "auto")
    assert ElevenLabsTTS(params).sample_rate == 16000  # pcm_16000 outside a call
    assert (params.transport, params.base_url) == ("http", "https://api.elevenlabs.io")
    assert ElevenLabsTTS(params).name == "elevenlabs"


def test_audio_decoder_keeps_half_samples() -> None:
    decoder = AudioDecoder("pcm_22050")
    assert decoder.sample_rate == 22050
    assert decoder.feed(b"\x01\x02\x03") == b"\x01\x02"
    assert decoder.feed(b"") == b""
    assert decoder.feed(b"\x04\x05") == b"\x03\x04"
    with pytest.raises(ValueError, match="odd-length"):
        decoder.finish()
    assert decoder.feed(b"\x06") == b"\x05\x06"
    decoder.finish()

    ulaw = AudioDecoder("ulaw_8000")
    assert ulaw.sample_rate == 8000
    assert ulaw.feed(b"\xff\x00\x7f") == ulaw_to_pcm16(b"\xff\x00\x7f")
    ulaw.finish()
