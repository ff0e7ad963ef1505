"""Azure speech-to-text through the Azure Speech SDK: continuous recognition of one utterance.

Each utterance gets its own recognizer fed through a push stream at the utterance's own rate
(16-bit mono PCM; rates other than 8 and 16 kHz are resampled to 16 kHz), in the call's
language (a bare language code is recognized in its usual locale: ``yue`` in ``zh-HK``).
The recognizer's ``recognizing`` events are the interim transcripts, its ``recognized``
results are collected until the SDK stops the session, which it does once the service has
answered for the end of the stream. The text is the results' ``DisplayText`` joined (without
spaces for languages written without them).

:meth:`AzureSTT.open` streams (:class:`~callweaver.services.stt.StreamingSTT`): the
recognizer starts at the start of speech, gets the audio as the caller speaks, and the
stream is closed at :meth:`~_Stream.finish`; the service has heard the utterance by then.
:meth:`AzureSTT.transcribe` is the same stream with the whole utterance pushed at once.

``result_timeout_s`` runs from the end of the audio (``finish``) to the session's end (the
service's whole answer); while the WebSocket is not open yet, ``connect_timeout_s`` from the
start is allowed instead if it is later. The time from the end of the audio to the final
result is kept in ``last_latency_s``.

A recognizer is torn down (stopped, its signals disconnected, released) by one worker thread
after its result is returned: stopping one that is still waiting for the service, or
releasing it, can take seconds in the SDK.
:meth:`AzureSTT.warm` builds the next recognizer and opens its WebSocket ahead of the turn.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic import Field

from callweaver.audio.resample import Resampler, resample
from callweaver.errors import ProviderError
from callweaver.services.azure_common import (
    LOCALES,
    AzureParams,
    Bridge,
    Reaper,
    blocking,
    disconnect,
    languages_of,
    next_event,
    primary,
    provider_error,
    scrub,
    speech_config,
    speechsdk,
)
from callweaver.services.stt import STTStream, Transcript, Utterance

# The locale to recognize a bare language code in (else the first one listed in LOCALES)
_DEFAULT_LOCALE = {
    "en": "en-US",
    "es": "es-ES",
    "fr": "fr-FR",
    "de": "de-DE",
    "pt": "pt-BR",
    "ar": "ar-SA",
    "zh": "zh-CN",
    "yue": "zh-HK",
    "bn": "bn-IN",
    "nl": "nl-NL",
    "sw": "sw-KE",
    "ta": "ta-IN",
    "ur": "ur-PK",
}
_RATES = (8000, 16000)  # what the service takes; other rates are resampled to 16 kHz
# written without spaces between words: results are joined without them
_UNSPACED = frozenset({"zh", "yue", "wuu", "ja", "th", "lo", "km", "my"})


class AzureSTTParams(AzureParams):
    language: str = Field(
        "en-US",
        pattern=r"^[a-z]{2,3}(-[A-Z][a-z]{3})?-[A-Z]{2}$",
        description="the locale recognized when the call gives no language, e.g. zh-HK",
    )
    result_timeout_s: float = Field(
        5.0, gt=0, le=60, description="from the end of the audio to the final result"
    )
    push_ms: int = Field(
        100,
        ge=0,
        le=1000,
        description="caller audio goes to the SDK in pieces this long while the caller "
        "speaks (each write costs the event loop 0.1-0.3 ms); the rest at the end of the turn",
    )


class _Recognition:
    """One utterance's recognizer, push stream, connection and connected signals. Built in a
    worker thread, closed in the reaper's: closing drops the last references to them."""

    def __init__(
        self,
        params: AzureSTTParams,
        locale: str,
        rate: int,
        bridge: Bridge,
        queue: asyncio.Queue[tuple[str, Any]],
    ) -> None:
        self.locale, self.rate = locale, rate
        config = speech_config(params)
        config.speech_recognition_language = locale
        # stop and release wait this long for the service's last results (default 1 s and
        # 10 s): a session ends only once they came, or after we gave up on them
        config.set_property_by_name("SPEECH-StopRecognitionTimeoutInSeconds", "0")
        # the utterance is pushed whole at the endpoint (it was recorded while the caller
        # spoke), but the SDK sends only its first 5 s at full speed and the rest at real
        # time: a 12 s turn would wait 7 s more. Measured against the USP fake: 6 s of audio
        # 560 -> 77 ms, 12 s 113 ms. (The SDK's own property, not in its documented list.)
        config.set_property_by_name("SPEECH-TransmitLengthBeforeThrottleMs", "120000")
        audio_format = speechsdk.audio.AudioStreamFormat(
            samples_per_second=rate, bits_per_sample=16, channels=1
        )
        self.stream: Any = speechsdk.audio.PushAudioInputStream(stream_format=audio_format)
        self.recognizer: Any = speechsdk.SpeechRecognizer(
            speech_config=config, audio_config=speechsdk.audio.AudioConfig(stream=self.stream)
        )
        self.connection: Any = speechsdk.Connection.from_recognizer(self.recognizer)
        self.connected = False
        self.queue = queue
        r, c, h = self.recognizer, self.connection, bridge.handler
        self.signals = [
            (r.recognizing, h("recognizing", lambda e: e.result.text)),
            (r.recognized, h("recognized", lambda e: (e.result.reason.name, e.result.text))),
            (r.canceled, h("canceled", _cancellation)),
            (r.session_stopped, h("stopped", lambda e: None)),
            (c.connected, h("connected", lambda e: None)),
            (c.disconnected, h("disconnected", lambda e: None)),
        ]
        for signal, callback in self.signals:
            signal.connect(callback)

    def start(self) -> None:
        self.recognizer.start_continuous_recognition_async().get()

    def write(self, pcm: bytes) -> None:
        """Hand audio to the SDK's push stream: it copies it into its own buffer and its own
        thread sends it, so this takes microseconds and may run on the loop."""
        self.stream.write(pcm)

    def end(self) -> None:
        self.stream.close()

    def close(self) -> None:
        disconnect(signal for signal, _ in self.signals)
        self.signals = []
        try:
            self.recognizer.stop_continuous_recognition_async().get()
        finally:
            self.connection = self.recognizer = self.stream = None


