"""Twilio Media Streams on the wire: JSON text frames <-> typed values. Pure: no I/O.

A bidirectional stream (TwiML ``<Connect><Stream>``) is one WebSocket of JSON text frames.

- Twilio -> app: ``connected``, ``start``, ``media``, ``dtmf``, ``mark``, ``stop``. :func:`parse`
  turns one frame into a :class:`Connected`, :class:`Start`, :class:`Media`, :class:`Dtmf`,
  :class:`Mark` or :class:`Stop`, or raises :class:`WireError` whose ``kind`` names what was
  wrong (for counting). Each value's ``to_json`` writes the frame Twilio would send, which is
  what a test peer playing Twilio needs.
- App -> Twilio: ``media`` (base64 mu-law 8 kHz, any length), ``mark`` (echoed back once the
  audio sent before it has played) and ``clear`` (drop buffered audio; pending marks are then
  echoed). :func:`media_json`, :func:`mark_json` and :func:`clear_json` build them;
  :func:`parse_outbound` reads them back (for test peers).

Twilio sends ``sequenceNumber``, ``chunk`` and ``timestamp`` as strings; integers are accepted
too. ``streamSid`` is only ever compared, never checked for shape (Twilio documents ``MZ`` and
32 hex digits, but real streams have carried UUIDs).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from callweaver.errors import WireError
from callweaver.frames.dtmf import DTMF_DIGITS

__all__ = [
    "MAX_MESSAGE_CHARS",
    "Clear",
    "Connected",
    "Dtmf",
    "Inbound",
    "Mark",
    "Media",
    "MediaFormat",
    "Outbound",
    "OutboundMark",
    "OutboundMedia",
    "Start",
    "Stop",
    "WireError",
    "clear_json",
    "mark_json",
    "media_json",
    "parse",
    "parse_outbound",
]

MAX_MESSAGE_CHARS: Final = 64 * 1024
"""Inbound frames longer than this are refused unparsed. A real media frame is about 400
characters (160 bytes of audio); ``start`` grows with its custom parameters."""


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# -- Twilio -> app -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MediaFormat:
    """The inbound audio's format; always mu-law 8 kHz mono for Media Streams."""

    encoding: str = "audio/x-mulaw"
    sample_rate: int = 8000
    channels: int = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected:
    """The first frame of a stream."""

    protocol: str = "Call"
    version: str = "1.0.0"

    def to_json(self) -> str:
        return _dumps({"event": "connected", "protocol": self.protocol, "version": self.version})


