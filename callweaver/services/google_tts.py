"""Google Cloud Text-to-Speech over gRPC, through Google's own async client.

A sentence is asked for in one of two ways: ``SynthesizeSpeech`` (unary: the whole sentence's
audio in one answer) or, with ``streaming: true``, ``StreamingSynthesize`` (a bidirectional
stream whose audio chunks are handed on as they arrive; Google streams only with its Chirp 3 HD
voices). Either way the provider yields PCM16 mono at ``sample_rate``: the WAV header Google puts
before unary LINEAR16 and MULAW audio is cut off, and mu-law is decoded (mu-law is half the
bytes, worth it for an 8 kHz phone leg).

The timeouts are ours: ``connect_timeout_s`` for opening the channel, ``first_audio_timeout_s``
from the request to the first audio, ``idle_timeout_s`` for every later gap in a stream. The
SDK neither retries nor waits on its own (``retry=None``): after a failure the failover wrapper
decides. Every failure is a :class:`~callweaver.errors.ProviderError`; it is retryable when
another try or another provider can help (timeouts, RESOURCE_EXHAUSTED, UNAVAILABLE, INTERNAL
and other server errors, a refused connection, a stream cut midway, audio that is not audio)
and not when it cannot (UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT such as a voice
Google does not have, missing credentials). One exception to "no retries": when Google ends
a stream before any audio while the client is still sending (it refuses a bad key at once),
grpc-python loses the server's status and reports INTERNAL (grpc/grpc#36066); the same request
is then made unary, which gets the true status, or the audio.

One gRPC channel per provider, opened on first use or ahead of the first turn by
:meth:`GoogleTTS.warm`, carries every later request: no TCP, TLS or HTTP/2 handshake per
sentence. A channel that cannot connect is dropped after its request fails, so that the next
request connects afresh instead of failing at once until gRPC's reconnect backoff (up to two
minutes) runs out.

Credentials are ``api_key``, else the service-account file ``credentials_file``, else
Application Default Credentials. ``insecure: true`` speaks plaintext gRPC to a local endpoint
(tests, emulators); an API key then goes as ``x-goog-api-key`` metadata. The key is cut out of
every error message.

``languages`` lists what Google serves (primary subtags and full locales). A request in the
configured voice's language uses that voice; one in a language of ``voices`` that voice; one in
another language the locale table's Google voice for it, else Google's default voice of that
language (Mandarin is Google's ``cmn-CN``/``cmn-TW``, Cantonese ``yue-HK``). With
``other_languages: none`` only ``voice`` and ``voices`` are spoken: other languages are left
to the next provider (see :class:`~callweaver.services.locales.VoiceChoice`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, SecretStr, field_validator, model_validator

from callweaver.audio.mulaw import ulaw_to_pcm16
from callweaver.audio.resample import resample
from callweaver.audio.riff import parse_wav
from callweaver.errors import ProviderError
from callweaver.services.google_wire import LANGUAGES, LOST_STATUS, RETRYABLE, google_locale
from callweaver.services.locales import TableVoicesParams, VoiceChoice
from callweaver.services.tts import Speech

try:
    import grpc  # grpcio ships no type information
    from google.api_core import exceptions as api_exceptions
    from google.api_core.client_options import ClientOptions
    from google.auth import exceptions as auth_exceptions
    from google.cloud import texttospeech_v1 as tts
    from google.cloud.texttospeech_v1.services.text_to_speech.transports.grpc_asyncio import (
        TextToSpeechGrpcAsyncIOTransport,
    )
    from google.oauth2 import service_account
except ImportError as exc:  # pragma: no cover - the extra is installed for the tests
    raise ImportError(
        f"Google Cloud TTS needs its SDK: pip install 'callweaver[google]' ({exc})"
    ) from exc

MAX_TEXT_BYTES = 5000  # Google's limit on one request's text
_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# The channel's own connections: gRPC shares them between channels to the same address by
# default, and with them the reconnect backoff that a dropped channel is meant to leave behind.
_OWN_POOL = ("grpc.use_local_subchannel_pool", 1)
# ...and what the SDK's channel sets: a long sentence at 48 kHz is more than gRPC's 4 MB default
_CHANNEL_OPTIONS = (
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    _OWN_POOL,
)

# -- params ---------------------------------------------------------------------------------

_VOICE = re.compile(r"(?P<locale>[a-z]{2,3}-(?:[A-Z]{2}|[0-9]{3}))-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*")
_LANGUAGE_CODE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")

Encoding = Literal["PCM", "LINEAR16", "MULAW"]


class GoogleTTSParams(TableVoicesParams):
    """Which voice, how the audio comes back, where the service is and how long to wait."""

    voice_form = _VOICE
    voice_what = "a Google voice name (en-US-Neural2-F)"

    model_config = ConfigDict(extra="forbid")

    voice: str = Field(
        description="a Google voice: its language code and its name, e.g. en-US-Neural2-F "
        "(streaming takes Chirp 3 HD voices: en-US-Chirp3-HD-Kore)"
    )
    language_code: str = Field("", description="BCP-47; default: the voice's (en-US)")
    encoding: Encoding | Literal["auto"] = Field(
        "auto",
        description="what Google sends: PCM (no header), LINEAR16 (unary only: PCM in a WAV) "
        "or MULAW (8-bit mu-law, decoded here); the output is PCM16 either way. auto: MULAW "
        "when the transport sends mu-law (Twilio), else PCM",
    )
    sample_rate: int | None = Field(
        None,
        ge=8000,
        le=48000,
        description="Hz, of Google's audio and ours; default: the transport's (24000 outside a "
        "call)",
    )
    streaming: bool = Field(
        False, description="StreamingSynthesize (audio as it is made) instead of SynthesizeSpeech"
    )
    endpoint: str = Field(
        "texttospeech.googleapis.com", min_length=1, description="host[:port] of the gRPC service"
    )
    insecure: bool = Field(
        False, description="plaintext gRPC to a local endpoint (tests, emulators): no TLS"
    )
    credentials_file: str | None = Field(
        None, description="a service-account JSON file; default: api_key or the environment's"
    )
    api_key: SecretStr | None = Field(None, description="an API key; never logged")
    connect_timeout_s: float = Field(3.0, gt=0, description="opening the channel (TCP, TLS)")
    first_audio_timeout_s: float = Field(
        5.0, gt=0, description="from the request to the first audio"
    )
    idle_timeout_s: float = Field(5.0, gt=0, description="longest gap in a stream afterwards")

    @field_validator("voice")
    @classmethod
    def _voice_name(cls, voice: str) -> str:
        if not _VOICE.fullmatch(voice):
            raise ValueError(
                f"{voice!r} is not a Google voice name: a language code and a name, "
                "e.g. en-US-Neural2-F"
            )
        return voice

    @field_validator("language_code")
    @classmethod
    def _language_code(cls, code: str) -> str:
        if code and not _LANGUAGE_CODE.fullmatch(code):
            raise ValueError(f"{code!r} is not a BCP-47 language code such as en-US")
        return code

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not self.language_code:
            match = _VOICE.fullmatch(self.voice)
            assert match is not None  # checked above
            self.language_code = match["locale"]
        if self.streaming and self.encoding == "LINEAR16":
            raise ValueError(
                "streaming synthesis sends PCM or MULAW, not LINEAR16 (PCM is the same samples "
                "without the WAV header)"
            )
        if self.api_key is not None and self.credentials_file is not None:
            raise ValueError("give api_key or credentials_file, not both")
        return self


# -- the provider ---------------------------------------------------------------------------


class GoogleTTS:
    """Google Cloud Text-to-Speech (see the module docstring)."""

    Params = GoogleTTSParams

    def __init__(self, params: GoogleTTSParams, *, name: str = "google") -> None:
        self._auto_rate = params.sample_rate is None
        self._auto_encoding = params.encoding == "auto"
        if self._auto_encoding:
            params = params.model_copy(update={"encoding": "PCM"})
        self.params = params
        self.rate: int = params.sample_rate or 24000
        """Hz, of Google's audio and ours."""
        self.name = name
        self._key = params.api_key.get_secret_value() if params.api_key else ""
        match = _VOICE.fullmatch(params.voice)
        assert match is not None  # the params checked it
        table = params.other_languages == "table"
        self.voices = VoiceChoice(
            "google", params.voice, match["locale"], voices=params.voices, use_table=table
        )
        self.languages: frozenset[str] | None = self.voices.languages() | (
            LANGUAGES if table else frozenset()
        )
        self._credentials = self._load_credentials()
        self._client: tts.TextToSpeechAsyncClient | None = None
        self._channel: Any = None  # the client's grpc.aio.Channel

    def prefer_output(self, sample_rate: int, mulaw: bool) -> None:
        """Speak the transport's rate, and mu-law, where they are left to choose (see
        :mod:`callweaver.services.tts`): Google synthesizes any rate."""
        if self._auto_rate:
            self.rate = sample_rate
        if self._auto_encoding:
            encoding = "MULAW" if mulaw and self.rate == 8000 else "PCM"
            self.params = self.params.model_copy(update={"encoding": encoding})

    def __repr__(self) -> str:
        p = self.params
        return f"GoogleTTS(name={self.name!r}, voice={p.voice!r}, endpoint={p.endpoint!r})"

    async def warm(self) -> None:
        """Open the channel ahead of the first turn. Best effort: failures are ignored (the
        first synthesis reports them)."""
        try:
            self._open()
            if not await self._connect():
                await self._drop(self._channel)
        except ProviderError:
            pass

    async def aclose(self) -> None:
        """Close the channel; a later synthesis opens a new one."""
        await self._drop(self._channel)

    async def synthesize(self, text: str, language: str = "") -> AsyncIterator[Speech]:
        """Speak ``text``: PCM16 mono chunks at ``sample_rate``, the first as soon as it comes
        (unary: the whole sentence in one chunk)."""
        language_code, voice = self._voice_for(language)
        if not any(c.isalnum() for c in text):
            return
        size = len(text.encode())
        if size > MAX_TEXT_BYTES:
            raise ProviderError(
                self.name,
                f"text too long for Google ({size} bytes, {MAX_TEXT_BYTES} at most)",
                retryable=True,
            )
        client = self._open()
        channel = self._channel
        connected = await self._connect()
        voice_params = tts.VoiceSelectionParams(language_code=language_code, name=voice)
        deadline = asyncio.get_running_loop().time() + self.params.first_audio_timeout_s
        try:
            try:
                audio = (
                    self._stream(client, text, voice_params, deadline)
                    if self.params.streaming
                    else self._unary(client, text, voice_params, deadline)
                )
                async with aclosing(audio) as chunks:
                    async for speech in chunks:
                        yield speech
            except _StatusLost:
                # the same request, unary, says what is wrong (or speaks the text)
                async with aclosing(self._unary(client, text, voice_params, deadline)) as chunks:
                    async for speech in chunks:
                        yield speech
        finally:
            if not connected:
                # gRPC fails every request on a channel that could not connect until its
                # reconnect backoff (up to two minutes) runs out, even once the server is back
                await self._drop(channel)

    def _voice_for(self, language: str) -> tuple[str, str]:
        """(language code, voice name) for a request in ``language`` (see the module
        docstring); Google's default voice of a language has no name."""
        p = self.params
        voice = self.voices.voice(language)
        if voice == p.voice:
            return p.language_code, p.voice
        if voice is not None:
            match = _VOICE.fullmatch(voice)
            assert match is not None  # the params and the table's check saw to it
            return match["locale"], voice
        locale = google_locale(language) if p.other_languages == "table" else None
        if locale is None:
            raise ProviderError(self.name, f"no Google voice for {language!r}", retryable=True)
        return locale, ""

    # -- the two methods ------------------------------------------------------------------

    async def _unary(
        self,
        client: tts.TextToSpeechAsyncClient,
        text: str,
        voice: tts.VoiceSelectionParams,
        deadline: float,
    ) -> AsyncGenerator[Speech, None]:
        """The whole audio in one answer, by ``deadline`` (loop time)."""
        p = self.params
        request = tts.SynthesizeSpeechRequest(
            input=tts.SynthesisInput(text=text),
            voice=voice,
            audio_config=tts.AudioConfig(
                audio_encoding=_ENCODINGS[p.encoding], sample_rate_hertz=self.rate
            ),
        )
        left = deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout_at(deadline):
                response = await client.synthesize_speech(
                    request=request,
                    retry=None,
                    timeout=max(left, 0.001),  # the server gives up when we do
                    metadata=self._metadata(),
                )
        except TimeoutError:
            raise self._timeout(0) from None
        except Exception as exc:
            raise self._failure(exc, 0) from exc
        yield Speech(self._decode_unary(response.audio_content), self.rate)

    async def _stream(
        self,
        client: tts.TextToSpeechAsyncClient,
        text: str,
        voice: tts.VoiceSelectionParams,
        deadline: float,
    ) -> AsyncGenerator[Speech, None]:
        """Audio chunks as they come: the first by ``deadline`` (loop time), each later one
        within ``idle_timeout_s`` of the one before."""
        p = self.params
        config = tts.StreamingSynthesizeConfig(
            voice=voice,
            streaming_audio_config=tts.StreamingAudioConfig(
                audio_encoding=_ENCODINGS[p.encoding], sample_rate_hertz=self.rate
            ),
        )

        async def requests() -> AsyncIterator[tts.StreamingSynthesizeRequest]:
            yield tts.StreamingSynthesizeRequest(streaming_config=config)
            yield tts.StreamingSynthesizeRequest(input=tts.StreamingSynthesisInput(text=text))

        loop = asyncio.get_running_loop()
        chunks = 0
        odd = b""  # half a sample, until the next chunk completes it
        call: Any = None
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    call = await client.streaming_synthesize(
                        requests=requests(), retry=None, timeout=None, metadata=self._metadata()
                    )
            except TimeoutError:
                raise self._timeout(0) from None
            except Exception as exc:
                raise self._failure(exc, 0) from exc
            responses = aiter(call)
            while True:
                response = await self._next(responses, deadline, chunks)
                if response is None:
                    break
                audio = response.audio_content
                if not audio:
                    continue
                pcm = odd + (ulaw_to_pcm16(audio) if p.encoding == "MULAW" else audio)
                whole = len(pcm) // 2 * 2
                pcm, odd = pcm[:whole], pcm[whole:]
                chunks += 1
                if pcm:
                    yield Speech(pcm, self.rate)
                deadline = loop.time() + p.idle_timeout_s
        finally:
            if isinstance(call, grpc.aio.Call):
                call.cancel()  # left early (barge-in) or failed: end the call at the server
        if odd:
            raise self._garbage(f"the stream ended in half a sample (after {chunks} chunks)")
        if not chunks:
            raise ProviderError(self.name, "no audio for the text", retryable=True)

    async def _next(
        self,
        responses: AsyncIterator[tts.StreamingSynthesizeResponse],
        deadline: float,
        chunks: int,
    ) -> tts.StreamingSynthesizeResponse | None:
        """The stream's next message by ``deadline`` (loop time), None at its end."""
        try:
            async with asyncio.timeout_at(deadline):
                return await anext(responses, None)
        except TimeoutError:
            raise self._timeout(chunks) from None
        except Exception as exc:
            raise self._failure(exc, chunks) from exc

    def _decode_unary(self, audio: bytes) -> bytes:
        """PCM16 at ``sample_rate`` from a unary answer's audio (WAV for LINEAR16 and MULAW)."""
        p = self.params
        rate = self.rate
        pcm = audio
        if p.encoding != "PCM":
            try:
                wav = parse_wav(audio)
            except ValueError as exc:
                raise self._garbage(f"{p.encoding} audio is not a WAV file ({exc})") from None
            want = (1, 16) if p.encoding == "LINEAR16" else (7, 8)
            if (wav.format_tag, wav.bits) != want or wav.channels != 1:
                raise self._garbage(
                    f"asked for {p.encoding}, got a WAV of format {wav.format_tag}, "
                    f"{wav.channels} channels, {wav.bits} bits"
                )
            rate = wav.sample_rate
            pcm = wav.data if p.encoding == "LINEAR16" else ulaw_to_pcm16(wav.data)
        if not pcm:
            raise ProviderError(self.name, "no audio for the text", retryable=True)
        if len(pcm) % 2:
            raise self._garbage(f"{len(pcm)} bytes of PCM16 audio are not whole samples")
        if rate != self.rate and rate > 0:
            pcm = resample(pcm, rate, self.rate)
        return pcm

    # -- the channel ----------------------------------------------------------------------

    def _load_credentials(self) -> Any:
        path = self.params.credentials_file
        if path is None:
            return None
        try:
            # google-auth leaves this classmethod unannotated
            return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                path, scopes=_SCOPES
            )
        except (OSError, ValueError) as exc:
            # the exception's text may quote the file: only its kind goes into the message
            raise ProviderError(
                self.name,
                f"cannot load the service-account file {path!r} ({type(exc).__name__})",
                retryable=False,
            ) from None

    def _open(self) -> tts.TextToSpeechAsyncClient:
        """The client, created with its channel on first use (the channel connects lazily)."""
        if self._client is not None:
            return self._client
        p = self.params
        try:
            if p.insecure:
                channel = grpc.aio.insecure_channel(p.endpoint, options=_CHANNEL_OPTIONS)
                client = tts.TextToSpeechAsyncClient(
                    transport=TextToSpeechGrpcAsyncIOTransport(channel=channel)
                )
            else:
                options = ClientOptions(api_endpoint=p.endpoint, api_key=self._key or None)
                client = tts.TextToSpeechAsyncClient(
                    credentials=self._credentials, client_options=options, transport=_tls_transport
                )
        except auth_exceptions.GoogleAuthError as exc:
            raise self._error(f"no credentials: {exc}", retryable=False) from None
        except Exception as exc:
            raise self._error(
                f"cannot create the client: {type(exc).__name__}: {exc}", retryable=False
            ) from None
        transport = client.transport
        assert isinstance(transport, TextToSpeechGrpcAsyncIOTransport)  # "grpc_asyncio"
        self._client = client
        self._channel = transport.grpc_channel
        return client

    async def _connect(self) -> bool:
        """Wait (``connect_timeout_s`` at most) until the channel is connected (True) or has
        failed to connect (False: a request then fails at once, with gRPC's reason)."""
        channel = self._channel
        ready, failed = grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE
        state = channel.get_state(try_to_connect=True)
        try:
            async with asyncio.timeout(self.params.connect_timeout_s):
                while state not in (ready, failed):
                    await channel.wait_for_state_change(state)
                    state = channel.get_state(try_to_connect=True)
        except TimeoutError:
            await self._drop(channel)
            p = self.params
            raise self._error(
                f"cannot connect to {p.endpoint} within {p.connect_timeout_s} s", retryable=True
            ) from None
        return bool(state == ready)

    async def _drop(self, channel: Any) -> None:
        """Close ``channel``, and forget it (and its client) if it is still the current one."""
        if channel is None:
            return
        if channel is self._channel:
            self._client = self._channel = None
        await channel.close()

    def _metadata(self) -> Sequence[tuple[str, str]]:
        # over TLS the client sends the key itself (ClientOptions); plaintext needs it here
        if self.params.insecure and self._key:
            return (("x-goog-api-key", self._key),)
        return ()

    # -- errors ---------------------------------------------------------------------------

    def _error(self, message: str, *, retryable: bool) -> ProviderError:
        if self._key:
            message = message.replace(self._key, "***")
        return ProviderError(self.name, message, retryable=retryable)

    def _garbage(self, message: str) -> ProviderError:
        return self._error(f"bad audio: {message}", retryable=True)

    def _timeout(self, chunks: int) -> ProviderError:
        p = self.params
        return self._error(
            f"no audio within {p.first_audio_timeout_s} s"
            if chunks == 0
            else f"stream stalled: nothing for {p.idle_timeout_s} s after {chunks} chunks",
            retryable=True,
        )

    def _failure(self, exc: Exception, chunks: int) -> ProviderError:
        """A failed call as a ProviderError, retryable by its gRPC status."""
        status = _status(exc)
        if status is None:
            retryable = True
            message = f"{type(exc).__name__}: {exc}".rstrip(": ")
        else:
            code, detail = status
            if code == "DEADLINE_EXCEEDED" and chunks == 0:
                return self._timeout(0)  # the unary call's deadline, which is ours
            if code == "INTERNAL" and detail == LOST_STATUS and chunks == 0:
                return _StatusLost(self.name, f"{code}: {detail}", retryable=True)
            retryable = code in RETRYABLE
            message = f"{code}: {detail}"
        if chunks:
            message = f"stream cut after {chunks} chunks: {message}"
        return self._error(message, retryable=retryable)


