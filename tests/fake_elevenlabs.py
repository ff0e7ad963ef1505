"""A fake ElevenLabs text-to-speech server: real HTTP/1.1 and a real WebSocket on loopback.

It serves what the ElevenLabs provider speaks, on one port:

- ``POST /v1/text-to-speech/{voice_id}/stream?output_format=...`` with a JSON body
  (``text``, ``model_id``, ...): the raw audio, streamed in chunks (chunked encoding);
- ``GET /v1/text-to-speech/{voice_id}/stream-input?model_id=&output_format=&...``, a
  WebSocket (websockets' sans-I/O server protocol over the same socket): the first message
  ``{"text": " ", ...}`` (its ``generation_config.chunk_length_schedule`` is honoured), text
  messages (``flush`` generates at once), ``{"text": ""}`` to end; it answers with
  ``{"audio": base64, "alignment": ..., "normalizedAlignment": ...}`` messages, then
  ``{"isFinal": true}``, and closes with 1000;
- ``GET /v1/models`` (what ``warm()`` asks).

Every request must carry the ``xi-api-key`` header with ``api_key``; another key gets a 401
that echoes it (real servers do), over HTTP or as a WebSocket error message and a 1008 close.
The audio is real speech: flite's slt voice (16 kHz) converted to the requested format
(:func:`speech`). What a request gets is scripted with :class:`Reply`: the next one in
``queue`` if any, else ``by_voice[voice_id]``, else ``default``::

    async with FakeElevenLabs(api_key=KEY) as server:
        server.queue.append(Reply.error(429))
        server.by_voice[OTHER] = Reply(cut_after=2)
        ... ElevenLabsTTS.Params(base_url=server.base_url, ...)
        (request,) = server.requests
        assert request.texts == ["Hello."] and request.key == KEY
"""

from __future__ import annotations

import asyncio
import base64
import functools
import io
import json
import logging
import re
import subprocess
import tempfile
import wave
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from loopback import Body, Cut, Head, HTTPLoopback, read_body, send_json, status_head
from websockets.frames import Frame, Opcode
from websockets.http11 import Request as WSRequest
from websockets.protocol import State
from websockets.server import ServerProtocol

from callweaver.audio.mulaw import pcm16_to_ulaw
from callweaver.audio.resample import resample

FORMATS = ("pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_44100", "pcm_48000", "ulaw_8000")
DEFAULT_SCHEDULE = (120, 160, 250, 290)  # ElevenLabs' default chunk_length_schedule
_QUIET = logging.getLogger("fake_elevenlabs.websocket")
_QUIET.setLevel(logging.INFO)

# status -> (the error's name, its message): what ElevenLabs says in "detail" (HTTP) or in a
# WebSocket error message
_ERRORS = {
    400: ("invalid_request", "Invalid request"),
    401: ("invalid_api_key", "Invalid API key"),
    403: ("missing_permissions", "The API key does not have the permission text_to_speech"),
    404: ("voice_not_found", "A voice with the voice_id was not found"),
    422: ("voice_not_found", "A voice for the voice_id was not found"),
    429: ("too_many_concurrent_requests", "Too many concurrent requests"),
    500: ("internal_server_error", "We are sorry, something went wrong"),
    503: ("system_busy", "The system is experiencing heavy traffic, please try again"),
}


