"""The ConversationRelay WebSocket protocol as pure functions: one JSON text frame in, a typed
message out (or :class:`~callweaver.errors.WireError`); builders for what the app sends. No I/O.

Twilio -> app (``type``): ``setup``, ``prompt`` (``voicePrompt``, ``lang``, ``last``: partial
prompts carry ``last: false``), ``dtmf``, ``interrupt`` (``utteranceUntilInterrupt``,
``durationUntilInterruptMs``), ``error`` (``description``).
App -> Twilio: ``text`` (``token``, ``last``, ``lang``, ``interruptible``, ``preemptible``),
``play``, ``sendDigits``, ``language``, ``end``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from callweaver.errors import WireError

MAX_MESSAGE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Setup:
    session_id: str
    call_sid: str
    from_: str = ""
    to: str = ""
    direction: str = ""
    custom_parameters: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str
    lang: str
    last: bool


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


@dataclass(frozen=True, slots=True)
class Interrupt:
    utterance_until_interrupt: str
    duration_until_interrupt_ms: int


@dataclass(frozen=True, slots=True)
class RelayError:
    description: str


Message = Setup | Prompt | Dtmf | Interrupt | RelayError


def _str(data: dict[str, Any], key: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        if value is None:
            raise WireError("missing_field", f"{data.get('type')}: no {key!r}")
        raise WireError("bad_field", f"{data.get('type')}: {key!r} is not a string")
    return value


def parse(raw: str | bytes) -> Message:
    """One inbound frame -> a message. Raises :class:`WireError`."""
    if len(raw) > MAX_MESSAGE_BYTES:
        raise WireError("oversized", f"message of {len(raw)} bytes (limit {MAX_MESSAGE_BYTES})")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError("bad_json", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WireError("bad_json", "not a JSON object")
    kind = data.get("type")
    if kind == "prompt":
        last = data.get("last", True)
        if not isinstance(last, bool):
            raise WireError("bad_field", "prompt: 'last' is not a boolean")
        return Prompt(_str(data, "voicePrompt"), _str(data, "lang", ""), last)
    if kind == "setup":
        params = data.get("customParameters") or {}
        if not isinstance(params, dict):
            raise WireError("bad_field", "setup: customParameters is not an object")
        return Setup(
            _str(data, "sessionId"),
            _str(data, "callSid"),
            _str(data, "from", ""),
            _str(data, "to", ""),
            _str(data, "direction", ""),
            {str(k): str(v) for k, v in params.items()},
        )
    if kind == "dtmf":
        return Dtmf(_str(data, "digit"))
    if kind == "interrupt":
        ms = data.get("durationUntilInterruptMs", 0)
        return Interrupt(
            _str(data, "utteranceUntilInterrupt", ""), int(ms) if isinstance(ms, int) else 0
        )
    if kind == "error":
        return RelayError(_str(data, "description", ""))
    raise WireError("unknown_event", f"unknown message type {kind!r}")


def text(token: str, *, last: bool, lang: str = "", interruptible: bool | None = None) -> str:
    """A piece of the reply for Twilio to speak; ``last`` closes the reply."""
    msg: dict[str, Any] = {"type": "text", "token": token, "last": last}
    if lang:
        msg["lang"] = lang
    if interruptible is not None:
        msg["interruptible"] = interruptible
    return json.dumps(msg)


def language(*, tts: str = "", transcription: str = "") -> str:
    """Switch Twilio's speech languages mid-call."""
    msg: dict[str, Any] = {"type": "language"}
    if tts:
        msg["ttsLanguage"] = tts
    if transcription:
        msg["transcriptionLanguage"] = transcription
    return json.dumps(msg)


def send_digits(digits: str) -> str:
    return json.dumps({"type": "sendDigits", "digits": digits})


def end(handoff: dict[str, Any] | None = None) -> str:
    """End the session (``handoff`` goes to the TwiML that follows ``<Connect>``)."""
    msg: dict[str, Any] = {"type": "end"}
    if handoff is not None:
        msg["handoffData"] = json.dumps(handoff)
    return json.dumps(msg)
