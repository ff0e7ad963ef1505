"""The WebRTC transport's parts without a network: the data channel's wire format, the reply
track's pacing and buffer on a virtual clock, ICE address choice, and the config keys."""

from __future__ import annotations

import asyncio
import json

import aioice.ice
import numpy as np
import pytest

from callweaver.errors import ConfigError, WireError
from callweaver.pipelines.config import parse_config
from callweaver.runtime.clock import VirtualClock
from callweaver.transports.webrtc import events
from callweaver.transports.webrtc.ice import gather_on
from callweaver.transports.webrtc.track import SAMPLES, ReplyTrack

OFFER_SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"


# -- events ------------------------------------------------------------------------------------


def test_an_offer_parses_with_its_parameters() -> None:
    body = json.dumps({"type": "offer", "sdp": OFFER_SDP, "parameters": {"lang": "es"}})
    offer = events.parse_offer(body.encode())
    assert offer.sdp == OFFER_SDP and offer.parameters == {"lang": "es"}
    assert (
        events.parse_offer(json.dumps({"type": "offer", "sdp": OFFER_SDP}).encode()).parameters
        == {}
    )


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"\xff\xfe", "bad_json"),
        (b"[1, 2]", "bad_json"),
        (json.dumps({"type": "offer"}).encode(), "bad_sdp"),
        (json.dumps({"type": "offer", "sdp": "hello"}).encode(), "bad_sdp"),
        (json.dumps({"type": "offer", "sdp": "v=0\r\nm=video 9 X 96\r\n"}).encode(), "no_audio"),
        (json.dumps({"sdp": OFFER_SDP}).encode(), "bad_field"),
        (json.dumps({"type": "offer", "sdp": OFFER_SDP,
                     "parameters": {"a": 1}}).encode(), "bad_field"),
        (json.dumps({"type": "offer", "sdp": OFFER_SDP,
                     "parameters": {str(i): "x" for i in range(33)}}).encode(), "bad_field"),
        (json.dumps({"type": "offer", "sdp": OFFER_SDP,
                     "parameters": {"a": "x" * 257}}).encode(), "bad_field"),
        (b" " * (events.MAX_OFFER_BYTES + 1), "oversized"),
    ],
)  # fmt: skip
def test_bad_offers_say_what_is_wrong(body: bytes, kind: str) -> None:
    with pytest.raises(WireError) as err:
        events.parse_offer(body)
    assert err.value.kind == kind


def test_page_messages() -> None:
    assert events.parse_message('{"type": "hangup"}') == events.Hangup()
    assert events.parse_message('{"type": "dtmf", "digit": "#"}') == events.Dtmf("#")
    for raw, kind in [
        ("{oops", "bad_json"),
        (b'{"type": "hangup"}', "bad_json"),
        ('{"type": "dtmf", "digit": "55"}', "bad_field"),
        ('{"type": "dtmf"}', "bad_field"),
        ('{"type": "wave"}', "unknown_event"),
        ("x" * 2000, "oversized"),
    ]:
        with pytest.raises(WireError) as err:
            events.parse_message(raw)
        assert err.value.kind == kind, raw


def test_server_events_are_compact_json() -> None:
    assert json.loads(events.transcript_event(2, "Où êtes-vous ?", False)) == {
        "type": "transcript", "turn": 2, "text": "Où êtes-vous ?", "final": False}  # fmt: skip
    assert "Où" in events.reply_event(1, "Où")  # not escaped: the page shows it as is
    assert json.loads(events.latency_event(3, 412.349)) == {
        "type": "latency", "turn": 3, "voice_to_voice_ms": 412.3}  # fmt: skip
    assert json.loads(events.ended_event("shutdown")) == {"type": "ended", "reason": "shutdown"}
    assert events.answer_json("v=0", "webrtc-1") == {
        "type": "answer", "sdp": "v=0", "call_id": "webrtc-1"}  # fmt: skip


# -- the reply track ---------------------------------------------------------------------------


def tone(ms: int, value: int = 1000) -> bytes:
    return np.full(48 * ms, value, dtype="<i2").tobytes()


def samples(frame: object) -> np.ndarray:
    return np.frombuffer(bytes(frame.planes[0]), dtype="<i2")[:SAMPLES]  # type: ignore[attr-defined]


async def test_the_track_sends_silence_then_reply_audio_in_real_time() -> None:
    clock = VirtualClock()
    firsts: list[tuple[int, int]] = []
    track = ReplyTrack(clock=clock, on_first_audio=lambda turn, at: firsts.append((turn, at)))
    first = await track.recv()  # the first frame leaves at once
    assert not samples(first).any() and first.pts == 0 and first.sample_rate == 48000
    pending = asyncio.ensure_future(track.recv())
    await clock.advance(0.019)
    assert not pending.done()  # frame 2 is due at 20 ms, not before
    await track.put(tone(40), turn=3)
    await clock.advance(0.001)
    frame = await pending
    assert (samples(frame) == 1000).all() and frame.pts == SAMPLES
    assert firsts == [(3, 20_000_000)]
    pending = asyncio.ensure_future(track.recv())
    await clock.advance(0.02)
    assert (samples(await pending) == 1000).all()
    assert firsts == [(3, 20_000_000)]  # reported once per turn
    assert track.audio_frames_sent == 2 and track.frames_sent == 3


