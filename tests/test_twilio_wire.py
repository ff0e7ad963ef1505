"""The Media Streams wire codec: every event Twilio sends, every frame the app sends, and the
malformed input a peer can throw at it."""

import base64
import json

import pytest

from callweaver.audio.mulaw import pcm16_to_ulaw, ulaw_to_pcm16
from callweaver.errors import TransportError
from callweaver.transports.twilio import wire
from callweaver.transports.twilio.wire import (
    Clear,
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaFormat,
    OutboundMark,
    OutboundMedia,
    Start,
    Stop,
    WireError,
    parse,
    parse_outbound,
)

SID = "MZ18ad3ab5a668481ce02b83e7395059f0"
# As Twilio sends them (the shapes of Twilio's documentation and its sample capture).
CONNECTED = '{"event":"connected","protocol":"Call","version":"1.0.0"}'
START = json.dumps(
    {
        "event": "start",
        "sequenceNumber": "1",
        "start": {
            "accountSid": "AC123",
            "streamSid": SID,
            "callSid": "CA456",
            "tracks": ["inbound"],
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": {"From": "+15550001", "clinic": "harbour"},
        },
        "streamSid": SID,
    }
)
PAYLOAD = bytes(range(256))[:160]
MEDIA = json.dumps(
    {
        "event": "media",
        "sequenceNumber": "3",
        "media": {
            "track": "inbound",
            "chunk": "2",
            "timestamp": "52",
            "payload": base64.b64encode(PAYLOAD).decode(),
        },
        "streamSid": SID,
    }
)
DTMF = json.dumps(
    {
        "event": "dtmf",
        "streamSid": SID,
        "sequenceNumber": "5",
        "dtmf": {"track": "inbound_track", "digit": "#"},
    }
)
MARK = json.dumps(
    {"event": "mark", "sequenceNumber": "4", "streamSid": SID, "mark": {"name": "cw0.1"}}
)
STOP = json.dumps(
    {
        "event": "stop",
        "sequenceNumber": "5",
        "streamSid": SID,
        "stop": {"accountSid": "AC123", "callSid": "CA456"},
    }
)


def test_every_event_twilio_sends_parses_to_its_value() -> None:
    assert parse(CONNECTED) == Connected(protocol="Call", version="1.0.0")
    assert parse(START) == Start(
        stream_sid=SID,
        call_sid="CA456",
        account_sid="AC123",
        sequence=1,
        tracks=("inbound",),
        custom_parameters={"From": "+15550001", "clinic": "harbour"},
        media_format=MediaFormat(encoding="audio/x-mulaw", sample_rate=8000, channels=1),
    )
    assert parse(MEDIA) == Media(
        stream_sid=SID, chunk=2, timestamp_ms=52, payload=PAYLOAD, sequence=3, track="inbound"
    )
    assert parse(DTMF) == Dtmf(stream_sid=SID, digit="#", sequence=5)
    assert parse(MARK) == Mark(stream_sid=SID, name="cw0.1", sequence=4)
    assert parse(STOP) == Stop(stream_sid=SID, account_sid="AC123", call_sid="CA456", sequence=5)


def test_bytes_frames_and_integer_numbers_are_accepted() -> None:
    assert parse(MEDIA.encode()) == parse(MEDIA)
    numeric = json.loads(MEDIA)
    numeric["sequenceNumber"] = 3
    numeric["media"]["chunk"], numeric["media"]["timestamp"] = 2, 52
    assert parse(json.dumps(numeric)) == parse(MEDIA)


def test_stream_sid_is_never_checked_for_shape() -> None:
    # Twilio's 2020 capture carried a UUID where the docs promise MZ + 32 hex digits
    uuid_sid = "0b2f5f1e-6c1f-4b5e-9a58-3e7c2b1d4f60"
    data = json.loads(START)
    data["streamSid"] = data["start"]["streamSid"] = uuid_sid
    start = parse(json.dumps(data))
    assert isinstance(start, Start) and start.stream_sid == uuid_sid


def test_start_takes_the_stream_sid_from_the_start_object_when_the_top_level_lacks_it() -> None:
    data = json.loads(START)
    del data["streamSid"], data["start"]["mediaFormat"], data["start"]["customParameters"]
    start = parse(json.dumps(data))
    assert isinstance(start, Start)
    assert start.stream_sid == SID and start.custom_parameters == {}
    assert start.media_format == MediaFormat()


@pytest.mark.parametrize(
    "value",
    [
        Connected(),
        Start(
            stream_sid=SID,
            call_sid="CA1",
            account_sid="AC1",
            sequence=1,
            custom_parameters={"k": "v", "ünï": "cödé <&>"},
        ),
        Start(stream_sid=SID, call_sid="CA1", account_sid="AC1"),
        Media(stream_sid=SID, chunk=1, timestamp_ms=0, payload=PAYLOAD, sequence=2),
        Media(stream_sid=SID, chunk=9, timestamp_ms=160, payload=b"\xff" * 160),
        Dtmf(stream_sid=SID, digit="7", sequence=3),
        Mark(stream_sid=SID, name="reply-1", sequence=4),
        Stop(stream_sid=SID, account_sid="AC1", call_sid="CA1", sequence=5),
    ],
    ids=lambda v: type(v).__name__,
)
def test_inbound_values_round_trip(value: wire.Inbound) -> None:
    text = value.to_json()
    assert json.loads(text)["event"] == type(value).__name__.lower()
    assert parse(text) == value


