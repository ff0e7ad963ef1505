"""ElevenLabs' wire format, pure: output formats, the voice settings a request may carry,
the languages flash v2.5 speaks, audio chunks to PCM16, the text an audio message's alignment
speaks, and what its error bodies and close reasons mean. No I/O here."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from callweaver.audio.mulaw import ulaw_to_pcm16

OutputFormat = Literal[
    "pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_44100", "pcm_48000", "ulaw_8000"
]
PCM_RATES = (8000, 16000, 22050, 24000, 44100, 48000)

# What eleven_flash_v2_5 speaks (its 32 languages): primary subtags, and the locales its
# documentation names. Its "zh" is Mandarin: no yue, zh-HK or zh-MO here, so that a failover
# skips ElevenLabs for a Cantonese call.
FLASH_V2_5_LANGUAGES = frozenset(
    {
        *("en", "ja", "zh", "de", "hi", "fr", "ko", "pt", "it", "es", "id", "nl", "tr"),
        *("fil", "tl", "pl", "sv", "bg", "ro", "ar", "cs", "el", "fi", "hr", "ms", "sk"),
        *("da", "ta", "uk", "ru", "hu", "no", "nb", "vi"),
        *("en-US", "en-GB", "en-AU", "en-CA", "fr-FR", "fr-CA", "pt-BR", "pt-PT"),
        *("es-ES", "es-MX", "ar-SA", "ar-AE", "zh-CN", "cmn"),
    }
)
CANTONESE = ("yue", "zh-hk", "zh-mo", "zh-yue")

# Errors reported by name ("error" of a WebSocket error message, "status" of an HTTP error's
# detail) or in words (a close reason): what a retry can help with, what it cannot.
_TRANSIENT = re.compile(
    r"rate.?limit|too.?many|concurren|busy|overload|time.?out|timed out|inactiv|"
    r"have not received|internal|went wrong|try again|unavailable",
    re.IGNORECASE,
)
_FATAL = re.compile(
    r"api.?key|auth|forbidden|permission|quota|payment|subscription|not.?found|"
    r"does not exist|voice|model|invalid|unsupported|not allowed",
    re.IGNORECASE,
)


def sample_rate(output_format: str) -> int:
    """The sample rate of an output format's name (``pcm_24000`` -> 24000)."""
    return int(output_format.rpartition("_")[2])


class AudioDecoder:
    """Raw audio of an output format, in network chunks -> PCM16 mono, never torn.

    PCM keeps a trailing odd byte for the next chunk; mu-law is decoded byte by byte.
    """

    def __init__(self, output_format: str) -> None:
        self.sample_rate = sample_rate(output_format)
        self._ulaw = output_format.startswith("ulaw_")
        self._odd = b""

    def feed(self, data: bytes) -> bytes:
        """The PCM16 that ``data`` completes (possibly empty)."""
        if self._ulaw:
            return ulaw_to_pcm16(data)
        data = self._odd + data
        whole = len(data) // 2 * 2
        self._odd = data[whole:]
        return data[:whole]

    def finish(self) -> None:
        """The stream ended: raises ValueError if half a sample is left over."""
        if self._odd:
            raise ValueError("the audio ends in half a sample (odd-length PCM)")


def speakable(text: str) -> bool:
    return any(c.isalnum() for c in text)


def primary_subtag(language: str) -> str:
    return language.replace("_", "-").split("-")[0].lower()


def error_detail(body: bytes) -> str:
    """What an ElevenLabs error body says: ``{"detail": {"status", "message"}}``, FastAPI's
    ``{"detail": [{"loc", "msg"}]}``, or the text itself."""
    try:
        payload = json.loads(body)
    except ValueError:
        return " ".join(body.decode("utf-8", "replace").split())[:300]
    detail = payload.get("detail", payload) if isinstance(payload, dict) else payload
    if isinstance(detail, dict):
        parts = [str(detail[k]) for k in ("status", "message") if detail.get(k)]
        if parts:
            return ": ".join(parts)
    if isinstance(detail, list):
        problems = []
        for item in detail:
            if isinstance(item, dict):
                where = ".".join(str(p) for p in item.get("loc", ()))
                problems.append(f"{where}: {item.get('msg', '')}".strip(": "))
        if problems:
            return "; ".join(problems)[:300]
    if isinstance(detail, str):
        return detail[:300]
    return " ".join(json.dumps(payload).split())[:300]


def transient(what: str) -> bool:
    """Does a named error or a close reason mean a retry can help? Unknown: yes."""
    return bool(_TRANSIENT.search(what)) or not _FATAL.search(what)


def parse_message(raw: str | bytes) -> dict[str, Any] | None:
    try:
        message = json.loads(raw)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


class VoiceSettings(BaseModel):
    """Per-request overrides of the voice's stored settings (unset: the voice's own)."""

    model_config = ConfigDict(extra="forbid")

    stability: float | None = Field(
        None, ge=0, le=1, description="lower: more expressive; higher: more monotone"
    )
    similarity_boost: float | None = Field(
        None, ge=0, le=1, description="how closely to stick to the original voice"
    )


def aligned_text(message: dict[str, Any]) -> str:
    """The characters an audio message speaks (its ``alignment``), "" when not given."""
    alignment = message.get("alignment")
    chars = alignment.get("chars") if isinstance(alignment, dict) else None
    if not isinstance(chars, list):
        return ""
    return "".join(c for c in chars if isinstance(c, str))