def _cancellation(event: Any) -> tuple[str, str, str]:
    details = event.cancellation_details
    return details.reason.name, details.code.name, details.error_details or ""


class AzureSTT:
    """The Azure provider of the STT interface (see the module docstring)."""

    Params = AzureSTTParams

    def __init__(self, params: AzureSTTParams, *, name: str = "azure") -> None:
        self.params = params
        self.name = name
        self.languages: frozenset[str] | None = languages_of(LOCALES)
        self.last_latency_s: float | None = None  # end of the audio -> final result
        self._key = params.key.get_secret_value()
        self._rate = 16000  # of the last utterance: the rate warm() prepares for
        self._spare: _Recognition | None = None
        self._reaper = Reaper()

    def __repr__(self) -> str:
        p = self.params
        where = p.host or p.region
        return f"AzureSTT(name={self.name!r}, where={where!r}, language={p.language!r})"

    async def warm(self) -> None:
        """Build the next turn's recognizer (default language, the last utterance's rate)
        and open its WebSocket. Best effort: a failure shows again on the next transcribe."""
        if self._spare is not None:
            return
        try:
            spare = await self._build(self.params.language, self._rate)
        except ProviderError:
            return
        try:
            await blocking(spare.connection.open, True)
            until = asyncio.get_running_loop().time() + self.params.connect_timeout_s
            while (item := await next_event(spare.queue, until)) is not None:
                if item[0] == "connected":
                    spare.connected = True
                    self._spare = spare
                    return
                if item[0] in ("disconnected", "canceled"):
                    break
        except RuntimeError:
            pass
        self._reaper.submit(spare.close)

    async def aclose(self) -> None:
        """Release the spare recognizer and wait for every recognizer to be released."""
        spare, self._spare = self._spare, None
        if spare is not None:
            self._reaper.submit(spare.close)
        await self._reaper.aclose()

    def open(self, language: str, sample_rate: int) -> STTStream:
        """Start recognizing an utterance as it is spoken (see the module docstring)."""
        return _Stream(self, language or self.params.language, sample_rate)

    async def transcribe(self, utterance: Utterance) -> Transcript:
        """Recognize one utterance (see the module docstring)."""
        language = utterance.language or self.params.language
        self._locale(language)
        if len(utterance.pcm) % 2:
            raise ProviderError(
                self.name,
                f"garbled audio: {len(utterance.pcm)} bytes of 16-bit PCM, an odd count",
                retryable=True,
            )
        if not utterance.pcm:
            return Transcript("", language)
        pcm, rate = utterance.pcm, utterance.sample_rate
        if rate not in _RATES:
            pcm, rate = resample(pcm, rate, 16000), 16000
        stream = _Stream(self, language, rate)
        stream.push(pcm)
        return await stream.finish()

    # -- internals ------------------------------------------------------------------------

    def _locale(self, language: str) -> str:
        language = language.replace("_", "-")
        if "-" in language:
            return language
        default = self.params.language
        if primary(default) == language.lower():
            return default
        if language.lower() in _DEFAULT_LOCALE:
            return _DEFAULT_LOCALE[language.lower()]
        for locale in LOCALES:
            if primary(locale) == language.lower():
                return locale
        raise ProviderError(self.name, f"Azure does not recognize {language!r}", retryable=True)

    def _sdk_error(self, what: str, exc: Exception, *, retryable: bool = True) -> ProviderError:
        return ProviderError(
            self.name, f"{what}: {scrub(self._key, str(exc))}", retryable=retryable
        )

    def _take_spare(self, locale: str, rate: int) -> _Recognition | None:
        spare = self._spare
        if spare is None or (spare.locale, spare.rate) != (locale, rate):
            return None
        self._spare = None
        return spare

    async def _build(self, locale: str, rate: int) -> _Recognition:
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        bridge = Bridge(
            asyncio.get_running_loop(), lambda kind, what: queue.put_nowait((kind, what))
        )
        try:
            return await blocking(_Recognition, self.params, locale, rate, bridge, queue)
        except (RuntimeError, ValueError) as exc:  # the SDK refuses the configuration
            raise self._sdk_error("cannot set up", exc, retryable=False) from None