async def test_put_waits_while_the_buffer_is_full_and_flush_drops_it() -> None:
    clock = VirtualClock()
    track = ReplyTrack(clock=clock, max_buffer_ms=100)
    put = asyncio.ensure_future(track.put(tone(300), turn=1))
    await clock.advance(0)
    assert not put.done() and track.buffered_ms == 100  # 5 frames queued, the rest waits
    await track.recv()
    await clock.advance(0)
    assert track.buffered_ms == 100 and not put.done()  # one sent, one more queued
    assert track.flush() == 100  # barge-in: what waited in the track is gone at once
    await clock.advance(0)
    assert track.buffered_ms == 100 and not put.done()  # the put goes on with the rest
    while not put.done():  # (a real call's interrupt cancels the put instead)
        track.flush()
        await clock.advance(0)
    assert track.flushed_ms + track.buffered_ms == 300 - 20  # all but the frame sent


async def test_a_segment_end_pads_the_last_partial_frame_with_silence() -> None:
    clock = VirtualClock()
    track = ReplyTrack(clock=clock)
    await track.put(tone(30), turn=1)  # one whole frame, 10 ms pending
    assert track.buffered_ms == 20
    track.end_segment(tail=tone(5, value=7))
    assert track.buffered_ms == 40
    await track.recv()
    pending = asyncio.ensure_future(track.recv())
    await clock.advance(0.02)
    last = samples(await pending)
    assert (last[:480] == 1000).all() and (last[480:720] == 7).all() and not last[720:].any()


async def test_a_stopped_track_ends_a_waiting_put() -> None:
    from aiortc.mediastreams import MediaStreamError

    track = ReplyTrack(clock=VirtualClock(), max_buffer_ms=20)
    put = asyncio.ensure_future(track.put(tone(100), turn=1))
    await asyncio.sleep(0)
    track.stop()
    with pytest.raises(MediaStreamError):
        await put
    with pytest.raises(MediaStreamError):
        await track.recv()


# -- ICE addresses -----------------------------------------------------------------------------


def test_gathering_uses_the_chosen_addresses_only_inside_the_block() -> None:
    everywhere = aioice.ice.get_host_addresses(True, False)
    assert "127.0.0.1" not in everywhere  # aioice's own choice
    with gather_on(["127.0.0.1", "::1"]):
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
    assert aioice.ice.get_host_addresses(True, False) == everywhere
    with pytest.raises(ValueError, match="localhost"), gather_on(["localhost"]):
        pass


# -- config ------------------------------------------------------------------------------------


def config(webrtc: str) -> str:
    return (
        f"name: t\ntransports:\n  webrtc: {webrtc}\npipeline:\n  nodes: [{{name: e, type: echo}}]\n"
    )


def test_webrtc_config_keys_are_checked() -> None:
    dep = parse_config(
        config("{ice_addresses: [127.0.0.1], ice_servers: ['stun:stun.example:3478']}")
    )
    assert dep.config.transports.webrtc is not None
    assert dep.config.transports.webrtc.ice_addresses == ["127.0.0.1"]
    for bad, says in [
        ("{ice_addresses: [my-laptop]}", "not an IP address"),
        ("{ice_servers: ['http://stun.example']}", "not a STUN URL"),
        ("{max_buffer_ms: 5}", "max_buffer_ms"),
        ("{path: webrtc}", "path"),
        ("{pages: false}", "pages"),
    ]:
        with pytest.raises(ConfigError, match=says):
            parse_config(config(bad))


# -- the answerer's jitter buffer ---------------------------------------------------------------


async def test_the_answerer_buffers_one_frame_of_caller_audio_not_four() -> None:
    from aiortc import RTCPeerConnection
    from aiortc.mediastreams import AudioStreamTrack

    from callweaver.transports.webrtc.io import WebRTCIO

    caller = RTCPeerConnection()
    caller.addTrack(AudioStreamTrack())
    caller.createDataChannel("events")
    with gather_on(["127.0.0.1"]):
        await caller.setLocalDescription(await caller.createOffer())
    io = await WebRTCIO.answer(events.Offer(caller.localDescription.sdp), addresses=["127.0.0.1"])
    try:
        depths = [
            t.receiver._RTCRtpReceiver__jitter_buffer._prefetch  # type: ignore[attr-defined]
            for t in io.pc.getTransceivers()
            if t.kind == "audio"
        ]
        assert depths == [1]  # aiortc's default is 4 (80 ms of delay on every turn)
        assert "127.0.0.1" in io.answer_sdp
    finally:
        await io.close()
        await caller.close()