@functools.cache
def speech(text: str, output_format: str = "pcm_16000") -> bytes:
    """flite's slt voice speaking ``text``, in ``output_format``'s bytes (cached)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(
            ["flite", "-voice", "slt", "-t", text, "-o", str(path)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        with wave.open(io.BytesIO(path.read_bytes())) as w:
            rate = w.getframerate()
            pcm = w.readframes(w.getnframes())
    if output_format.startswith("ulaw_"):
        return pcm16_to_ulaw(resample(pcm, rate, 8000))
    target = int(output_format.removeprefix("pcm_"))
    return pcm if target == rate else resample(pcm, rate, target)


@dataclass(frozen=True)
class Reply:
    """How the server answers one request.

    ``status`` other than 200 is an error: over HTTP that status with ElevenLabs' error body;
    over the WebSocket the handshake is accepted, the first message read, an error message
    ``{"message", "error", "code"}`` sent and the socket closed with 1008 (1011 for a 5xx),
    unless ``reject`` refuses the handshake itself with the status. ``error`` and
    ``message`` override the defaults per status; ``validation`` sends FastAPI's
    ``{"detail": [{"loc", "msg", "type"}]}`` instead of ``{"detail": {"status", "message"}}``.

    A 200 streams the audio in chunks of ``chunk_bytes`` (odd by default: PCM samples are split
    across chunks); ``first_delay`` waits before the first, ``delay`` before each; ``gate``
    holds the stream after ``gate_after`` chunks until it is set. Faults: ``hang`` never answers
    (HTTP: no status line; WebSocket: the handshake completes, then nothing), ``hang_upgrade``
    never answers a WebSocket handshake; ``cut_after=n`` ends the stream after n chunks (HTTP:
    the socket closes mid-body; WebSocket: the TCP connection drops, or a close with
    ``close_code``); ``garbage`` sends broken audio (HTTP: one stray byte after the PCM;
    WebSocket: an audio message that is not base64); ``final=False`` closes with 1000 but
    without ``isFinal``; ``content_type`` replaces the HTTP answer's (``audio/pcm``,
    ``audio/basic``).
    """

    status: int = 200
    error: str | None = None
    message: str | None = None
    validation: bool = False
    reject: bool = False
    chunk_bytes: int = 1601
    delay: float = 0.0
    first_delay: float = 0.0
    gate: asyncio.Event | None = None
    gate_after: int = 1
    hang: bool = False
    hang_upgrade: bool = False
    cut_after: int | None = None
    close_code: int | None = None
    garbage: bool = False
    final: bool = True
    content_type: str | None = None

    @classmethod
    def error_reply(
        cls,
        status: int,
        message: str | None = None,
        *,
        error: str | None = None,
        validation: bool = False,
        reject: bool = False,
    ) -> Reply:
        return cls(
            status=status, message=message, error=error, validation=validation, reject=reject
        )

    def error_of(self, status: int) -> tuple[str, str]:
        name, message = _ERRORS.get(status, ("error", "Error"))
        return self.error or name, self.message or message


@dataclass
class Request:
    """A request as the server got it. ``headers`` have lower-case names, the key masked
    (it is in ``key``, which no repr shows); ``messages`` are a WebSocket's JSON messages."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    connection: int  # which connection it came on, counted from 1
    key: str | None = field(default=None, repr=False)
    body: Any = None
    messages: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[tuple[str, str | int]] = field(default_factory=list)
    audio: bytes = b""  # everything sent, in the output format's bytes (before any garbage)
    websocket: bool = False

    @property
    def voice_id(self) -> str | None:
        found = re.match(r"/v1/text-to-speech/([^/]+)/", self.path)
        return unquote(found.group(1)) if found else None

    @property
    def model_id(self) -> str | None:
        if isinstance(self.body, dict) and "model_id" in self.body:
            return str(self.body["model_id"])
        return self.query.get("model_id")

    @property
    def output_format(self) -> str | None:
        return self.query.get("output_format")

    @property
    def texts(self) -> list[str]:
        """The texts sent: the body's, or every WebSocket message's (the opening " " and the
        closing "" included)."""
        if self.websocket:
            return [str(m.get("text")) for m in self.messages]
        return [str(self.body["text"])] if isinstance(self.body, dict) else []


