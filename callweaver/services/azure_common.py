"""What the Azure Speech providers share (:mod:`.azure_tts`, :mod:`.azure_stt`).

Both drive Microsoft's own SDK (``azure-cognitiveservices-speech``, the ``azure`` extra), which
speaks Azure's USP protocol over one WebSocket and runs its own native threads:

- every blocking SDK call (``.get()`` on its futures, releasing a recognizer or synthesizer,
  which can wait for a WebSocket close handshake) runs in a worker thread, never on the loop:
  in :func:`blocking`'s own pool, not asyncio's default one (a few threads, shared with
  everything else), because these calls mostly wait on the network and every live call
  makes them on every turn;
- SDK events arrive on the SDK's threads: :class:`Bridge` copies what each event carries there
  (the event objects are only valid during the callback) and hands it to the loop with
  ``call_soon_threadsafe``;
- every signal is disconnected before an SDK object is dropped: a synthesizer or recognizer
  still holding Python callbacks when the interpreter exits can abort the process (rc 134).

Failures come back as a cancellation with an error code; :func:`provider_error` maps it to a
:class:`~callweaver.errors.ProviderError` (not retryable: a refused key, a bad request such as
an unknown voice; retryable: everything about the service or the network). The subscription
key is cut out of every message.

``region`` names an Azure region (``westeurope``); ``host`` points the SDK somewhere else
(``ws://127.0.0.1:PORT`` in the tests, a container's address on premises).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import suppress
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from callweaver.errors import ProviderError

try:
    import azure.cognitiveservices.speech as speechsdk
except ImportError as exc:  # pragma: no cover - the extra is installed in development
    raise ImportError(
        "the Azure Speech providers need the Azure Speech SDK: pip install 'callweaver[azure]'"
    ) from exc

_T = TypeVar("_T")

_SDK_THREADS = 64  # blocking SDK calls wait on the network, not the CPU: many may wait at once
_sdk_pool: ThreadPoolExecutor | None = None


async def blocking(fn: Callable[..., _T], *args: Any) -> _T:
    """Run a blocking SDK call in the providers' own thread pool (module docstring)."""
    global _sdk_pool
    if _sdk_pool is None:
        _sdk_pool = ThreadPoolExecutor(_SDK_THREADS, thread_name_prefix="azure-sdk")
    return await asyncio.get_running_loop().run_in_executor(_sdk_pool, fn, *args)


__all__ = [
    "LOCALES",
    "AzureParams",
    "Bridge",
    "Reaper",
    "blocking",
    "disconnect",
    "languages_of",
    "next_event",
    "primary",
    "provider_error",
    "scrub",
    "speech_config",
    "speechsdk",
]

# Locales Azure serves with neural voices and with speech recognition (Azure's language
# support pages): a static list, so that a failover can skip Azure for a language without
# asking the service. "yue-CN" and "zh-HK" are Cantonese, "wuu-CN" Shanghainese.
LOCALES: tuple[str, ...] = (
    *("af-ZA", "am-ET", "ar-AE", "ar-BH", "ar-DZ", "ar-EG", "ar-IQ", "ar-JO", "ar-KW", "ar-LB"),
    *("ar-LY", "ar-MA", "ar-OM", "ar-QA", "ar-SA", "ar-SY", "ar-TN", "ar-YE", "az-AZ", "bg-BG"),
    *("bn-BD", "bn-IN", "bs-BA", "ca-ES", "cs-CZ", "cy-GB", "da-DK", "de-AT", "de-CH", "de-DE"),
    *("el-GR", "en-AU", "en-CA", "en-GB", "en-HK", "en-IE", "en-IN", "en-KE", "en-NG", "en-NZ"),
    *("en-PH", "en-SG", "en-TZ", "en-US", "en-ZA", "es-AR", "es-BO", "es-CL", "es-CO", "es-CR"),
    *("es-CU", "es-DO", "es-EC", "es-ES", "es-GQ", "es-GT", "es-HN", "es-MX", "es-NI", "es-PA"),
    *("es-PE", "es-PR", "es-PY", "es-SV", "es-US", "es-UY", "es-VE", "et-EE", "eu-ES", "fa-IR"),
    *("fi-FI", "fil-PH", "fr-BE", "fr-CA", "fr-CH", "fr-FR", "ga-IE", "gl-ES", "gu-IN", "he-IL"),
    *("hi-IN", "hr-HR", "hu-HU", "hy-AM", "id-ID", "is-IS", "it-IT", "ja-JP", "jv-ID", "ka-GE"),
    *("kk-KZ", "km-KH", "kn-IN", "ko-KR", "lo-LA", "lt-LT", "lv-LV", "mk-MK", "ml-IN", "mn-MN"),
    *("mr-IN", "ms-MY", "mt-MT", "my-MM", "nb-NO", "ne-NP", "nl-BE", "nl-NL", "pl-PL", "ps-AF"),
    *("pt-BR", "pt-PT", "ro-RO", "ru-RU", "si-LK", "sk-SK", "sl-SI", "so-SO", "sq-AL", "sr-RS"),
    *("sv-SE", "sw-KE", "sw-TZ", "ta-IN", "ta-LK", "ta-MY", "ta-SG", "te-IN", "th-TH", "tr-TR"),
    *("uk-UA", "ur-IN", "ur-PK", "uz-UZ", "vi-VN", "wuu-CN", "yue-CN", "zh-CN", "zh-HK", "zh-TW"),
    "zu-ZA",
)


