"""A fake Google Cloud Text-to-Speech server: a real grpc.aio server on loopback speaking
``google.cloud.texttospeech.v1.TextToSpeech`` with the SDK's own message classes.

It serves ``SynthesizeSpeech`` (unary: the whole audio in one response, with a WAV header for
LINEAR16 and MULAW as Google sends it) and ``StreamingSynthesize`` (bidirectional: a first
request with ``streaming_config``, then ``input.text`` requests, each answered with chunks of
raw PCM or mu-law as soon as it comes). The audio is the request's text spoken by flite, at
the requested sample rate. What a request gets is scripted with :class:`Reply`: the next one
in ``queue`` if any, else ``default``::

    async with FakeGoogleTTS() as server:
        server.queue.append(Reply.error(grpc.StatusCode.RESOURCE_EXHAUSTED))
        ... GoogleTTS.Params(endpoint=server.address, insecure=True, ...)
        (request,) = server.requests
        assert request.voice == "en-US-Neural2-F" and pcm == request.pcm

Every request is recorded (:class:`Request`): voice, language, encoding, rate, text, the
client's address (one per connection) and its metadata. ``known_voices``, when set, makes the
server reject other voice names with INVALID_ARGUMENT, as Google does.
"""

from __future__ import annotations

import asyncio
import functools
import io
import struct
import subprocess
import tempfile
import wave
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.cloud.texttospeech_v1.types import cloud_tts
from loopback import LoopbackServer

from callweaver.audio.mulaw import pcm16_to_ulaw, ulaw_to_pcm16
from callweaver.audio.resample import resample

SERVICE = "google.cloud.texttospeech.v1.TextToSpeech"
CHUNK_MS = 100  # streaming audio is sent in pieces of this length
_MESSAGES = {
    grpc.StatusCode.UNAUTHENTICATED: "Request had invalid authentication credentials. "
    "Expected OAuth 2 access token, login cookie or other valid authentication credential.",
    grpc.StatusCode.PERMISSION_DENIED: "Cloud Text-to-Speech API has not been used in project "
    "123 before or it is disabled.",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "Quota exceeded for quota metric 'Requests' and limit "
    "'Requests per minute'.",
    grpc.StatusCode.UNAVAILABLE: "The service is currently unavailable.",
    grpc.StatusCode.INTERNAL: "Internal error encountered.",
    grpc.StatusCode.INVALID_ARGUMENT: "Voice 'en-US-Bogus-Z' does not exist. Is it misspelled?",
}


@dataclass(frozen=True)
class Reply:
    """How the server answers one request.

    ``code`` other than OK aborts the call with that status and ``message`` (default: Google's
    usual words for it), after the stream's first message or, with ``at_once``, before it (as
    Google refuses a bad key). Otherwise the audio is the text spoken by flite, or the writes in
    ``raw`` verbatim (one ``audio_content`` each; joined for the unary method). Faults:
    ``hang`` never answers; ``cut_after=n`` aborts a stream with ``cut_code`` after n chunks;
    ``gate`` holds a stream after ``gate_after`` chunks until the event is set.
    """

    code: grpc.StatusCode = grpc.StatusCode.OK
    message: str | None = None
    at_once: bool = False
    raw: tuple[bytes, ...] | None = None
    hang: bool = False
    cut_after: int | None = None
    cut_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    gate: asyncio.Event | None = None
    gate_after: int = 1

    @classmethod
    def error(
        cls, code: grpc.StatusCode, message: str | None = None, *, at_once: bool = False
    ) -> Reply:
        return cls(code=code, message=message, at_once=at_once)


@dataclass
class Request:
    """A request as the server got it. ``pcm`` is what the client should decode from the
    audio sent back (PCM16, after mu-law decoding when mu-law was asked for)."""

    method: str  # "SynthesizeSpeech" or "StreamingSynthesize"
    voice: str
    language_code: str
    encoding: str
    sample_rate: int
    text: str
    peer: str
    metadata: dict[str, str]
    pcm: bytes = field(default=b"", repr=False)
    chunks: int = 0  # audio messages sent
    cancelled: bool = False  # the client (or the server's stop) cancelled the call
    ended: asyncio.Event = field(default_factory=asyncio.Event, repr=False)  # streams only


