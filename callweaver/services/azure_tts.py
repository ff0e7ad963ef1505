"""Azure neural text-to-speech through the Azure Speech SDK, streamed chunk by chunk.

One ``SpeechSynthesizer`` per provider keeps one WebSocket open across sentences (the SDK
reuses it for every synthesis); :meth:`AzureTTS.warm` opens it before the first one. A sentence
goes out as SSML naming the voice for its language (the configured ``voice`` in its own
language, ``voices`` per language, else the locale table's Azure voice: see
:class:`~callweaver.services.locales.VoiceChoice`; a language with none is left to the next
provider), and its audio comes back in the raw format asked
for (``output_format``: PCM at 8/16/24/48 kHz, or 8 kHz mu-law, decoded here; ``auto``: the
transport's, see :mod:`callweaver.services.tts`), each chunk handed on as it arrives (the
SDK's ``synthesizing`` events).

Timeouts: the SDK's own ``SpeechSynthesis_FirstChunkTimeoutMs`` is set from
``first_audio_timeout_s`` with ``SpeechSynthesis_MaxRetryTimes`` 0 (without them a server that
accepts and never answers costs 80 s); ``connect_timeout_s`` on top of it is our backstop for
the first chunk, and ``idle_timeout_s`` bounds a stall between chunks.

The words' offsets in the audio (``last_word_boundaries``, seconds and word) are kept for the
last synthesis; each word also rides on the next audio chunk, with its offset from that chunk's
start (:attr:`Speech.text`, :attr:`Speech.words`), so the call's spoken log places a barge-in
on the word the caller was hearing.

Text streams (:meth:`AzureTTS.synthesize_stream`, an LLM's tokens) use the SDK's text-stream
input, which only the ``/cognitiveservices/websocket/v2`` endpoint serves: a synthesizer per
voice on that endpoint, with the voice in its config (no SSML), built on first use.
Each piece goes out as a USP ``text.piece`` as it arrives, the end of the text as
``text.end``; the audio comes back as for SSML. The first-audio timeout runs from the end of
the text (the service waits for enough text to speak, and a slow LLM is not its fault).
"""

from __future__ import annotations

import asyncio
import functools
import re
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Literal
from xml.sax.saxutils import escape, quoteattr

from pydantic import Field, field_validator

from callweaver.audio.mulaw import ulaw_to_pcm16
from callweaver.errors import ProviderError
from callweaver.services.azure_common import (
    AzureParams,
    Bridge,
    blocking,
    disconnect,
    next_event,
    provider_error,
    scrub,
    speech_config,
    speechsdk,
)
from callweaver.services.locales import TableVoicesParams, VoiceChoice
from callweaver.services.tts import Speech, nearest_rate

OutputFormat = Literal[
    "raw-8khz-16bit-mono-pcm",
    "raw-16khz-16bit-mono-pcm",
    "raw-24khz-16bit-mono-pcm",
    "raw-48khz-16bit-mono-pcm",
    "raw-8khz-8bit-mono-mulaw",
]
# output format -> (the SDK's enum member, sample rate, mu-law)
_FORMATS: dict[str, tuple[str, int, bool]] = {
    "raw-8khz-16bit-mono-pcm": ("Raw8Khz16BitMonoPcm", 8000, False),
    "raw-16khz-16bit-mono-pcm": ("Raw16Khz16BitMonoPcm", 16000, False),
    "raw-24khz-16bit-mono-pcm": ("Raw24Khz16BitMonoPcm", 24000, False),
    "raw-48khz-16bit-mono-pcm": ("Raw48Khz16BitMonoPcm", 48000, False),
    "raw-8khz-8bit-mono-mulaw": ("Raw8Khz8BitMonoMULaw", 8000, True),
}
_DEFAULT_FORMAT = "raw-24khz-16bit-mono-pcm"  # auto, outside a call
# en-US-JennyNeural, zh-HK-HiuMaanNeural, zh-CN-shaanxi-XiaoniNeural, sr-Latn-RS-NicholasNeural,
# en-US-Ava:DragonHDLatestNeural
_VOICE = re.compile(
    r"(?P<locale>[a-z]{2,3}(?:-[A-Z][a-z]{3})?-[A-Z]{2})-(?:[a-z]+-)?[A-Z][A-Za-z0-9]*"
    r"(?::[A-Za-z0-9]+)?"
)
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_TICKS_PER_S = 10_000_000
_SETTLE_S = 5.0  # longest wait for a finished or stopped synthesis to be settled
_FINISHED = 32  # result ids of past syntheses remembered, to drop their late events