@dataclass
class FakeElevenLabs(HTTPLoopback):
    """The server (see the module docstring); ``base_url`` is its root."""

    api_key: str = "fake-elevenlabs-key"
    default: Reply = field(default_factory=Reply)
    by_voice: dict[str, Reply] = field(default_factory=dict)
    queue: deque[Reply] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    @property
    def base_url(self) -> str:
        return self.root

    def reply_for(self, request: Request) -> Reply:
        if self.queue:
            return self.queue.popleft()
        return self.by_voice.get(request.voice_id or "", self.default)

    # -- HTTP -----------------------------------------------------------------------------

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: Head
    ) -> bool:
        method, path, headers = head.method, head.path, head.headers
        key = headers.get("xi-api-key")
        if key is not None:
            headers["xi-api-key"] = "***"
        request = Request(method, path, head.query, headers, head.connection, key=key)
        if headers.get("upgrade", "").lower() == "websocket":
            request.websocket = True
            self.requests.append(request)
            await self._websocket(reader, writer, head.raw, request)
            return False
        request.body = await read_body(reader, head)
        self.requests.append(request)
        keep_alive = head.keep_alive

        if key != self.api_key:
            await self._error(writer, 401, Reply(message=f"Invalid API key: {key}"))
            return keep_alive
        if method == "GET" and path == "/v1/models":
            models = [{"model_id": "eleven_flash_v2_5", "can_do_text_to_speech": True}]
            await send_json(writer, 200, models)
            return keep_alive
        if method != "POST" or not re.fullmatch(r"/v1/text-to-speech/[^/]+/stream", path):
            await send_json(writer, 404, {"detail": {"status": "not_found", "message": "no"}})
            return keep_alive
        if request.output_format not in FORMATS:
            bad = Reply(message=f"Invalid output format {request.output_format!r}")
            await self._error(writer, 422, bad)
            return keep_alive
        reply = self.reply_for(request)
        if reply.hang:
            await reader.read()  # until the client gives up
            return False
        if reply.status != 200:
            await self._error(writer, reply.status, reply)
            return keep_alive
        return await self._stream(writer, reply, request) and keep_alive

    async def _error(self, writer: asyncio.StreamWriter, status: int, reply: Reply) -> None:
        name, message = reply.error_of(status)
        if reply.validation:
            problem = {"loc": ["body", "model_id"], "msg": message, "type": "value_error"}
            await send_json(writer, status, {"detail": [problem]})
        else:
            await send_json(writer, status, {"detail": {"status": name, "message": message}})

    async def _stream(self, writer: asyncio.StreamWriter, reply: Reply, request: Request) -> bool:
        fmt = request.output_format or "pcm_16000"
        audio = speech(str(request.body["text"]), fmt)
        kind = reply.content_type or ("audio/basic" if fmt.startswith("ulaw") else "audio/pcm")
        headers = {"Content-Type": kind, "Transfer-Encoding": "chunked", "request-id": "fake"}
        writer.write(status_head(200, headers))
        body = Body(writer)
        for i, chunk in enumerate(_chunks(audio, reply.chunk_bytes)):
            if i == reply.cut_after:
                return False  # _serve closes the socket mid-body
            await _wait(reply, i)
            await body.send(chunk)
            request.audio += chunk
        if reply.cut_after is not None:
            return False
        if reply.garbage:
            await body.send(b"\x7f")  # half a sample
        await body.end()
        return True

    # -- the stream-input WebSocket -------------------------------------------------------

    async def _websocket(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        head: bytes,
        request: Request,
    ) -> None:
        ws = _WebSocket(reader, writer, head)
        handshake = ws.handshake()
        reply = self.reply_for(request)
        if reply.hang_upgrade:
            await reader.read()
            return
        if reply.status != 200 and reply.reject:
            name, message = reply.error_of(reply.status)
            body = json.dumps({"detail": {"status": name, "message": message}})
            await ws.reject(reply.status, body)
            return
        await ws.accept(handshake)
        first = await ws.receive()
        if first is None:
            return
        request.messages.append(first)
        request.timeline.append(("text", str(first.get("text"))))
        if request.key != self.api_key:
            message = f"Invalid API key: {request.key}"
            await ws.fail(1008, {"message": message, "error": "invalid_api_key", "code": 1008})
            return
        if reply.status != 200:
            name, message = reply.error_of(reply.status)
            code = 1011 if reply.status >= 500 else 1008
            await ws.fail(code, {"message": message, "error": name, "code": code})
            return
        if first.get("text") != " " or request.output_format not in FORMATS:
            error = "The first message must be the text ' '; output_format must be known"
            await ws.fail(1008, {"message": error, "error": "invalid_input_message", "code": 1008})
            return
        config = first.get("generation_config") or {}
        schedule = list(config.get("chunk_length_schedule") or DEFAULT_SCHEDULE)
        session = _Session(ws, reply, request, schedule)
        await session.run()