def primary(language: str) -> str:
    """The primary subtag of a BCP-47 tag, lower-case: ``zh-HK`` -> ``zh``."""
    return language.replace("_", "-").split("-")[0].lower()


def languages_of(locales: Iterable[str]) -> frozenset[str]:
    """Full locales plus their primary subtags (see the failover's ``_speaks``)."""
    locales = tuple(locales)
    return frozenset(locales) | {primary(locale) for locale in locales}


class AzureParams(BaseModel):
    """Where the service is and how to authenticate: what TTS and STT share."""

    model_config = ConfigDict(extra="forbid")

    key: SecretStr = Field(
        min_length=1, description="the Speech resource's key (configs: ${AZURE_SPEECH_KEY})"
    )
    region: str | None = Field(
        None, pattern=r"^[a-z][a-z0-9]*$", description="the resource's region, e.g. westeurope"
    )
    host: str | None = Field(
        None,
        pattern=r"^wss?://[^/\s]+/?$",
        description="instead of region: the service's root, e.g. ws://127.0.0.1:5000",
    )
    connect_timeout_s: float = Field(3.0, gt=0, le=60, description="to open the WebSocket")

    @model_validator(mode="after")
    def _one_place(self) -> AzureParams:
        if (self.region is None) == (self.host is None):
            raise ValueError("give exactly one of region and host")
        return self


def speech_config(params: AzureParams) -> Any:
    """A ``SpeechConfig`` for ``params`` (the caller adds what is specific to TTS or STT)."""
    key = params.key.get_secret_value()
    if params.host is not None:
        return speechsdk.SpeechConfig(host=params.host.rstrip("/"), subscription=key)
    return speechsdk.SpeechConfig(subscription=key, region=params.region)


# -- errors ---------------------------------------------------------------------------------

# What no retry and no other Azure region can fix; everything else may pass.
_FINAL = frozenset({"AuthenticationFailure", "BadRequest", "Forbidden"})
_DETAIL_MAX = 300


def scrub(key: str, text: str) -> str:
    """``text`` on one line, without the key, cut to a readable length."""
    text = " ".join(text.split())
    if key:
        text = text.replace(key, "***")
    # the SDK appends the connection id to its messages: not for a person
    return re.sub(r"\s*X-ConnectionId: \S+", "", text)[:_DETAIL_MAX]


def provider_error(name: str, key: str, code: str, details: str) -> ProviderError:
    """A cancellation (its ``CancellationErrorCode`` name and details) as a ProviderError."""
    details = scrub(key, details)
    return ProviderError(
        name, f"{code}: {details}" if details else code, retryable=code not in _FINAL
    )


# -- threads --------------------------------------------------------------------------------


class Bridge:
    """SDK events -> ``deliver(kind, what)`` called on ``loop``.

    ``handler(kind, extract)`` makes a callback for an SDK signal: it runs ``extract(event)``
    on the SDK's thread (an exception becomes ``deliver("error", exc)``) and hands the result
    to the loop. Events that come after the loop has closed are dropped.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, deliver: Callable[[str, Any], None]
    ) -> None:
        self.loop = loop
        self.deliver = deliver

    def handler(self, kind: str, extract: Callable[[Any], Any]) -> Callable[[Any], None]:
        def on_event(event: Any) -> None:
            try:
                what, name = extract(event), kind
            except Exception as exc:  # a malformed event must not vanish in the SDK
                what, name = exc, "error"
            with suppress(RuntimeError):  # the loop is closed: nobody is waiting
                self.loop.call_soon_threadsafe(self.deliver, name, what)

        return on_event


async def next_event(queue: asyncio.Queue[_T], until: float) -> _T | None:
    """The next item of ``queue``, or None when loop time ``until`` passes first."""
    try:
        async with asyncio.timeout_at(until):
            return await queue.get()
    except TimeoutError:
        return None


def disconnect(signals: Iterable[Any]) -> None:
    """Disconnect every callback from these SDK signals (``EventSignal.disconnect_all``)."""
    for signal in signals:
        with suppress(Exception):
            signal.disconnect_all()


class Reaper:
    """One worker thread that stops and releases SDK objects after use, so that a result is
    returned without waiting for the SDK to tear its session and WebSocket down (a close
    handshake, a session still waiting for the service). :meth:`aclose` waits for what is
    queued; a reaper that is never closed is still joined when the interpreter exits."""

    def __init__(self) -> None:
        self._pool: Executor | None = None

    def submit(self, job: Callable[[], None]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="azure-release")
        self._pool.submit(_quietly, job)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True)


def _quietly(job: Callable[[], None]) -> None:
    with suppress(Exception):
        job()
