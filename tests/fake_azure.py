"""A fake Azure Speech service: real WebSockets on loopback speaking Azure's USP protocol.

The real ``azure-cognitiveservices-speech`` SDK, given ``SpeechConfig(host=server.host,
subscription=KEY)``, connects here as it would to Azure: TTS on
``/cognitiveservices/websocket/v1`` (SSML), text-stream TTS on ``/cognitiveservices/websocket/v2``
(``SpeechConfig(endpoint=...)``), continuous STT on
``/speech/recognition/conversation/cognitiveservices/v1?language=...``, offering the ``USP``
subprotocol with the key in ``Ocp-Apim-Subscription-Key``.

USP frames (pure functions below, no sockets): a text frame is ``Name:value\\r\\n`` header lines,
a blank line, then the body; a binary frame is a 2-byte big-endian header length, the ASCII
headers, then the payload.

Text-stream TTS, as SDK 1.53 sends it (logged against this server): ``synthesis.context``
with ``input: {bidirectionalStreamingMode: true, voiceName}``, then one ``text.piece`` frame
(``Content-Type: text/plain``) per ``input_stream.write``, then an empty ``text.end``. The
fake answers ``turn.start`` at the first piece, speaks each complete sentence as soon as its
piece arrives (buffered text that ends in ``.!?;`` and whitespace, or 80 characters at a
space; a model of the service, whose real buffering is not documented), the rest at
``text.end``, then the empty audio frame and ``turn.end``, as for SSML.

What a connection gets is scripted with :class:`Script`: the next one in ``queue`` if any, else
``default``. TTS audio is real speech: flite's ``slt`` voice (16 kHz), converted to the format
the request asks for (raw PCM at 8/16/24/48 kHz, or 8 kHz mu-law)::

    async with FakeAzure() as server:
        server.queue.append(Script(status=429))    # the next connection is refused with a 429
        ... SpeechConfig(host=server.host, subscription=server.key)
        request = server.syntheses[0]               # voice, text, SSML, output format
        assert server.connections == 1

Importable as ``fake_azure`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import subprocess
import tempfile
import uuid
import wave
import xml.etree.ElementTree as ET
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from loopback import LoopbackServer
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from callweaver.audio.mulaw import pcm16_to_ulaw
from callweaver.audio.resample import resample

TTS_PATH = "/cognitiveservices/websocket/v1"
TTS_STREAM_PATH = "/cognitiveservices/websocket/v2"
_SENTENCE_END = re.compile(r"[.!?;]\s")
_STREAM_CHARS = 80  # text buffered without a sentence end that the fake speaks anyway
STT_PATH = "/speech/recognition/conversation/cognitiveservices/v1"
FLITE_RATE = 16000
_TICKS = 10_000_000  # USP offsets are in 100 ns ticks

# -- the USP frame codec, pure -------------------------------------------------------------


def encode_text(headers: Mapping[str, str], body: str) -> str:
    """A USP text frame: header lines, a blank line, the body."""
    return "".join(f"{k}:{v}\r\n" for k, v in headers.items()) + "\r\n" + body


def decode_text(frame: str) -> tuple[dict[str, str], str]:
    """A USP text frame -> (headers, body). Header names keep their case; values are stripped."""
    head, sep, body = frame.partition("\r\n\r\n")
    if not sep:
        raise ValueError(f"no blank line after the headers: {frame[:80]!r}")
    return _headers(head), body


def encode_binary(headers: Mapping[str, str], payload: bytes) -> bytes:
    """A USP binary frame: 2-byte big-endian header length, ASCII headers, the payload."""
    head = "".join(f"{k}:{v}\r\n" for k, v in headers.items()).encode("ascii")
    return len(head).to_bytes(2, "big") + head + payload


def decode_binary(frame: bytes) -> tuple[dict[str, str], bytes]:
    """A USP binary frame -> (headers, payload)."""
    if len(frame) < 2:
        raise ValueError("binary frame shorter than its length prefix")
    size = int.from_bytes(frame[:2], "big")
    if len(frame) < 2 + size:
        raise ValueError(f"binary frame of {len(frame)} bytes with {size} bytes of headers")
    return _headers(frame[2 : 2 + size].decode("ascii")), frame[2 + size :]


def _headers(head: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.split("\r\n"):
        if line:
            name, colon, value = line.partition(":")
            if not colon:
                raise ValueError(f"header line without a colon: {line!r}")
            headers[name.strip()] = value.strip()
    return headers


def wav_rate(header: bytes) -> int | None:
    """The sample rate of the RIFF header the SDK sends first in an STT audio stream."""
    if len(header) >= 28 and header[:4] == b"RIFF" and header[8:12] == b"WAVE":
        return int.from_bytes(header[24:28], "little")
    return None


# -- real speech for TTS ------------------------------------------------------------------

OUTPUT_FORMATS = {  # Azure's raw formats: (sample rate, mu-law)
    "raw-8khz-16bit-mono-pcm": (8000, False),
    "raw-16khz-16bit-mono-pcm": (16000, False),
    "raw-24khz-16bit-mono-pcm": (24000, False),
    "raw-48khz-16bit-mono-pcm": (48000, False),
    "raw-8khz-8bit-mono-mulaw": (8000, True),
}


@functools.cache
def flite_pcm(text: str) -> bytes:
    """``text`` spoken by flite's slt voice: PCM16 mono at 16 kHz."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "speech.wav")
        subprocess.run(["flite", "-voice", "slt", "-t", text, "-o", path], check=True)
        with wave.open(path, "rb") as w:
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (FLITE_RATE, 1, 2)
            return w.readframes(w.getnframes())