@dataclass
class FakeGoogleTTS(LoopbackServer):
    """The server (see the module docstring). ``address`` is ``127.0.0.1:PORT``; ``port`` 0
    (the default) takes a free one."""

    default: Reply = field(default_factory=Reply)
    known_voices: set[str] | None = None
    queue: deque[Reply] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    _server: grpc.aio.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        server = grpc.aio.server()
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "SynthesizeSpeech": grpc.unary_unary_rpc_method_handler(
                    self._synthesize,
                    request_deserializer=cloud_tts.SynthesizeSpeechRequest.deserialize,
                    response_serializer=cloud_tts.SynthesizeSpeechResponse.serialize,
                ),
                "StreamingSynthesize": grpc.stream_stream_rpc_method_handler(
                    self._stream,
                    request_deserializer=cloud_tts.StreamingSynthesizeRequest.deserialize,
                    response_serializer=cloud_tts.StreamingSynthesizeResponse.serialize,
                ),
            },
        )
        server.add_generic_rpc_handlers((handler,))
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        await server.start()
        self._server = server

    async def stop(self) -> None:
        """Stop at once: calls still open (hanging ones included) are cancelled."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace=None)

    def next_reply(self) -> Reply:
        return self.queue.popleft() if self.queue else self.default

    # -- the two methods ------------------------------------------------------------------

    async def _synthesize(
        self, message: cloud_tts.SynthesizeSpeechRequest, context: grpc.aio.ServicerContext
    ) -> cloud_tts.SynthesizeSpeechResponse:
        config = message.audio_config
        request = self._record(
            "SynthesizeSpeech",
            message.voice,
            config.audio_encoding,
            config.sample_rate_hertz,
            message.input.text,
            context,
        )
        reply = self.next_reply()
        await self._refuse(reply, request, context)
        if reply.raw is not None:
            return cloud_tts.SynthesizeSpeechResponse(audio_content=b"".join(reply.raw))
        pcm = await speech(request.text, request.sample_rate)
        request.pcm = pcm
        if request.encoding == "PCM":
            audio = pcm
        elif request.encoding == "MULAW":
            audio = pcm16_to_ulaw(pcm)
            request.pcm = ulaw_to_pcm16(audio)
            audio = wav_header(7, request.sample_rate, 8, len(audio)) + audio
        else:  # LINEAR16, and what the fake does not encode
            audio = wav_header(1, request.sample_rate, 16, len(pcm)) + pcm
        return cloud_tts.SynthesizeSpeechResponse(audio_content=audio)

    async def _stream(
        self,
        messages: AsyncIterator[cloud_tts.StreamingSynthesizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[cloud_tts.StreamingSynthesizeResponse]:
        reply = self.next_reply()
        if reply.at_once:
            try:
                await context.abort(reply.code, reply.message or _MESSAGES.get(reply.code, ""))
            finally:
                voice = cloud_tts.VoiceSelectionParams()
                self._record("StreamingSynthesize", voice, 0, 0, "", context)
        first = await anext(aiter(messages), None)
        if first is None or "streaming_config" not in first:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "The first request must carry streaming_config."
            )
            return
        config = first.streaming_config
        audio_config = config.streaming_audio_config
        request = self._record(
            "StreamingSynthesize",
            config.voice,
            audio_config.audio_encoding,
            audio_config.sample_rate_hertz,
            "",
            context,
        )
        try:
            await self._refuse(reply, request, context)
            if request.encoding not in ("PCM", "MULAW"):
                await context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT, f"Unsupported encoding {request.encoding}."
                )
            async for response in self._audio(reply, request, messages, context):
                yield response
                request.chunks += 1
        except asyncio.CancelledError:
            request.cancelled = True
            raise
        finally:
            request.ended.set()

    async def _audio(
        self,
        reply: Reply,
        request: Request,
        messages: AsyncIterator[cloud_tts.StreamingSynthesizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[cloud_tts.StreamingSynthesizeResponse]:
        """The responses of a stream: each input message's speech as it comes."""
        if reply.raw is not None:
            async for _ in messages:
                pass
            for audio in reply.raw:
                yield cloud_tts.StreamingSynthesizeResponse(audio_content=audio)
            return
        async for message in messages:
            text = message.input.text
            request.text += text
            pcm = await speech(text, request.sample_rate)
            step = request.sample_rate * CHUNK_MS // 1000 * 2
            for start in range(0, len(pcm), step):
                if request.chunks == reply.cut_after:
                    await context.abort(reply.cut_code, "Connection reset by peer.")
                if reply.gate is not None and request.chunks == reply.gate_after:
                    await reply.gate.wait()
                piece = pcm[start : start + step]
                if request.encoding == "MULAW":
                    audio = pcm16_to_ulaw(piece)
                    request.pcm += ulaw_to_pcm16(audio)
                else:
                    audio = piece
                    request.pcm += piece
                yield cloud_tts.StreamingSynthesizeResponse(audio_content=audio)

    # -- helpers --------------------------------------------------------------------------

    def _record(
        self,
        method: str,
        voice: cloud_tts.VoiceSelectionParams,
        encoding: Any,
        sample_rate: int,
        text: str,
        context: grpc.aio.ServicerContext,
    ) -> Request:
        metadata = {key: str(value) for key, value in context.invocation_metadata() or ()}
        request = Request(
            method=method,
            voice=voice.name,
            language_code=voice.language_code,
            encoding=cloud_tts.AudioEncoding(encoding).name,
            sample_rate=sample_rate,
            text=text,
            peer=context.peer(),
            metadata=metadata,
        )
        self.requests.append(request)
        return request

    async def _refuse(
        self, reply: Reply, request: Request, context: grpc.aio.ServicerContext
    ) -> None:
        """Abort the call if the reply is an error, a hang, or the voice is unknown."""
        if reply.hang:
            await asyncio.Event().wait()  # until the client gives up or the server stops
        if reply.code != grpc.StatusCode.OK:
            await context.abort(reply.code, reply.message or _MESSAGES.get(reply.code, "Error."))
        if self.known_voices is not None and request.voice not in self.known_voices:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"Voice '{request.voice}' does not exist. Is it misspelled?",
            )


def wav_header(format_tag: int, rate: int, bits: int, size: int) -> bytes:
    """A 44-byte RIFF/WAVE header for ``size`` bytes of mono audio (format 1: PCM, 7: mu-law)."""
    block = bits // 8
    fmt = struct.pack("<HHIIHH", format_tag, 1, rate, rate * block, block, bits)
    return (
        b"RIFF"
        + struct.pack("<I", 36 + size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", size)
    )


async def speech(text: str, rate: int) -> bytes:
    """``text`` spoken by flite's slt voice, PCM16 mono at ``rate`` (cached per text and rate)."""
    return await asyncio.to_thread(_speech, text, rate)


@functools.cache
def _speech(text: str, rate: int) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "speech.wav"
        subprocess.run(
            ["flite", "-voice", "slt", "-o", str(out), "-t", text], check=True, capture_output=True
        )
        with wave.open(io.BytesIO(out.read_bytes()), "rb") as w:
            source_rate, pcm = w.getframerate(), w.readframes(w.getnframes())
    return pcm if source_rate == rate else resample(pcm, source_rate, rate)