class _WebSocket:
    """A server-side WebSocket on an asyncio stream: websockets' sans-I/O protocol, driven."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes):
        self.reader = reader
        self.writer = writer
        # its own logger, kept quiet: at DEBUG websockets logs the headers, the key among them
        self.protocol = ServerProtocol(max_size=None, logger=_QUIET)
        self.protocol.receive_data(head)
        self._frames: deque[Frame] = deque()

    def handshake(self) -> WSRequest:
        (event,) = self.protocol.events_received()
        assert isinstance(event, WSRequest)
        return event

    async def _flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.writer.write(data)
        await self.writer.drain()

    async def accept(self, request: WSRequest) -> None:
        self.protocol.send_response(self.protocol.accept(request))
        await self._flush()

    async def reject(self, status: int, body: str) -> None:
        self.protocol.send_response(self.protocol.reject(status, body))
        await self._flush()

    async def receive(self) -> dict[str, Any] | None:
        """The next text message as JSON (None when the client closed or went away)."""
        while True:
            while self._frames:
                frame = self._frames.popleft()
                if frame.opcode is Opcode.TEXT:
                    message = json.loads(bytes(frame.data))
                    assert isinstance(message, dict), message
                    return message
                if frame.opcode is Opcode.CLOSE:
                    await self._flush()  # the protocol answered the close
                    return None
            if self.protocol.state is State.CLOSED:
                return None
            data = await self.reader.read(1 << 16)
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
            self._frames.extend(e for e in self.protocol.events_received() if isinstance(e, Frame))
            await self._flush()
            if not data and not self._frames:
                return None

    async def send(self, message: dict[str, Any]) -> None:
        self.protocol.send_text(json.dumps(message).encode())
        await self._flush()

    async def close(self, code: int, reason: str = "") -> None:
        """Close with ``code`` and wait (a little) for the client's close."""
        self.protocol.send_close(code, reason[:120])
        await self._flush()
        with suppress(TimeoutError):
            async with asyncio.timeout(2):
                while await self.receive() is not None:
                    pass

    async def fail(self, code: int, error: dict[str, Any]) -> None:
        """Send an error message, then close with ``code`` and its message as the reason."""
        await self.send(error)
        await self.close(code, str(error.get("message", "")))


class _Session:
    """One stream-input exchange: buffer text, generate per the schedule or a flush."""

    def __init__(self, ws: _WebSocket, reply: Reply, request: Request, schedule: list[int]):
        self.ws = ws
        self.reply = reply
        self.request = request
        self.schedule = schedule
        self.generations = 0
        self.chunks = 0
        self.buffer = ""

    async def run(self) -> None:
        reply = self.reply
        while (message := await self.ws.receive()) is not None:
            self.request.messages.append(message)
            text = message.get("text")
            if not isinstance(text, str):
                error = "Could not parse input message, make sure it follows the schema"
                err = {"message": error, "error": "invalid_input_message", "code": 1008}
                await self.ws.fail(1008, err)
                return
            self.request.timeline.append(("text", text))
            if reply.hang:
                continue  # read everything, answer nothing
            if text == "":
                await self._generate()
                if reply.final:
                    await self.ws.send({"isFinal": True})
                await self.ws.close(1000)
                return
            self.buffer += text
            due = self.schedule[min(self.generations, len(self.schedule) - 1)]
            if message.get("flush") or len(self.buffer) >= due:
                await self._generate()

    async def _generate(self) -> None:
        text, self.buffer = self.buffer, ""
        if not any(c.isalnum() for c in text):
            return
        self.generations += 1
        fmt = self.request.output_format or "pcm_16000"
        audio = speech(text.strip(), fmt)
        reply = self.reply
        for n, chunk in enumerate(_chunks(audio, reply.chunk_bytes)):
            if self.chunks == reply.cut_after:
                if reply.close_code is None:
                    raise Cut
                await self.ws.close(reply.close_code, "fake cut")
                raise Cut
            await _wait(reply, self.chunks)
            payload = "%%% not base64 %%%" if reply.garbage else base64.b64encode(chunk).decode()
            alignment = _alignment(text) if n == 0 else None
            await self.ws.send(
                {"audio": payload, "alignment": alignment, "normalizedAlignment": alignment}
            )
            self.chunks += 1
            self.request.audio += chunk
            self.request.timeline.append(("audio", len(chunk)))


def _chunks(audio: bytes, size: int) -> list[bytes]:
    return [audio[i : i + size] for i in range(0, len(audio), size)]


async def _wait(reply: Reply, index: int) -> None:
    if index == 0 and reply.first_delay:
        await asyncio.sleep(reply.first_delay)
    if reply.delay:
        await asyncio.sleep(reply.delay)
    if reply.gate is not None and index == reply.gate_after:
        await reply.gate.wait()


def _alignment(text: str) -> dict[str, list[Any]]:
    chars = list(text)
    return {
        "chars": chars,
        "charStartTimesMs": [70 * i for i in range(len(chars))],
        "charDurationsMs": [70] * len(chars),
    }
