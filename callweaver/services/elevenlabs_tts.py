"""ElevenLabs text-to-speech, over HTTP streaming or the ``stream-input`` WebSocket.

Both transports are spoken directly, not through the vendor SDK: HTTP with httpx (the SDK's
async client would add its own retries and timeouts), the WebSocket with ``websockets`` (the
SDK's only WebSocket helper is synchronous and forces ``wss``).

- ``transport: http`` posts the sentence to ``/v1/text-to-speech/{voice}/stream`` and streams
  the raw audio of the answer. One ``httpx.AsyncClient`` per provider keeps its connection
  alive between sentences; :meth:`ElevenLabsTTS.warm` opens it ahead of the first turn.
- ``transport: websocket`` opens ``/v1/text-to-speech/{voice}/stream-input`` per utterance:
  a first ``{"text": " "}`` message with the voice settings and the generation schedule, the
  text, a flush, then ``{"text": ""}``; the server answers with base64 audio messages, then
  ``{"isFinal": true}``, and closes with 1000. :meth:`ElevenLabsTTS.synthesize_stream` sends
  text pieces as they come (LLM tokens), so that speech starts before the reply is written:
  the server generates once ``chunk_length_schedule`` characters are buffered, and the first
  sentence is flushed as soon as it is complete (a short first sentence does not wait for
  the schedule). Each audio message's ``alignment`` (the characters it speaks) rides along
  as :attr:`Speech.text`, so a stream that breaks mid-way can resume where speech stopped.

The audio is asked for as raw PCM16 (``pcm_*``) or G.711 mu-law (``ulaw_8000``, decoded here to
PCM16 at 8 kHz); chunks are handed on as they arrive, and a PCM sample split between two
network chunks waits for its second byte (:class:`~.elevenlabs_wire.AudioDecoder`).

Every failure is a :class:`~callweaver.errors.ProviderError`. Retryable (another try, or
another provider, can help): timeouts, 429, 5xx, a refused connection, a stream that ends
before the server said it was done, audio that cannot be decoded. Not retryable: a bad key
(401/403), a bad voice or model (400/404/422), the same conditions reported over the
WebSocket. The timeouts are ours: ``first_audio_timeout_s`` from the request to the first
audio, ``idle_timeout_s`` for every later gap. The API key travels only in the ``xi-api-key``
header and is cut out of every error message (servers echo keys back).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from contextlib import aclosing
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar
from urllib.parse import quote, urlencode

import httpx
from pydantic import ConfigDict, Field, SecretStr

from callweaver.errors import ProviderError
from callweaver.services.elevenlabs_wire import (
    CANTONESE,
    FLASH_V2_5_LANGUAGES,
    PCM_RATES,
    AudioDecoder,
    OutputFormat,
    VoiceSettings,
    aligned_text,
    error_detail,
    parse_message,
    primary_subtag,
    speakable,
    transient,
)
from callweaver.services.elevenlabs_wire import sample_rate as format_rate
from callweaver.services.http import provider_client
from callweaver.services.locales import VoiceChoice, VoicesParams
from callweaver.services.tts import Speech, nearest_rate
from callweaver.text.sentences import SentenceSplitter

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection
    from websockets.exceptions import ConnectionClosed

__all__ = ["ElevenLabsTTS", "ElevenLabsTTSParams"]

_T = TypeVar("_T")
_log = logging.getLogger(__name__)

_WS_MAX_MESSAGE = 16 << 20  # a second of pcm_44100 is ~120 kB of base64: far below
_EXTRA = "pip install 'callweaver[elevenlabs]'"
_VOICE_ID = re.compile(r"[A-Za-z0-9]{20}")


class ElevenLabsTTSParams(VoicesParams):
    """Which voice and model, how to reach them, and how long to wait."""

    voice_form = _VOICE_ID
    voice_what = "an ElevenLabs voice id (20 letters and digits)"

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(
        description="sent as the xi-api-key header; never logged (configs: ${ELEVENLABS_API_KEY})"
    )
    voice_id: str = Field(
        pattern=f"^{_VOICE_ID.pattern}$",
        description="an ElevenLabs voice id: 20 letters and digits (not the voice's name)",
    )
    model_id: str = Field(
        "eleven_flash_v2_5", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="the TTS model"
    )
    output_format: OutputFormat | Literal["auto"] = Field(
        "auto",
        description="pcm_8000/16000/22050/24000/44100/48000 (PCM16) or ulaw_8000 (telephone); "
        "auto: the transport's rate (ulaw_8000 for Twilio), pcm_16000 outside a call",
    )
    base_url: str = Field(
        "https://api.elevenlabs.io",
        pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$",
        description="the API root (http(s)://host[:port]); the WebSocket URL is derived from it",
    )
    transport: Literal["http", "websocket"] = Field(
        "http", description="http: a streamed POST per sentence; websocket: stream-input"
    )
    voice_settings: VoiceSettings | None = Field(None, description="stability, similarity_boost")
    send_language: bool = Field(
        True,
        description="send the call's language as language_code (flash and turbo v2.5 use it "
        "to normalize text); turn off for a model that rejects it",
    )
    chunk_length_schedule: list[Annotated[int, Field(ge=50, le=500)]] = Field(
        default_factory=lambda: [50],
        min_length=1,
        max_length=8,
        description="websocket: characters buffered before each generation (50..500 each); "
        "small values start speech sooner",
    )
    inactivity_timeout_s: int = Field(
        20, ge=5, le=180, description="websocket: the server closes after this long without text"
    )
    connect_timeout_s: float = Field(3.0, gt=0, description="TCP (and TLS) connect timeout")
    first_audio_timeout_s: float = Field(
        3.0, gt=0, description="from the request to the first audio bytes"
    )
    idle_timeout_s: float = Field(3.0, gt=0, description="longest gap in the audio afterwards")


# -- the provider ---------------------------------------------------------------------------


class _Redacting(logging.LoggerAdapter[logging.Logger]):
    """websockets' connection logger, with the key cut out: at DEBUG it logs the handshake's
    headers, ``xi-api-key`` among them."""

    def __init__(self, logger: logging.Logger, secret: str) -> None:
        super().__init__(logger, {})
        self._secret = secret

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            args = tuple(self._cut(a) for a in args)
            super().log(level, self._cut(msg), *args, **kwargs)

    def _cut(self, value: object) -> object:
        if self._secret and isinstance(value, str | bytes):
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            if self._secret in text:
                return text.replace(self._secret, "***")
        return value


class _Input:
    """The WebSocket sender's progress, for the receiver's deadline. A whole text owes its
    first audio ``first_audio_timeout_s`` after the request; streamed text owes none while
    more may come (the server waits for a schedule's worth of characters, and a slow LLM is
    not ElevenLabs' fault: the server's ``inactivity_timeout`` bounds that wait), then runs
    from the end of the input."""

    def __init__(self, origin: float, *, streamed: bool) -> None:
        self.origin = origin  # first audio is due first_audio_timeout_s after this
        self.streamed = streamed
        self.ended = False
        self.spoke = False  # speakable text went out: audio is owed
        self.last_audio: float | None = None
        self.failure: BaseException | None = None  # the text source's, raised as it is
        self.timer: asyncio.Timeout | None = None  # the receiver's wait, rescheduled on end

    def deadline(self, first_s: float, idle_s: float) -> float | None:
        if self.streamed and not self.ended:
            return None
        if self.last_audio is None:
            return self.origin + first_s
        return max(self.last_audio, self.origin) + idle_s


class ElevenLabsTTS:
    """The ElevenLabs provider of the TTS interface (see the module docstring)."""

    Params = ElevenLabsTTSParams

    def __init__(self, params: ElevenLabsTTSParams, *, name: str = "elevenlabs") -> None:
        self._auto = params.output_format == "auto"
        if self._auto:
            params = params.model_copy(update={"output_format": "pcm_16000"})
        self.params = params
        self.name = name
        self.languages: frozenset[str] = FLASH_V2_5_LANGUAGES
        self.voices = VoiceChoice(
            "elevenlabs", params.voice_id, "", voices=params.voices, use_table=False
        )
        self.sample_rate = format_rate(params.output_format)
        # only the WebSocket speaks text as it comes; over HTTP the pieces are gathered
        self.streams_text = params.transport == "websocket"
        self._key = params.api_key.get_secret_value()
        self._http: httpx.AsyncClient | None = None
        if params.transport == "websocket":
            try:
                import websockets  # noqa: F401 - fail at build time, not at the first sentence
            except ImportError as exc:
                raise ImportError(
                    f"the ElevenLabs websocket transport needs websockets: {_EXTRA}"
                ) from exc

    def prefer_output(self, sample_rate: int, mulaw: bool) -> None:
        """With ``output_format: auto``: ask for the transport's rate, or ``ulaw_8000`` (see
        :mod:`callweaver.services.tts`)."""
        if not self._auto:
            return
        if mulaw and sample_rate == 8000:
            fmt = "ulaw_8000"
        else:
            fmt = f"pcm_{nearest_rate(PCM_RATES, sample_rate)}"
        self.params = self.params.model_copy(update={"output_format": fmt})
        self.sample_rate = format_rate(fmt)

    def __repr__(self) -> str:
        p = self.params
        return (
            f"ElevenLabsTTS(name={self.name!r}, voice_id={p.voice_id!r}, model_id={p.model_id!r},"
            f" transport={p.transport!r})"
        )

    async def aclose(self) -> None:
        """Close the kept-alive HTTP connection (syntheses still running have theirs)."""
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    async def warm(self) -> None:
        """Open the HTTP connection ahead of the first turn (a cheap ``GET /v1/models``), so
        the first sentence skips the TCP and TLS handshakes. Best effort: errors are ignored.
        The WebSocket transport opens a connection per utterance: nothing to warm."""
        if self.params.transport != "http":
            return
        try:
            response = await self._client().get(
                self._url("/v1/models"),
                headers=self._headers(),
                timeout=self.params.connect_timeout_s,
            )
            await response.aclose()
        except httpx.HTTPError:
            pass

    async def synthesize(self, text: str, language: str = "") -> AsyncIterator[Speech]:
        """Speak ``text``: PCM16 chunks at :attr:`sample_rate` as they arrive. Text with
        nothing to say yields nothing and sends nothing."""
        self._check_language(language)
        if not speakable(text):
            return
        if self.params.transport == "http":
            source = self._post(text, language)
        else:
            source = self._websocket(_one(text), language, streamed=False)
        async with aclosing(source) as audio:
            async for speech in audio:
                yield speech

    async def synthesize_stream(
        self, texts: AsyncIterator[str], language: str = ""
    ) -> AsyncIterator[Speech]:
        """Speak text that is still being written (an LLM's tokens): over the WebSocket each
        piece is sent as it comes and audio is yielded as soon as the server has it; the end
        of ``texts`` flushes. Over HTTP the pieces are gathered and spoken as one text. An
        error of ``texts`` itself is raised as it is."""
        self._check_language(language)
        if self.params.transport == "http":
            text = "".join([piece async for piece in texts])
            if not speakable(text):
                return
            source = self._post(text, language)
        else:
            source = self._websocket(texts, language, streamed=True)
        async with aclosing(source) as audio:
            async for speech in audio:
                yield speech

    # -- HTTP streaming -----------------------------------------------------------------------

    async def _post(self, text: str, language: str) -> AsyncGenerator[Speech, None]:
        p = self.params
        loop = asyncio.get_running_loop()
        deadline = loop.time() + p.first_audio_timeout_s
        http = self._client()
        body: dict[str, Any] = {"text": text, "model_id": p.model_id}
        if p.voice_settings is not None:
            body["voice_settings"] = p.voice_settings.model_dump(exclude_none=True)
        if language and p.send_language:
            body["language_code"] = primary_subtag(language)
        request = http.build_request(
            "POST",
            self._url(f"/v1/text-to-speech/{quote(self.voice_for(language), safe='')}/stream"),
            params={"output_format": p.output_format},
            json=body,
            headers=self._headers(),
        )
        try:
            async with asyncio.timeout_at(deadline):
                response = await http.send(request, stream=True)
        except TimeoutError:
            raise self._timeout(0) from None
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, 0) from exc
        chunks = response.aiter_bytes()
        try:
            if response.status_code != 200:
                await self._read(response.aread(), deadline, 0)
                raise self._status_error(
                    response.status_code, response.content, response.headers.get("retry-after")
                )
            kind = response.headers.get("content-type", "").lower()
            if kind.startswith(("text/", "application/json")):
                raise self._error(f"HTTP 200 with {kind}, not audio", retryable=True)
            decoder = AudioDecoder(p.output_format)
            received = 0
            while (chunk := await self._read(anext(chunks, None), deadline, received)) is not None:
                received += len(chunk)
                deadline = loop.time() + p.idle_timeout_s
                if pcm := decoder.feed(chunk):
                    yield Speech(pcm, decoder.sample_rate)
            self._finish(decoder, received)
        finally:
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()
            await response.aclose()

    async def _read(self, step: Awaitable[_T], until: float, received: int) -> _T:
        """Await one step of a response by ``until`` (loop time); failures as ProviderError."""
        try:
            async with asyncio.timeout_at(until):
                return await step
        except TimeoutError:
            raise self._timeout(received) from None
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, received) from exc

    # -- the stream-input WebSocket -----------------------------------------------------------

    async def _websocket(
        self, texts: AsyncIterator[str], language: str, *, streamed: bool
    ) -> AsyncGenerator[Speech, None]:
        from websockets.exceptions import ConnectionClosed

        p = self.params
        loop = asyncio.get_running_loop()
        state = _Input(loop.time(), streamed=streamed)
        ws = await self._connect(language, state.origin + p.first_audio_timeout_s)
        done = False
        sender: asyncio.Task[None] | None = None
        try:
            init: dict[str, Any] = {
                "text": " ",
                "generation_config": {"chunk_length_schedule": p.chunk_length_schedule},
            }
            if p.voice_settings is not None:
                init["voice_settings"] = p.voice_settings.model_dump(exclude_none=True)
            # The sender is this generator's own task, cancelled and awaited in `finally`: a
            # task group cannot span the yields of a generator (its failure would cancel the
            # consumer wherever that happens to be).
            sender = asyncio.create_task(self._send(ws, init, texts, state))
            decoder = AudioDecoder(p.output_format)
            received = 0
            while True:
                try:
                    async with asyncio.timeout_at(
                        state.deadline(p.first_audio_timeout_s, p.idle_timeout_s)
                    ) as timer:
                        state.timer = timer
                        raw = await ws.recv()
                except TimeoutError:
                    raise self._timeout(received) from None
                except ConnectionClosed as exc:
                    if state.failure is not None:
                        raise state.failure from None
                    raise self._closed_error(exc, received) from None
                finally:
                    state.timer = None
                message = parse_message(raw)
                if message is None:
                    raise self._error("a message that is not a JSON object", retryable=True)
                audio = message.get("audio")
                if audio:
                    try:
                        data = base64.b64decode(audio, validate=True)
                    except (binascii.Error, ValueError, TypeError):
                        raise self._error("undecodable base64 audio", retryable=True) from None
                    received += len(data)
                    state.last_audio = loop.time()
                    if pcm := decoder.feed(data):
                        yield Speech(pcm, decoder.sample_rate, aligned_text(message))
                if message.get("isFinal"):
                    break
                if not audio and (message.get("error") or message.get("message")):
                    raise self._ws_error(message)
            self._finish(decoder, received, spoke=state.spoke)
            done = True
        finally:
            if sender is not None:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
            if done:
                await ws.close()  # the server has closed (or is closing) after isFinal
            else:
                # an error, or the consumer left early (barge-in): drop the connection, do not
                # wait for a closing handshake with a server that may not answer
                ws.transport.abort()
                await ws.wait_closed()

    async def _connect(self, language: str, deadline: float) -> ClientConnection:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

        p = self.params
        query = {
            "model_id": p.model_id,
            "output_format": p.output_format,
            "inactivity_timeout": str(p.inactivity_timeout_s),
        }
        if language and p.send_language:
            query["language_code"] = primary_subtag(language)
        path = f"/v1/text-to-speech/{quote(self.voice_for(language), safe='')}/stream-input"
        base = re.sub(r"^http", "ws", p.base_url.rstrip("/"))
        try:
            async with asyncio.timeout_at(deadline):
                return await connect(
                    f"{base}{path}?{urlencode(query)}",
                    additional_headers={"xi-api-key": self._key},
                    open_timeout=p.connect_timeout_s,
                    compression=None,  # base64 audio hardly compresses: save the CPU
                    max_size=_WS_MAX_MESSAGE,
                    logger=_Redacting(_log, self._key),
                )
        except TimeoutError:
            raise self._timeout(0) from None
        except InvalidStatus as exc:
            response = exc.response
            raise self._status_error(
                response.status_code,
                bytes(response.body or b""),
                response.headers.get("retry-after"),
            ) from None
        except InvalidURI as exc:
            raise self._error(str(exc), retryable=False) from None
        except (OSError, InvalidHandshake) as exc:
            what = f"{type(exc).__name__}: {exc}".rstrip(": ")
            raise self._error(f"cannot connect ({what})", retryable=True) from None

    async def _send(
        self, ws: ClientConnection, init: dict[str, Any], texts: AsyncIterator[str], state: _Input
    ) -> None:
        """Send the opening message, the text as it comes, a flush and the end of input."""
        from websockets.exceptions import ConnectionClosed

        try:
            await ws.send(json.dumps(init))
            if state.streamed:
                first: SentenceSplitter | None = SentenceSplitter()  # to the first sentence
                async for piece in texts:
                    if piece:  # an empty text would end the input
                        message: dict[str, Any] = {"text": piece}
                        if first is not None and first.push(piece):
                            message["flush"] = True  # speak it now, not at the schedule
                            first = None
                        await ws.send(json.dumps(message))
                        state.spoke = state.spoke or speakable(piece)
                await ws.send(json.dumps({"text": " ", "flush": True}))
            else:
                async for text in texts:
                    await ws.send(json.dumps({"text": text.strip() + " ", "flush": True}))
                    state.spoke = True
            await ws.send(json.dumps({"text": ""}))
        except ConnectionClosed:
            return  # the receiver hears of it, with the close code
        except Exception as exc:  # the text source failed: the receiver raises it
            state.failure = exc
            ws.transport.abort()
            return
        loop = asyncio.get_running_loop()
        state.ended = True
        if state.streamed:
            state.origin = loop.time()  # the text is complete: its first audio is due
        if state.timer is not None:
            p = self.params
            state.timer.reschedule(state.deadline(p.first_audio_timeout_s, p.idle_timeout_s))

    # -- helpers --------------------------------------------------------------------------

    def voice_for(self, language: str) -> str:
        """The voice id for a request in ``language``: ``voices``' for it, else ``voice_id``
        (the multilingual models speak every language they serve with any voice)."""
        return self.voices.voice(language) or self.params.voice_id

    def _check_language(self, language: str) -> None:
        if not language:
            return
        wanted = language.replace("_", "-").lower()
        served = {lang.lower() for lang in self.languages}
        if wanted in served or (
            not wanted.startswith(CANTONESE) and wanted.split("-")[0] in served
        ):
            return
        raise ProviderError(self.name, f"does not speak {language!r}", retryable=True)

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = provider_client(self.params.connect_timeout_s)
        return self._http

    def _url(self, path: str) -> str:
        return self.params.base_url.rstrip("/") + path

    def _headers(self) -> dict[str, str]:
        return {"xi-api-key": self._key}

    def _finish(self, decoder: AudioDecoder, received: int, *, spoke: bool = True) -> None:
        try:
            decoder.finish()
        except ValueError as exc:
            raise self._error(str(exc), retryable=True) from None
        if received == 0 and spoke:
            raise self._error("no audio for the text", retryable=True)

    def _error(self, message: str, *, retryable: bool) -> ProviderError:
        if self._key:
            message = message.replace(self._key, "***")
        return ProviderError(self.name, message, retryable=retryable)

    def _timeout(self, received: int) -> ProviderError:
        p = self.params
        if received == 0:
            return self._error(f"no audio within {p.first_audio_timeout_s} s", retryable=True)
        return self._error(
            f"stream stalled: nothing for {p.idle_timeout_s} s after {received} bytes",
            retryable=True,
        )

    def _status_error(self, status: int, body: bytes, retry_after: str | None) -> ProviderError:
        detail = error_detail(body)
        message = f"HTTP {status}" + (f": {detail}" if detail else "")
        if retry_after:
            message += f" (Retry-After: {retry_after})"
        return self._error(message, retryable=status in (408, 429) or status >= 500)

    def _transport_error(self, exc: httpx.HTTPError, received: int) -> ProviderError:
        what = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return self._error(f"cannot connect ({what})", retryable=True)
        if isinstance(exc, httpx.UnsupportedProtocol):
            return self._error(what, retryable=False)
        if isinstance(exc, httpx.TransportError):
            return self._error(f"stream cut after {received} bytes ({what})", retryable=True)
        return self._error(what, retryable=False)

    def _ws_error(self, message: dict[str, Any]) -> ProviderError:
        """An error message of the stream-input protocol: ``{"message", "error", "code"}``."""
        kind = str(message.get("error") or "")
        text = str(message.get("message") or "")
        described = ": ".join(part for part in (kind, text) if part)
        return self._error(described, retryable=transient(kind or text))

    def _closed_error(self, exc: ConnectionClosed, received: int) -> ProviderError:
        close = exc.rcvd
        if close is None:
            return self._error(
                f"stream cut: the connection dropped after {received} bytes", retryable=True
            )
        reason = f": {close.reason}" if close.reason else ""
        if close.code in (1000, 1001):
            return self._error(
                f"stream cut: closed ({close.code}{reason}) before isFinal, after {received} bytes",
                retryable=True,
            )
        # 1008 (policy violation) carries the key, voice and model errors; others are the
        # server's trouble (1011) or the network's
        retryable = close.code != 1008 or transient(close.reason)
        return self._error(f"closed with {close.code}{reason}", retryable=retryable)


async def _one(text: str) -> AsyncIterator[str]:
    yield text