class _Stream:
    """One utterance streamed to its recognizer (:meth:`AzureSTT.open`).

    Its whole life is one task, :meth:`_run`, owned by the stream and ended by :meth:`finish`
    or :meth:`cancel`: take the spare recognizer or build one, start it, hand it the audio
    pushed meanwhile, then read the SDK's events until the session stops. Audio pushed
    before the recognizer has started waits in ``_pending``; after, it goes to the SDK's push
    stream in pieces of ``push_ms`` (the rest at :meth:`finish`)."""

    def __init__(self, stt: AzureSTT, language: str, sample_rate: int) -> None:
        self._stt = stt
        self._language = language
        rate = sample_rate if sample_rate in _RATES else 16000
        self._resampler = Resampler(sample_rate, rate) if rate != sample_rate else None
        self._pending: list[bytes] = []
        self._held = b""  # less than push_ms of audio, not handed on yet
        self._push_bytes = rate * 2 * stt.params.push_ms // 1000
        self._recognition: _Recognition | None = None
        self._live = False  # started: pushed audio goes straight to the SDK
        self._ended = False  # the SDK's push stream is closed
        self._finished_at: float | None = None  # loop time of finish()
        self._partials: asyncio.Queue[Transcript | None] = asyncio.Queue()
        self._task = asyncio.ensure_future(self._run(rate))
        self._task.add_done_callback(_retrieve)

    def push(self, pcm: bytes) -> None:
        if self._finished_at is not None or self._task.done():
            return
        if self._resampler is not None:
            pcm = self._resampler.process(pcm)
        self._write(pcm)

    def _write(self, pcm: bytes, *, last: bool = False) -> None:
        held = self._held + pcm
        if not held or (len(held) < self._push_bytes and not last):
            self._held = held
            return
        pcm, self._held = held, b""
        if self._live and self._recognition is not None:
            with contextlib.suppress(RuntimeError):  # a broken session: its events say so
                self._recognition.write(pcm)
        else:
            self._pending.append(pcm)

    async def partials(self) -> AsyncIterator[Transcript]:
        while (partial := await self._partials.get()) is not None:
            yield partial
        self._partials.put_nowait(None)  # for a reader that comes back

    async def finish(self) -> Transcript:
        if self._finished_at is None and not self._task.done():
            self._write(self._resampler.flush() if self._resampler else b"", last=True)
            self._finished_at = asyncio.get_running_loop().time()
            if self._recognition is not None:
                self._recognition.queue.put_nowait(("finish", None))
        return await self._task  # cancelling this cancels the stream

    async def cancel(self) -> None:
        self._task.cancel()
        await asyncio.wait([self._task])

    # -- the task ---------------------------------------------------------------------------

    async def _run(self, rate: int) -> Transcript:
        stt = self._stt
        loop = asyncio.get_running_loop()
        begun = loop.time()
        try:
            locale = stt._locale(self._language)
            stt._rate = rate
            recognition = stt._take_spare(locale, rate)
            if recognition is None:
                recognition = await _build(stt, locale, rate)
            self._recognition = recognition
            try:
                texts = await self._recognize(recognition, locale, begun)
            finally:
                stt._reaper.submit(recognition.close)
        finally:
            self._partials.put_nowait(None)
        sep = "" if primary(locale) in _UNSPACED else " "
        return Transcript(sep.join(texts), self._language)

    async def _recognize(self, recognition: _Recognition, locale: str, begun: float) -> list[str]:
        stt, p = self._stt, self._stt.params
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(p.connect_timeout_s):
                await blocking(recognition.start)
        except TimeoutError:
            raise ProviderError(
                stt.name,
                f"recognition did not start within {p.connect_timeout_s} s",
                retryable=True,
            ) from None
        except RuntimeError as exc:
            raise stt._sdk_error("recognition failed", exc) from None
        pending, self._pending = self._pending, []
        self._live = True
        try:
            for pcm in pending:
                recognition.write(pcm)
        except RuntimeError as exc:
            raise stt._sdk_error("recognition failed", exc) from None
        sep = "" if primary(locale) in _UNSPACED else " "
        texts: list[str] = []
        final: float | None = None
        while True:
            if self._finished_at is not None and not self._ended:
                self._ended = True
                await blocking(recognition.end)
            # while the caller speaks there is no result to wait for: only the connection
            until: float | None = None
            if self._finished_at is not None:
                until = self._finished_at + p.result_timeout_s
            if not recognition.connected:
                until = max(until or 0.0, begun + p.connect_timeout_s)
            item: tuple[str, Any] | None
            if until is None:
                item = await recognition.queue.get()
            else:
                item = await next_event(recognition.queue, until)
            if item is None:
                raise ProviderError(
                    stt.name,
                    f"no final result within {p.result_timeout_s} s after the audio"
                    if recognition.connected
                    else f"no connection within {p.connect_timeout_s} s",
                    retryable=True,
                )
            kind, payload = item
            if kind == "connected":
                recognition.connected = True
            elif kind == "recognizing":
                if payload:
                    self._partials.put_nowait(
                        Transcript(sep.join([*texts, payload]), self._language)
                    )
            elif kind == "recognized":
                reason, text = payload
                final = loop.time()
                if reason == "RecognizedSpeech" and text:
                    texts.append(text)
                    self._partials.put_nowait(Transcript(sep.join(texts), self._language))
            elif kind == "canceled":
                reason, code, details = payload
                if reason != "EndOfStream":
                    raise provider_error(stt.name, stt._key, code, details or reason)
            elif kind == "stopped":
                if self._finished_at is None:  # the audio still coming would go nowhere
                    raise ProviderError(
                        stt.name, "the session stopped before the audio ended", retryable=True
                    )
                break
            elif kind == "error":
                raise ProviderError(stt.name, f"unreadable SDK event: {payload}", retryable=True)
        assert self._finished_at is not None
        end = final if final is not None and final > self._finished_at else loop.time()
        stt.last_latency_s = end - self._finished_at
        return texts


async def _build(stt: AzureSTT, locale: str, rate: int) -> _Recognition:
    """``stt._build``, except that a recognizer whose stream was cancelled while it was
    being built (in a worker thread, which runs on) is released once built."""
    build = asyncio.ensure_future(stt._build(locale, rate))
    try:
        return await asyncio.shield(build)
    except asyncio.CancelledError:
        build.add_done_callback(lambda done: _release_built(stt, done))
        raise


def _release_built(stt: AzureSTT, build: asyncio.Future[_Recognition]) -> None:
    if not build.cancelled() and build.exception() is None:
        stt._reaper.submit(build.result().close)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """A stream's failure is raised by finish(); one that nobody finished is not an error
    for the event loop to report."""
    if not task.cancelled():
        task.exception()