def test_outbound_frames_have_twilios_shape_and_round_trip() -> None:
    ulaw = pcm16_to_ulaw(b"\x00\x10" * 160)
    media = wire.media_json(SID, ulaw)
    assert json.loads(media) == {
        "event": "media",
        "streamSid": SID,
        "media": {"payload": base64.b64encode(ulaw).decode()},
    }
    assert json.loads(wire.mark_json(SID, "cw0.7")) == {
        "event": "mark",
        "streamSid": SID,
        "mark": {"name": "cw0.7"},
    }
    assert json.loads(wire.clear_json(SID)) == {"event": "clear", "streamSid": SID}
    assert parse_outbound(media) == OutboundMedia(stream_sid=SID, payload=ulaw)
    assert ulaw_to_pcm16(OutboundMedia(stream_sid=SID, payload=ulaw).payload) == ulaw_to_pcm16(ulaw)
    for value in (
        OutboundMedia(stream_sid=SID, payload=b""),
        OutboundMark(stream_sid=SID, name="x"),
        Clear(stream_sid=SID),
    ):
        assert parse_outbound(value.to_json()) == value


def _with(base: str, change: dict[str, object], *, drop: tuple[str, ...] = ()) -> str:
    data = json.loads(base)
    for key, value in change.items():
        target = data
        *parents, leaf = key.split(".")
        for p in parents:
            target = target[p]
        target[leaf] = value
    for key in drop:
        target = data
        *parents, leaf = key.split(".")
        for p in parents:
            target = target[p]
        del target[leaf]
    return json.dumps(data)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("{not json", "bad_json"),
        ("", "bad_json"),
        (b"\xff\xfe\x00", "bad_json"),
        ("[1, 2]", "bad_json"),
        ('"media"', "bad_json"),
        ('{"event": "media"', "bad_json"),
        ("{}", "missing_field"),
        ('{"event": 7}', "missing_field"),
        ('{"event": "hangup", "streamSid": "MZ1"}', "unknown_event"),
        ('{"event": "MEDIA"}', "unknown_event"),
        (_with(MEDIA, {}, drop=("streamSid",)), "missing_field"),
        (_with(MEDIA, {}, drop=("media",)), "missing_field"),
        (_with(MEDIA, {}, drop=("media.payload",)), "missing_field"),
        (_with(MEDIA, {}, drop=("media.timestamp",)), "missing_field"),
        (_with(MEDIA, {"media": "AAAA"}), "bad_field"),
        (_with(MEDIA, {"streamSid": 12}), "bad_field"),
        (_with(MEDIA, {"media.timestamp": "-20"}), "bad_field"),
        (_with(MEDIA, {"media.timestamp": "1e3"}), "bad_field"),
        (_with(MEDIA, {"media.chunk": True}), "bad_field"),
        (_with(MEDIA, {"sequenceNumber": "three"}), "bad_field"),
        (_with(MEDIA, {"media.payload": "not base64!"}), "bad_payload"),
        (_with(MEDIA, {"media.payload": "AAA"}), "bad_payload"),  # bad padding
        (_with(DTMF, {"dtmf.digit": "x"}), "bad_field"),
        (_with(DTMF, {"dtmf.digit": "12"}), "bad_field"),
        (_with(DTMF, {}, drop=("dtmf",)), "missing_field"),
        (_with(MARK, {}, drop=("mark.name",)), "missing_field"),
        (_with(STOP, {}, drop=("streamSid",)), "missing_field"),
        (_with(START, {}, drop=("start.callSid",)), "missing_field"),
        (_with(START, {}, drop=("streamSid", "start.streamSid")), "missing_field"),
        (_with(START, {"start.customParameters": {"n": 1}}), "bad_field"),
        (_with(START, {"start.customParameters": ["a"]}), "bad_field"),
        (_with(START, {"start.tracks": "inbound"}), "bad_field"),
        (_with(START, {"start.mediaFormat": "mulaw"}), "bad_field"),
        (_with(START, {"start.mediaFormat.sampleRate": "fast"}), "bad_field"),
    ],
)
def test_malformed_frames_raise_a_wire_error_that_names_their_kind(
    text: str | bytes, kind: str
) -> None:
    with pytest.raises(WireError) as info:
        parse(text)
    assert info.value.kind == kind
    assert str(info.value).startswith(f"{kind}: ")
    assert isinstance(info.value, TransportError)


def test_oversized_frames_are_refused_before_parsing() -> None:
    big = _with(MEDIA, {"media.payload": base64.b64encode(bytes(60_000)).decode()})
    assert len(big) > wire.MAX_MESSAGE_CHARS
    with pytest.raises(WireError) as info:
        parse(big)
    assert info.value.kind == "oversized"
    # the limit is the caller's to set; a frame within it parses
    media = parse(big, max_chars=len(big))
    assert isinstance(media, Media) and len(media.payload) == 60_000
    with pytest.raises(WireError, match="oversized"):
        parse_outbound(big)
    # a frame of junk that long is refused as oversized, not parsed as JSON
    with pytest.raises(WireError) as info:
        parse("x" * (wire.MAX_MESSAGE_CHARS + 1))
    assert info.value.kind == "oversized"


def test_parse_outbound_refuses_what_twilio_would_refuse() -> None:
    for text, kind in [
        ('{"event": "media", "streamSid": "MZ1", "media": {"payload": "%%"}}', "bad_payload"),
        ('{"event": "mark", "streamSid": "MZ1"}', "missing_field"),
        ('{"event": "clear"}', "missing_field"),
        ('{"event": "start", "streamSid": "MZ1"}', "unknown_event"),
        ("nope", "bad_json"),
    ]:
        with pytest.raises(WireError) as info:
            parse_outbound(text)
        assert info.value.kind == kind, text