@dataclass(frozen=True, slots=True, kw_only=True)
class Start:
    """The stream's metadata: who is calling, and the ``<Parameter>`` values of the TwiML."""

    stream_sid: str
    call_sid: str
    account_sid: str
    sequence: int | None = None
    tracks: tuple[str, ...] = ("inbound",)
    custom_parameters: Mapping[str, str] = field(default_factory=dict)
    media_format: MediaFormat = field(default_factory=MediaFormat)

    def to_json(self) -> str:
        fmt = self.media_format
        start = {
            "accountSid": self.account_sid,
            "streamSid": self.stream_sid,
            "callSid": self.call_sid,
            "tracks": list(self.tracks),
            "mediaFormat": {
                "encoding": fmt.encoding,
                "sampleRate": fmt.sample_rate,
                "channels": fmt.channels,
            },
            "customParameters": dict(self.custom_parameters),
        }
        return _dumps(
            {"event": "start", **_seq(self.sequence), "streamSid": self.stream_sid, "start": start}
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Media:
    """One chunk of caller audio: ``payload`` is raw mu-law (160 bytes = 20 ms from Twilio);
    ``timestamp_ms`` is its offset from the start of the stream."""

    stream_sid: str
    chunk: int
    timestamp_ms: int
    payload: bytes
    sequence: int | None = None
    track: str = "inbound"

    def to_json(self) -> str:
        media = {
            "track": self.track,
            "chunk": str(self.chunk),
            "timestamp": str(self.timestamp_ms),
            "payload": _b64(self.payload),
        }
        return _dumps(
            {"event": "media", **_seq(self.sequence), "streamSid": self.stream_sid, "media": media}
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Dtmf:
    """A keypad digit the caller pressed."""

    stream_sid: str
    digit: str
    sequence: int | None = None
    track: str = "inbound_track"

    def to_json(self) -> str:
        return _dumps(
            {
                "event": "dtmf",
                **_seq(self.sequence),
                "streamSid": self.stream_sid,
                "dtmf": {"track": self.track, "digit": self.digit},
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Mark:
    """The echo of a mark the app sent: the audio sent before it has played (or was
    cleared)."""

    stream_sid: str
    name: str
    sequence: int | None = None

    def to_json(self) -> str:
        return _dumps(
            {
                "event": "mark",
                **_seq(self.sequence),
                "streamSid": self.stream_sid,
                "mark": {"name": self.name},
            }
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    """The stream ended: the caller hung up, or the call left ``<Connect>``."""

    stream_sid: str
    account_sid: str = ""
    call_sid: str = ""
    sequence: int | None = None

    def to_json(self) -> str:
        return _dumps(
            {
                "event": "stop",
                **_seq(self.sequence),
                "streamSid": self.stream_sid,
                "stop": {"accountSid": self.account_sid, "callSid": self.call_sid},
            }
        )


Inbound = Connected | Start | Media | Dtmf | Mark | Stop


def _seq(sequence: int | None) -> dict[str, str]:
    return {} if sequence is None else {"sequenceNumber": str(sequence)}


def parse(text: str | bytes, *, max_chars: int = MAX_MESSAGE_CHARS) -> Inbound:
    """One frame from Twilio as a typed value; :class:`WireError` if it is not a valid one."""
    if len(text) > max_chars:
        raise WireError("oversized", f"a frame of {len(text)} characters (limit {max_chars})")
    data = _load(text)
    event = data.get("event")
    if event == "media":
        media = _section(data, "media")
        return Media(
            stream_sid=_str(data, "streamSid"),
            chunk=_int(media, "chunk", "media"),
            timestamp_ms=_int(media, "timestamp", "media"),
            payload=_base64(_str(media, "payload", "media")),
            sequence=_opt_int(data, "sequenceNumber"),
            track=_opt_str(media, "track", "media") or "inbound",
        )
    if event == "mark":
        return Mark(
            stream_sid=_str(data, "streamSid"),
            name=_str(_section(data, "mark"), "name", "mark"),
            sequence=_opt_int(data, "sequenceNumber"),
        )
    if event == "dtmf":
        dtmf = _section(data, "dtmf")
        digit = _str(dtmf, "digit", "dtmf")
        if digit not in DTMF_DIGITS:
            raise WireError("bad_field", f"dtmf.digit is not a keypad digit: {digit!r}")
        return Dtmf(
            stream_sid=_str(data, "streamSid"),
            digit=digit,
            sequence=_opt_int(data, "sequenceNumber"),
            track=_opt_str(dtmf, "track", "dtmf") or "inbound_track",
        )
    if event == "start":
        return _start(data)
    if event == "stop":
        stop = data.get("stop")
        stop = stop if isinstance(stop, dict) else {}
        return Stop(
            stream_sid=_str(data, "streamSid"),
            account_sid=_opt_str(stop, "accountSid", "stop") or "",
            call_sid=_opt_str(stop, "callSid", "stop") or "",
            sequence=_opt_int(data, "sequenceNumber"),
        )
    if event == "connected":
        return Connected(
            protocol=_opt_str(data, "protocol") or "", version=_opt_str(data, "version") or ""
        )
    if not isinstance(event, str):
        raise WireError("missing_field", "no event name")
    raise WireError("unknown_event", f"unknown event {event[:40]!r}")


def _start(data: dict[str, Any]) -> Start:
    start = _section(data, "start")
    stream_sid = _opt_str(data, "streamSid") or _str(start, "streamSid", "start")
    params = start.get("customParameters", {})
    if not isinstance(params, dict) or not all(isinstance(v, str) for v in params.values()):
        raise WireError("bad_field", "start.customParameters must map names to strings")
    tracks = start.get("tracks", ["inbound"])
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise WireError("bad_field", "start.tracks must be a list of strings")
    fmt = start.get("mediaFormat")
    media_format = MediaFormat()
    if fmt is not None:
        if not isinstance(fmt, dict):
            raise WireError("bad_field", "start.mediaFormat must be an object")
        media_format = MediaFormat(
            encoding=_str(fmt, "encoding", "start.mediaFormat"),
            sample_rate=_int(fmt, "sampleRate", "start.mediaFormat"),
            channels=_int(fmt, "channels", "start.mediaFormat"),
        )
    return Start(
        stream_sid=stream_sid,
        call_sid=_str(start, "callSid", "start"),
        account_sid=_str(start, "accountSid", "start"),
        sequence=_opt_int(data, "sequenceNumber"),
        tracks=tuple(tracks),
        custom_parameters=dict(params),
        media_format=media_format,
    )


# -- app -> Twilio -----------------------------------------------------------------------------


def media_json(stream_sid: str, payload: bytes) -> str:
    """A ``media`` frame: ``payload`` is raw mu-law 8 kHz (no header), any length."""
    return _dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": _b64(payload)}})


def mark_json(stream_sid: str, name: str) -> str:
    """A ``mark`` frame: Twilio echoes it once the audio sent before it has played."""
    return _dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_json(stream_sid: str) -> str:
    """A ``clear`` frame: Twilio drops the audio it has buffered and echoes pending marks."""
    return _dumps({"event": "clear", "streamSid": stream_sid})


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundMedia:
    stream_sid: str
    payload: bytes

    def to_json(self) -> str:
        return media_json(self.stream_sid, self.payload)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundMark:
    stream_sid: str
    name: str

    def to_json(self) -> str:
        return mark_json(self.stream_sid, self.name)


@dataclass(frozen=True, slots=True, kw_only=True)
class Clear:
    stream_sid: str

    def to_json(self) -> str:
        return clear_json(self.stream_sid)


Outbound = OutboundMedia | OutboundMark | Clear


def parse_outbound(text: str | bytes, *, max_chars: int = MAX_MESSAGE_CHARS) -> Outbound:
    """One frame the app sent, as Twilio reads it (for peers that play Twilio in tests)."""
    if len(text) > max_chars:
        raise WireError("oversized", f"a frame of {len(text)} characters (limit {max_chars})")
    data = _load(text)
    event = data.get("event")
    stream_sid = _str(data, "streamSid")
    if event == "media":
        payload = _base64(_str(_section(data, "media"), "payload", "media"))
        return OutboundMedia(stream_sid=stream_sid, payload=payload)
    if event == "mark":
        return OutboundMark(
            stream_sid=stream_sid, name=_str(_section(data, "mark"), "name", "mark")
        )
    if event == "clear":
        return Clear(stream_sid=stream_sid)
    raise WireError("unknown_event", f"unknown event {str(event)[:40]!r}")


# -- field readers -----------------------------------------------------------------------------


def _load(text: str | bytes) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise WireError("bad_json", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WireError("bad_json", f"a JSON {type(data).__name__}, not an object")
    return data


def _where(section: str, key: str) -> str:
    return f"{section}.{key}" if section else key


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        raise WireError("missing_field", f"no {key!r} object")
    if not isinstance(value, dict):
        raise WireError("bad_field", f"{key} must be an object")
    return value


def _str(data: dict[str, Any], key: str, section: str = "") -> str:
    value = data.get(key)
    if value is None:
        raise WireError("missing_field", f"no {_where(section, key)}")
    if not isinstance(value, str):
        raise WireError("bad_field", f"{_where(section, key)} must be a string")
    return value


def _opt_str(data: dict[str, Any], key: str, section: str = "") -> str | None:
    return None if data.get(key) is None else _str(data, key, section)


def _int(data: dict[str, Any], key: str, section: str = "") -> int:
    value = data.get(key)
    if value is None:
        raise WireError("missing_field", f"no {_where(section, key)}")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    raise WireError("bad_field", f"{_where(section, key)} must be a whole number: {value!r:.40}")


def _opt_int(data: dict[str, Any], key: str) -> int | None:
    return None if data.get(key) is None else _int(data, key)


def _base64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WireError("bad_payload", f"payload is not base64: {exc}") from None
