"""The wire format of a WebRTC call's signalling and of its ``events`` data channel.

Signalling is one HTTP exchange: the page POSTs ``{"type": "offer", "sdp": ...,
"parameters": {...}}`` (ICE gathered, no trickle; the parameters optional) and gets
``{"type": "answer", "sdp": ..., "call_id": ...}`` back.

On the data channel, JSON text messages. The page sends ``{"type": "hangup"}`` and
``{"type": "dtmf", "digit": "5"}``; the server sends what the page shows:

- ``{"type": "call", "call_id"}`` once the channel opens;
- ``{"type": "transcript", "turn", "text", "final"}``: what the caller said (interim, final);
- ``{"type": "reply", "turn", "text"}`` for each reply sentence, ``{"type": "reply_end", "turn"}``;
- ``{"type": "interrupted", "turn"}`` when the caller spoke over the bot;
- ``{"type": "latency", "turn", "voice_to_voice_ms"}`` when a reply's first audio leaves;
- ``{"type": "ended", "reason"}`` when the server ends the call.

Pure functions: no sockets here. Bad input raises :class:`~callweaver.errors.WireError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from callweaver.errors import WireError
from callweaver.frames.dtmf import DTMF_DIGITS

MAX_OFFER_BYTES = 64 * 1024
"""An offer's SDP is a few kilobytes; anything this large is not one."""
MAX_MESSAGE_CHARS = 1024


MAX_PARAMETERS = 32
MAX_PARAMETER_CHARS = 256


@dataclass(frozen=True, slots=True)
class Offer:
    sdp: str
    parameters: Mapping[str, str] = field(default_factory=dict)
    """The call's choices from the page (its URL's query), as Twilio's ``<Parameter>``s."""


@dataclass(frozen=True, slots=True)
class Hangup:
    pass


@dataclass(frozen=True, slots=True)
class Dtmf:
    digit: str


PageMessage = Hangup | Dtmf


def _object(raw: str | bytes, what: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise WireError("bad_json", f"{what}: {exc}") from None
    if not isinstance(data, dict):
        raise WireError("bad_json", f"{what}: not a JSON object")
    return data


def parse_offer(body: bytes) -> Offer:
    """The page's offer; :class:`WireError` when it is not one with an audio section."""
    if len(body) > MAX_OFFER_BYTES:
        raise WireError("oversized", f"offer of {len(body)} bytes (limit {MAX_OFFER_BYTES})")
    data = _object(body, "offer")
    if data.get("type") != "offer":
        raise WireError("bad_field", f"type must be 'offer', got {data.get('type')!r}")
    sdp = data.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise WireError("bad_sdp", "sdp must be a session description starting with v=0")
    if "\nm=audio " not in sdp.replace("\r\n", "\n"):
        raise WireError("no_audio", "the offer has no audio section (getUserMedia first)")
    parameters = data.get("parameters", {})
    if (
        not isinstance(parameters, dict)
        or len(parameters) > MAX_PARAMETERS
        or not all(
            isinstance(v, str) and len(k) <= MAX_PARAMETER_CHARS and len(v) <= MAX_PARAMETER_CHARS
            for k, v in parameters.items()
        )
    ):
        raise WireError(
            "bad_field",
            f"parameters must map at most {MAX_PARAMETERS} names to strings "
            f"of at most {MAX_PARAMETER_CHARS} characters",
        )
    return Offer(sdp, dict(parameters))


def answer_json(sdp: str, call_id: str) -> dict[str, str]:
    return {"type": "answer", "sdp": sdp, "call_id": call_id}


def parse_message(raw: str | bytes) -> PageMessage:
    """A data channel message from the page."""
    if isinstance(raw, bytes):
        raise WireError("bad_json", "binary data channel message")
    if len(raw) > MAX_MESSAGE_CHARS:
        raise WireError("oversized", f"message of {len(raw)} characters")
    data = _object(raw, "message")
    kind = data.get("type")
    if kind == "hangup":
        return Hangup()
    if kind == "dtmf":
        digit = data.get("digit")
        if not isinstance(digit, str) or digit not in DTMF_DIGITS:
            raise WireError("bad_field", f"dtmf digit {digit!r}")
        return Dtmf(digit)
    raise WireError("unknown_event", f"message type {kind!r}")


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def call_event(call_id: str) -> str:
    return _dumps({"type": "call", "call_id": call_id})


def transcript_event(turn: int, text: str, final: bool) -> str:
    return _dumps({"type": "transcript", "turn": turn, "text": text, "final": final})


def reply_event(turn: int, text: str) -> str:
    return _dumps({"type": "reply", "turn": turn, "text": text})


def reply_end_event(turn: int) -> str:
    return _dumps({"type": "reply_end", "turn": turn})


def interrupted_event(turn: int) -> str:
    return _dumps({"type": "interrupted", "turn": turn})


def latency_event(turn: int, voice_to_voice_ms: float) -> str:
    return _dumps(
        {"type": "latency", "turn": turn, "voice_to_voice_ms": round(voice_to_voice_ms, 1)}
    )


def ended_event(reason: str) -> str:
    return _dumps({"type": "ended", "reason": reason})