def audio_for(text: str, output_format: str) -> bytes:
    """What the fake sends for ``text`` in ``output_format`` (raw bytes in that format)."""
    rate, mulaw = OUTPUT_FORMATS[output_format]
    pcm = resample(flite_pcm(text), FLITE_RATE, rate)
    return pcm16_to_ulaw(pcm) if mulaw else pcm


def word_boundaries(text: str, seconds: float) -> list[tuple[float, str]]:
    """Word boundaries spread evenly over ``seconds`` of audio, as (offset s, word)."""
    words = re.findall(r"\w[\w']*", text)
    step = seconds / max(1, len(words))
    return [(round(i * step, 3), w) for i, w in enumerate(words)]


# -- scripts and records ------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """How the server treats one connection.

    ``status`` rejects the WebSocket upgrade with that HTTP status (401, 429...). Otherwise:
    ``hang`` accepts and never answers; ``close_code`` closes the socket (with ``reason``) in
    the middle of the first turn, after ``close_after`` audio frames (TTS) or once the audio
    has ended (STT); ``garbage`` sends PCM with an odd byte count; ``gate`` holds a TTS turn
    after its first audio frame until the event is set; ``chunk_ms`` is the audio per frame;
    ``text`` is the STT DisplayText (its words go out one by one as hypotheses first: one more
    word for every ``hypothesis_ms`` of audio received, as the audio streams in, and the
    rest once it has ended). On a TTS socket the script is for its first synthesis; later ones
    are answered normally.
    """

    status: int | None = None
    hang: bool = False
    close_code: int | None = None
    reason: str = "internal server error"
    close_after: int = 1
    garbage: bool = False
    gate: asyncio.Event | None = None
    chunk_ms: int = 100
    text: str = "I would like to book a table for two."
    hypothesis_ms: int = 300
    first_delay: float = 0.0
    """A service's own time: before a synthesis's first audio (TTS) or before the result,
    once the audio has ended (STT); for every turn of the connection."""


@dataclass
class Synthesis:
    """A TTS request as the server got it."""

    connection: int
    request_id: str
    output_format: str
    ssml: str
    voice: str
    lang: str
    text: str
    word_boundary_enabled: bool
    pieces: list[str] = field(default_factory=list)  # a text stream's text.piece bodies
    streamed: bool = False


@dataclass
class Recognition:
    """An STT stream as the server got it. ``audio`` is the PCM after the RIFF header;
    ``hypotheses`` the interim texts sent, each with how much audio (s) had arrived before it;
    ``started_at`` and ``ended_at`` the loop times its first audio and its end arrived."""

    connection: int
    language: str
    sample_rate: int | None = None
    audio: bytes = b""
    ended: bool = False
    started_at: float | None = None
    ended_at: float | None = None
    hypotheses: list[tuple[float, str]] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return len(self.audio) / 2 / (self.sample_rate or 16000)


@dataclass
class FakeAzure(LoopbackServer):
    """The server (see the module docstring)."""

    key: str = "fake-azure-key-0123456789"
    default: Script = field(default_factory=Script)
    queue: deque[Script] = field(default_factory=deque)
    syntheses: list[Synthesis] = field(default_factory=list)
    recognitions: list[Recognition] = field(default_factory=list)
    connections: int = 0  # WebSockets accepted
    attempts: int = 0  # upgrade requests, rejected or not
    port: int = 0
    _server: Server | None = field(default=None, init=False, repr=False)
    _scripts: dict[int, Script] = field(default_factory=dict, init=False, repr=False)

    @property
    def host(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await serve(
            self._serve,
            "127.0.0.1",
            self.port,
            process_request=self._upgrade,
            select_subprotocol=lambda _conn, offered: "USP" if "USP" in offered else None,
            max_size=None,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and close every connection (hanging ones included)."""
        if self._server is None:
            return
        self._server.close(close_connections=True)
        await self._server.wait_closed()
        self._server = None

    def _upgrade(self, connection: ServerConnection, request: Request) -> Response | None:
        self.attempts += 1
        script = self.queue.popleft() if self.queue else self.default
        self._scripts[id(connection)] = script
        status = script.status
        if status is None and request.headers.get("Ocp-Apim-Subscription-Key") != self.key:
            status = 401
        if status is None:
            return None
        del self._scripts[id(connection)]
        messages = {401: "Unauthorized", 403: "Forbidden", 429: "Too Many Requests"}
        response = connection.respond(status, messages.get(status, "Error") + "\n")
        if status == 429:
            response.headers["Retry-After"] = "1"
        return response

    async def _serve(self, ws: ServerConnection) -> None:
        self.connections += 1
        number = self.connections
        script = self._scripts.pop(id(ws), self.default)
        url = urlsplit(ws.request.path if ws.request else "/")
        try:
            if script.hang:
                async for _ in ws:
                    pass
            elif url.path in (TTS_PATH, TTS_STREAM_PATH):
                await self._tts(ws, number, script)
            elif url.path == STT_PATH:
                language = dict(parse_qsl(url.query)).get("language", "")
                await self._stt(ws, Recognition(number, language), script)
            else:
                await ws.close(1008, f"no route {url.path}")
        except ConnectionClosed:
            pass  # the client went away

    # -- TTS ------------------------------------------------------------------------------

    async def _tts(self, ws: ServerConnection, number: int, script: Script) -> None:
        contexts: dict[str, dict[str, Any]] = {}
        streams: dict[str, _TextTurn] = {}
        turns = 0
        async for frame in ws:
            if not isinstance(frame, str):
                continue
            headers, body = decode_text(frame)
            path = headers.get("Path", "")
            request_id = headers.get("X-RequestId", "")
            if path == "synthesis.context":
                contexts[request_id] = json.loads(body)
                turn = _TextTurn.of(number, request_id, contexts[request_id])
                if turn is not None:  # a text stream: its pieces follow
                    turns += 1
                    streams[request_id] = turn
                    turn.script = script if turns == 1 else Script()
                    self.syntheses.append(turn.synthesis)
            elif path in ("text.piece", "text.end") and request_id in streams:
                turn = streams[request_id]
                if not await self._text_piece(ws, turn, body, end=path == "text.end"):
                    return
                if path == "text.end":
                    del streams[request_id]
            elif path == "ssml":
                context = contexts.pop(request_id, {})
                synthesis = _synthesis(number, request_id, context, body)
                self.syntheses.append(synthesis)
                turns += 1
                if not await self._speak(ws, synthesis, script if turns == 1 else Script()):
                    return

    async def _speak(self, ws: ServerConnection, synthesis: Synthesis, script: Script) -> bool:
        """Answer one synthesis; False when the socket was closed on purpose."""
        request_id = synthesis.request_id
        await self._text(ws, "turn.start", request_id, {"context": {"serviceTag": "fake"}})
        if script.first_delay:
            await asyncio.sleep(script.first_delay)
        stream_id = uuid.uuid4().hex.upper()
        if await self._say(ws, synthesis, synthesis.text, stream_id, script, 0) is None:
            return False
        await self._audio(ws, request_id, stream_id, b"")
        await self._text(ws, "turn.end", request_id, {})
        return True

    async def _say(
        self,
        ws: ServerConnection,
        synthesis: Synthesis,
        text: str,
        stream_id: str,
        script: Script,
        sent: int,
    ) -> int | None:
        """Send the audio of ``text`` (its word boundaries first, if asked for), counting
        audio frames from ``sent`` for the script's faults: the count after it, None when the
        socket was closed on purpose."""
        request_id = synthesis.request_id
        rate, mulaw = OUTPUT_FORMATS.get(synthesis.output_format, (16000, False))
        audio = await asyncio.to_thread(audio_for, text, synthesis.output_format)
        if script.garbage:
            audio = audio[: len(audio) // 2 * 2 - 1] if not mulaw else audio
        if synthesis.word_boundary_enabled:
            seconds = len(audio) / (1 if mulaw else 2) / rate
            metadata = [
                {
                    "Type": "WordBoundary",
                    "Data": {
                        "Offset": round(offset * _TICKS),
                        "Duration": 2_000_000,
                        "text": {"Text": word, "Length": len(word), "BoundaryType": "WordBoundary"},
                    },
                }
                for offset, word in word_boundaries(text, seconds)
            ]
            await self._text(ws, "audio.metadata", request_id, {"Metadata": metadata})
        step = rate * script.chunk_ms // 1000 * (1 if mulaw else 2)
        for start in range(0, len(audio), step):
            if script.close_code is not None and sent == script.close_after:
                await ws.close(script.close_code, script.reason)
                return None
            if sent == 1 and script.gate is not None:
                await script.gate.wait()
            await self._audio(ws, request_id, stream_id, audio[start : start + step])
            sent += 1
        return sent

    async def _text_piece(
        self, ws: ServerConnection, turn: _TextTurn, body: str, *, end: bool
    ) -> bool:
        """One ``text.piece`` (or ``text.end``) of a text stream: speak what is complete."""
        synthesis, script = turn.synthesis, turn.script
        request_id = synthesis.request_id
        if not end:
            synthesis.pieces.append(body)
            synthesis.text += body
            turn.buffer += body
        if script.hang:
            return True
        if not turn.started:
            turn.started = True
            await self._text(ws, "turn.start", request_id, {"context": {"serviceTag": "fake"}})
        ready = turn.take(end)
        if any(c.isalnum() for c in ready):
            if not turn.spoke and script.first_delay:
                await asyncio.sleep(script.first_delay)
            turn.spoke = True
            sent = await self._say(
                ws, synthesis, ready.strip(), turn.stream_id, script, turn.frames
            )
            if sent is None:
                return False
            turn.frames = sent
        if end:
            await self._audio(ws, request_id, turn.stream_id, b"")
            await self._text(ws, "turn.end", request_id, {})
        return True

    async def _audio(self, ws: ServerConnection, request_id: str, stream: str, data: bytes) -> None:
        headers = {"Path": "audio", "X-RequestId": request_id, "X-StreamId": stream}
        await ws.send(encode_binary(headers, data))

    async def _text(self, ws: ServerConnection, path: str, request_id: str, body: object) -> None:
        headers = {
            "X-RequestId": request_id,
            "Content-Type": "application/json; charset=utf-8",
            "Path": path,
        }
        await ws.send(encode_text(headers, json.dumps(body)))

    # -- STT ------------------------------------------------------------------------------

    async def _stt(self, ws: ServerConnection, rec: Recognition, script: Script) -> None:
        self.recognitions.append(rec)
        started = False
        header_seen = False
        async for frame in ws:
            if isinstance(frame, str):
                continue  # speech.config, speech.context, telemetry
            headers, payload = decode_binary(frame)
            if headers.get("Path") != "audio":
                continue
            request_id = headers.get("X-RequestId", "")
            if not payload:  # an empty audio frame ends the stream
                rec.ended = True
                rec.ended_at = asyncio.get_running_loop().time()
                if script.close_code is not None:
                    await ws.close(script.close_code, script.reason)
                    return
                if script.first_delay:
                    await asyncio.sleep(script.first_delay)
                await self._phrase(ws, request_id, rec, script.text)
                continue
            if not header_seen:
                header_seen = True
                rec.sample_rate = wav_rate(payload)
                payload = payload[44:] if rec.sample_rate else payload
            rec.audio += payload
            if not started:
                started = True
                rec.started_at = asyncio.get_running_loop().time()
                await self._text(ws, "turn.start", request_id, {"context": {"serviceTag": "x"}})
                await self._text(ws, "speech.startDetected", request_id, {"Offset": 0})
            words = min(len(script.text.split()), int(rec.seconds * 1000 // script.hypothesis_ms))
            await self._hypotheses(ws, request_id, rec, script.text, words)

    async def _phrase(
        self, ws: ServerConnection, request_id: str, rec: Recognition, text: str
    ) -> None:
        duration = round(rec.seconds * _TICKS)
        await self._hypotheses(ws, request_id, rec, text, len(text.split()))
        phrase = {
            "RecognitionStatus": "Success",
            "DisplayText": text,
            "Offset": 0,
            "Duration": duration,
        }
        await self._text(ws, "speech.phrase", request_id, phrase)
        await self._text(ws, "speech.endDetected", request_id, {"Offset": duration})
        await self._text(ws, "turn.end", request_id, {})

    async def _hypotheses(
        self, ws: ServerConnection, request_id: str, rec: Recognition, text: str, upto: int
    ) -> None:
        """Interim texts: the first ``upto`` words of ``text``, one more word each."""
        words = text.split()
        duration = round(rec.seconds * _TICKS)
        for n in range(len(rec.hypotheses) + 1, upto + 1):
            hypothesis = " ".join(words[:n]).lower()
            rec.hypotheses.append((rec.seconds, hypothesis))
            body = {"Text": hypothesis, "Offset": 0, "Duration": duration}
            await self._text(ws, "speech.hypothesis", request_id, body)


@dataclass
class _TextTurn:
    """A text-stream synthesis in progress: what is buffered, how far it got."""

    synthesis: Synthesis
    script: Script = field(default_factory=Script)
    buffer: str = ""
    started: bool = False
    spoke: bool = False
    frames: int = 0  # audio frames sent, for the script's faults
    stream_id: str = field(default_factory=lambda: uuid.uuid4().hex.upper())

    @classmethod
    def of(cls, number: int, request_id: str, context: dict[str, Any]) -> _TextTurn | None:
        source = context.get("synthesis", {})
        given = source.get("input", {})
        if not given.get("bidirectionalStreamingMode"):
            return None
        audio = source.get("audio", {})
        options = audio.get("metadataOptions", {})
        voice = str(given.get("voiceName", ""))
        synthesis = Synthesis(
            connection=number,
            request_id=request_id,
            output_format=str(audio.get("outputFormat", "")),
            ssml="",
            voice=voice,
            lang=str(given.get("language", "")),
            text="",
            word_boundary_enabled=bool(options.get("wordBoundaryEnabled")),
            streamed=True,
        )
        return cls(synthesis)

    def take(self, end: bool) -> str:
        """The buffered text to speak now: up to the last sentence end, a long run without
        one up to its last space, everything at the end."""
        buffer = self.buffer
        if end:
            cut = len(buffer)
        else:
            ends = [m.end() for m in _SENTENCE_END.finditer(buffer)]
            cut = ends[-1] if ends else 0
            if not cut and len(buffer) >= _STREAM_CHARS:
                cut = buffer.rfind(" ") + 1
        ready, self.buffer = buffer[:cut], buffer[cut:]
        return ready


def _synthesis(number: int, request_id: str, context: dict[str, Any], ssml: str) -> Synthesis:
    audio = context.get("synthesis", {}).get("audio", {})
    options = audio.get("metadataOptions", {})
    root = ET.fromstring(ssml)
    ns = "{http://www.w3.org/2001/10/synthesis}"
    voice = root.find(f"{ns}voice")
    lang = root.get("{http://www.w3.org/XML/1998/namespace}lang", "")
    return Synthesis(
        connection=number,
        request_id=request_id,
        output_format=str(audio.get("outputFormat", "")),
        ssml=ssml,
        voice=voice.get("name", "") if voice is not None else "",
        lang=lang,
        text="".join(voice.itertext()) if voice is not None else "".join(root.itertext()),
        word_boundary_enabled=bool(options.get("wordBoundaryEnabled")),
    )


__all__ = [
    "OUTPUT_FORMATS",
    "TTS_STREAM_PATH",
    "FakeAzure",
    "Recognition",
    "Script",
    "Synthesis",
    "audio_for",
    "decode_binary",
    "decode_text",
    "encode_binary",
    "encode_text",
    "flite_pcm",
    "wav_rate",
    "word_boundaries",
]