class _StatusLost(ProviderError):
    """A stream the server ended before any audio, its status lost on the way (see
    ``LOST_STATUS``); the unary method is asked instead. Internal."""


def _tls_transport(**kwargs: Any) -> TextToSpeechGrpcAsyncIOTransport:
    """The SDK's own TLS transport (the client passes credentials and endpoint), its channel
    with a subchannel pool of its own."""
    return TextToSpeechGrpcAsyncIOTransport(channel=_tls_channel, **kwargs)


def _tls_channel(host: str, **kwargs: Any) -> Any:
    kwargs["options"] = [*kwargs.get("options", ()), _OWN_POOL]
    return TextToSpeechGrpcAsyncIOTransport.create_channel(host, **kwargs)


def _status(exc: Exception) -> tuple[str, str] | None:
    """(gRPC status name, its message) of a failed call; None for any other failure."""
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        code = exc.grpc_status_code
        return (str(code.name) if code is not None else "UNKNOWN"), exc.message
    if isinstance(exc, grpc.aio.AioRpcError):  # one the SDK did not map
        return str(exc.code().name), str(exc.details())
    return None


_ENCODINGS: dict[str, int] = {
    "PCM": tts.AudioEncoding.PCM,
    "LINEAR16": tts.AudioEncoding.LINEAR16,
    "MULAW": tts.AudioEncoding.MULAW,
}