class AzureTTSParams(AzureParams, TableVoicesParams):
    voice_form = _VOICE
    voice_what = "an Azure voice name (locale-NameNeural)"

    voice: str = Field(
        "en-US-JennyNeural", description="an Azure neural voice: en-US-JennyNeural, zh-HK-..."
    )
    output_format: OutputFormat | Literal["auto"] = Field(
        "auto",
        description="raw PCM at 8/16/24/48 kHz or 8 kHz mu-law; auto: the transport's rate "
        "(mu-law for Twilio), 24 kHz outside a call",
    )
    first_audio_timeout_s: float = Field(
        3.0, ge=0.5, le=60, description="from the request to the first audio chunk"
    )
    idle_timeout_s: float = Field(5.0, gt=0, le=60, description="longest gap between chunks")

    @field_validator("voice")
    @classmethod
    def _voice_form(cls, voice: str) -> str:
        if not _VOICE.fullmatch(voice):
            raise ValueError(
                f"{voice!r} is not an Azure voice name (locale-NameNeural, e.g. en-US-JennyNeural)"
            )
        return voice


def voice_locale(voice: str) -> str:
    """The locale a voice name starts with: ``zh-HK-HiuMaanNeural`` -> ``zh-HK``."""
    match = _VOICE.fullmatch(voice)
    if match is None:
        raise ValueError(f"not an Azure voice name: {voice!r}")
    return match["locale"]


def build_ssml(voice: str, text: str) -> str:
    """The SSML document that speaks ``text`` (escaped) with ``voice``."""
    body = escape(_NOT_XML.sub(" ", text))
    return (
        "<speak version='1.0' xmlns='http://www.w3.org/2001/10/synthesis' "
        f"xml:lang={quoteattr(voice_locale(voice))}>"
        f"<voice name={quoteattr(voice)}>{body}</voice></speak>"
    )


@dataclass
class _Turn:
    """One synthesis in flight: its events, in order, once its result id is known."""

    queue: asyncio.Queue[tuple[str, Any]] = field(default_factory=asyncio.Queue)
    result_id: str | None = None
    ended: bool = False


class _Synthesizer:
    """The SDK's synthesizer, its connection and every signal connected to them. Built and
    closed in a worker thread: closing drops the last references, so the SDK releases there."""

    def __init__(self, params: AzureTTSParams, bridge: Bridge, *, text_stream: str = "") -> None:
        config = _stream_config(params, text_stream) if text_stream else speech_config(params)
        member, _, _ = _FORMATS[params.output_format]
        config.set_speech_synthesis_output_format(
            getattr(speechsdk.SpeechSynthesisOutputFormat, member)
        )
        # a text stream's first audio waits for the text: ours is the timeout (from its end)
        timeout_ms = str(60_000 if text_stream else round(params.first_audio_timeout_s * 1000))
        config.set_property_by_name("SpeechSynthesis_FirstChunkTimeoutMs", timeout_ms)
        config.set_property_by_name("SpeechSynthesis_MaxRetryTimes", "0")
        self.synthesizer: Any = speechsdk.SpeechSynthesizer(speech_config=config, audio_config=None)
        self.connection: Any = speechsdk.Connection.from_speech_synthesizer(self.synthesizer)
        s, c, h = self.synthesizer, self.connection, bridge.handler
        self.signals = [
            (s.synthesis_started, h("started", lambda e: (e.result.result_id, None))),
            (s.synthesizing, h("audio", lambda e: (e.result.result_id, e.result.audio_data))),
            (s.synthesis_completed, h("completed", lambda e: (e.result.result_id, None))),
            (s.synthesis_canceled, h("canceled", _cancellation)),
            (s.synthesis_word_boundary, h("word", _word)),
            (c.connected, h("connected", lambda e: (None, None))),
            (c.disconnected, h("disconnected", lambda e: (None, None))),
        ]
        for signal, callback in self.signals:
            signal.connect(callback)

    def close(self) -> None:
        disconnect(signal for signal, _ in self.signals)
        self.signals = []
        self.connection = None
        self.synthesizer = None


def _stream_config(params: AzureTTSParams, voice: str) -> Any:
    """A ``SpeechConfig`` on the v2 endpoint (text-stream input), speaking ``voice``."""
    if params.host is not None:
        root = params.host.rstrip("/")
    else:
        root = f"wss://{params.region}.tts.speech.microsoft.com"
    config = speechsdk.SpeechConfig(
        endpoint=f"{root}/cognitiveservices/websocket/v2",
        subscription=params.key.get_secret_value(),
    )
    config.speech_synthesis_voice_name = voice
    return config


def _cancellation(event: Any) -> tuple[str, tuple[str, str, str]]:
    details = event.result.cancellation_details
    return event.result.result_id, (
        details.reason.name,
        details.error_code.name,
        details.error_details or "",
    )


def _word(event: Any) -> tuple[str, tuple[float, str, bool]]:
    is_word = event.boundary_type == speechsdk.SpeechSynthesisBoundaryType.Word
    return event.result_id, (event.audio_offset / _TICKS_PER_S, event.text, is_word)


class AzureTTS:
    """The Azure provider of the TTS interface (see the module docstring)."""

    Params = AzureTTSParams

    def __init__(self, params: AzureTTSParams, *, name: str = "azure") -> None:
        self.params = params
        self.name = name
        self.voices = VoiceChoice(
            "azure",
            params.voice,
            voice_locale(params.voice),
            voices=params.voices,
            use_table=params.other_languages == "table",
        )
        self.languages: frozenset[str] | None = self.voices.languages()
        self.last_word_boundaries: list[tuple[float, str]] = []
        self.last_first_audio_s: float | None = None  # request -> first chunk, last synthesis
        self._key = params.key.get_secret_value()
        self._auto = params.output_format == "auto"
        if self._auto:
            self.params = params = params.model_copy(update={"output_format": _DEFAULT_FORMAT})
        _, self._rate, self._mulaw = _FORMATS[params.output_format]
        self._synth: _Synthesizer | None = None
        # the v2 endpoint's, for text streams: one per voice (the voice is in its config)
        self._stream_synths: dict[str, _Synthesizer] = {}
        self.streams_text = True
        self._connected = False
        self._connection_changed = asyncio.Event()
        self._build_lock = asyncio.Lock()
        self._lock = asyncio.Lock()  # one synthesis at a time on the one WebSocket
        self._turn: _Turn | None = None
        self._finished: deque[str] = deque(maxlen=_FINISHED)

    def prefer_output(self, sample_rate: int, mulaw: bool) -> None:
        """With ``output_format: auto``: ask for the transport's rate, or mu-law (see
        :mod:`callweaver.services.tts`). Before the first synthesis (or :meth:`warm`)."""
        if not self._auto or self._synth is not None or self._stream_synths:
            return
        if mulaw and sample_rate == 8000:
            fmt = "raw-8khz-8bit-mono-mulaw"
        else:
            rate = nearest_rate((r for _, r, m in _FORMATS.values() if not m), sample_rate)
            fmt = next(f for f, (_, r, m) in _FORMATS.items() if r == rate and not m)
        self.params = self.params.model_copy(update={"output_format": fmt})
        _, self._rate, self._mulaw = _FORMATS[fmt]

    def __repr__(self) -> str:
        p = self.params
        where = p.host or p.region
        return f"AzureTTS(name={self.name!r}, where={where!r}, voice={p.voice!r})"

    async def warm(self) -> None:
        """Open the WebSocket ahead of the first sentence. Best effort: a failure here shows
        again, as a ProviderError, on the first synthesis."""
        try:
            synth = await self._synthesizer()
            if self._connected:
                return
            self._connection_changed.clear()
            await blocking(synth.connection.open, True)
            async with asyncio.timeout(self.params.connect_timeout_s):
                await self._connection_changed.wait()
        except (ProviderError, TimeoutError, RuntimeError):
            pass

    async def aclose(self) -> None:
        """Disconnect every signal and release the synthesizer (its WebSocket with it)."""
        async with self._build_lock:
            synths = (self._synth, *self._stream_synths.values())
            self._synth, self._stream_synths = None, {}
            self._connected = False
        for synth in synths:
            if synth is not None:
                await blocking(synth.close)

    def voice_for(self, language: str) -> str:
        """The voice a request in ``language`` is spoken with (see
        :class:`~callweaver.services.locales.VoiceChoice`); a ProviderError when there is
        none (a failover skips this provider for such a language before asking)."""
        voice = self.voices.voice(language)
        if voice is None:
            raise ProviderError(self.name, f"no Azure voice for {language!r}", retryable=True)
        return voice

    async def synthesize(self, text: str, language: str = "") -> AsyncIterator[Speech]:
        """Speak ``text`` with the voice for ``language``, chunk by chunk as the audio
        arrives."""
        if not any(c.isalnum() for c in text):
            return
        ssml = build_ssml(self.voice_for(language), text)
        async with self._lock:
            synth = await self._synthesizer()
            turn, started = self._begin()
            try:
                future = await blocking(synth.synthesizer.speak_ssml_async, ssml)
            except RuntimeError as exc:  # the SDK refused the request itself
                self._turn = None
                raise self._sdk_error("cannot start the synthesis", exc) from None
            try:
                async for speech in self._audio(turn, started):
                    yield speech
            finally:
                await self._settle(synth, turn, future)

    async def synthesize_stream(
        self, texts: AsyncIterator[str], language: str = ""
    ) -> AsyncIterator[Speech]:
        """Speak text as it is written (see the module docstring): each piece of ``texts``
        goes to the service as it comes, audio is yielded as it arrives. An error of
        ``texts`` itself is raised as it is."""
        voice = self.voice_for(language)
        async with self._lock:
            synth = await self._synthesizer(text_stream=voice)
            turn, started = self._begin()
            try:
                request = speechsdk.SpeechSynthesisRequest(
                    input_type=speechsdk.SpeechSynthesisRequestInputType.TextStream
                )
                future = await blocking(synth.synthesizer.speak_async, request)
            except RuntimeError as exc:
                self._turn = None
                raise self._sdk_error("cannot start the synthesis", exc) from None
            # The writer is this generator's own task, cancelled and awaited in `finally`
            writer = asyncio.ensure_future(self._write(request, texts, turn))
            try:
                async for speech in self._audio(turn, started, streamed=True):
                    yield speech
            finally:
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)
                if not turn.ended:
                    with suppress(RuntimeError):
                        request.input_stream.close()
                await self._settle(synth, turn, future)

    async def _write(self, request: Any, texts: AsyncIterator[str], turn: _Turn) -> None:
        """Send the text as it comes, then its end; tell the receiver (its timeout)."""
        try:
            async for piece in texts:
                if piece:
                    request.input_stream.write(piece)  # queued by the SDK: does not block
        except Exception as exc:  # the text source failed: the receiver raises it
            turn.queue.put_nowait(("source", exc))
            raise
        finally:
            request.input_stream.close()
        turn.queue.put_nowait(("input-ended", None))

    # -- internals ------------------------------------------------------------------------

    def _begin(self) -> tuple[_Turn, float]:
        """A new synthesis: its turn (the events' destination) and when it started."""
        turn = _Turn()
        self._turn = turn
        self.last_word_boundaries = []
        self.last_first_audio_s = None
        return turn, time.monotonic()

    async def _settle(self, synth: _Synthesizer, turn: _Turn, future: Any) -> None:
        """The synthesis is over for us: stop it if it is not done (barge-in, timeout), and
        wait for its future, which keeps the synthesizer and its WebSocket alive in the SDK,
        even after the synthesizer is released, until it is resolved."""
        self._turn = None
        if turn.result_id is not None:
            self._finished.append(turn.result_id)
        if not turn.ended:
            await self._stop(synth)
        with suppress(TimeoutError, RuntimeError):
            async with asyncio.timeout(_SETTLE_S):
                await blocking(future.get)

    async def _synthesizer(self, *, text_stream: str = "") -> _Synthesizer:
        """The SSML synthesizer, or with ``text_stream`` (a voice) that voice's text-stream
        synthesizer; built on first use."""
        async with self._build_lock:
            synth = self._stream_synths.get(text_stream) if text_stream else self._synth
            if synth is None:
                bridge = Bridge(asyncio.get_running_loop(), self._dispatch)
                build = functools.partial(_Synthesizer, text_stream=text_stream)
                try:
                    synth = await blocking(build, self.params, bridge)
                except (RuntimeError, ValueError) as exc:  # the SDK refuses the configuration
                    raise self._sdk_error("cannot set up", exc, retryable=False) from None
                if text_stream:
                    self._stream_synths[text_stream] = synth
                else:
                    self._synth = synth
            return synth

    def _sdk_error(self, what: str, exc: Exception, *, retryable: bool = True) -> ProviderError:
        return ProviderError(
            self.name, f"{what}: {scrub(self._key, str(exc))}", retryable=retryable
        )

    async def _stop(self, synth: _Synthesizer) -> None:
        def stop() -> None:
            if synth.synthesizer is not None:
                synth.synthesizer.stop_speaking_async().get()

        with suppress(RuntimeError):  # refused in some states; the next synthesis still works
            await blocking(stop)

    def _dispatch(self, kind: str, what: Any) -> None:
        """An SDK event, on the loop: to the synthesis it belongs to."""
        if kind in ("connected", "disconnected"):
            self._connected = kind == "connected"
            self._connection_changed.set()
            return
        turn = self._turn
        if turn is None:
            return
        if kind == "error":
            turn.queue.put_nowait((kind, what))
            return
        result_id, payload = what
        if turn.result_id is None and result_id not in self._finished:
            turn.result_id = result_id
        if result_id == turn.result_id:
            turn.queue.put_nowait((kind, payload))

    async def _audio(
        self, turn: _Turn, started: float, *, streamed: bool = False
    ) -> AsyncIterator[Speech]:
        p = self.params
        loop = asyncio.get_running_loop()
        first_s = p.connect_timeout_s + p.first_audio_timeout_s
        # a text stream owes its first audio only once the text has ended
        writing = streamed  # no deadline while the text is being written
        deadline = float("inf") if writing else loop.time() + first_s
        carry = b""
        total = 0
        words: list[tuple[float, str]] = []  # (offset in s, word), spoken from the next chunk on
        bytes_per_s = self._rate * (1 if self._mulaw else 2)
        while True:
            item = await next_event(turn.queue, deadline)
            if item is None:
                raise self._timeout(total)
            kind, payload = item
            if kind == "input-ended":
                writing = False
                deadline = loop.time() + (p.idle_timeout_s if total else first_s)
                continue
            if kind == "source":
                raise payload
            if kind == "audio" and payload:
                if self.last_first_audio_s is None:
                    self.last_first_audio_s = time.monotonic() - started
                total += len(payload)
                if self._mulaw:
                    pcm = ulaw_to_pcm16(payload)
                else:
                    data = carry + payload
                    cut = len(data) // 2 * 2
                    pcm, carry = data[:cut], data[cut:]
                if pcm:
                    at = (total - len(payload) - len(carry)) / bytes_per_s  # the chunk's start
                    yield Speech(
                        pcm,
                        self._rate,
                        "".join(w + " " for _, w in words),
                        tuple((offset - at, w) for offset, w in words),
                    )
                    words = []
                if not writing:
                    deadline = loop.time() + p.idle_timeout_s
            elif kind == "word":
                offset, word, is_word = payload
                if is_word:
                    self.last_word_boundaries.append((offset, word))
                    words.append((offset, word))
            elif kind == "completed":
                turn.ended = True
                if words and total:  # reported after the last audio: placed back on it
                    end = (total - len(carry)) / bytes_per_s
                    text = "".join(w + " " for _, w in words)
                    yield Speech(b"", self._rate, text, tuple((o - end, w) for o, w in words))
                break
            elif kind == "canceled":
                turn.ended = True
                reason, code, details = payload
                raise provider_error(self.name, self._key, code, details or reason)
            elif kind == "error":
                raise ProviderError(self.name, f"unreadable SDK event: {payload}", retryable=True)
        if carry:
            raise ProviderError(
                self.name,
                f"garbled audio: {total} bytes of {p.output_format}, an odd count",
                retryable=True,
            )
        if total == 0:
            raise ProviderError(self.name, "the service sent no audio", retryable=True)

    def _timeout(self, received: int) -> ProviderError:
        p = self.params
        if received:
            message = f"audio stalled: nothing for {p.idle_timeout_s} s after {received} bytes"
        else:
            message = f"no audio within {p.connect_timeout_s + p.first_audio_timeout_s} s"
        return ProviderError(self.name, message, retryable=True)
