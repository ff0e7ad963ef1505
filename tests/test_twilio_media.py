"""Twilio Media Streams over real sockets: uvicorn on 127.0.0.1 and a `websockets` peer that
plays Twilio (real-time caller audio, continuous like a phone line; reply audio "played" on
the wall clock; marks echoed once played; `clear` drops what is buffered and echoes pending
marks, as Twilio documents).

The transport alone, behind a scripted endpoint (no models); the offline agent behind it is in
test_twilio_agent.py, the peer in twilio_peer.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI, WebSocket
from twilio_peer import SILENCE, serving, twilio_stream, within

from callweaver.audio.mulaw import pcm16_to_ulaw, ulaw_to_pcm16
from callweaver.errors import PeerGone
from callweaver.frames import (
    DTMFFrame,
    InputAudioFrame,
    OutputAudioFrame,
    ReplyEndFrame,
    ReplyTextFrame,
)
from callweaver.frames.base import Frame
from callweaver.testing import tone
from callweaver.transports.twilio import wire
from callweaver.transports.twilio.media import TwilioMediaIO

pytestmark = pytest.mark.asyncio(loop_scope="module")


# -- the transport alone -----------------------------------------------------------------------


class Scripted:
    """An app whose one WebSocket runs ``script`` on a TwilioMediaIO (kept in ``ios``);
    ``done`` is set when the script has finished, ``failures`` holds what it raised."""

    def __init__(
        self, script: Callable[[TwilioMediaIO], Awaitable[None]], **io_options: Any
    ) -> None:
        self.app = FastAPI()
        self.ios: list[TwilioMediaIO] = []
        self.failures: list[BaseException] = []
        self.done = asyncio.Event()

        @self.app.websocket("/stream")
        async def stream(ws: WebSocket) -> None:
            await ws.accept()
            io = TwilioMediaIO(ws, **io_options)
            self.ios.append(io)
            try:
                await script(io)
            except BaseException as exc:
                self.failures.append(exc)
                raise
            finally:
                await io.close()
                self.done.set()

    async def finished(self) -> TwilioMediaIO:
        async with asyncio.timeout(5):
            await self.done.wait()
        assert not self.failures, self.failures
        return self.ios[0]


async def read_all(io: TwilioMediaIO, into: list[Frame]) -> None:
    async for frame in io.frames():
        into.append(frame)


def reply(seconds: float, *, turn: int = 1, rate: int = 16000) -> list[Frame]:
    """A reply as the tts node sends it: its text, 20 ms audio frames, the end."""
    pcm = tone(seconds, rate=rate, freq=440, dbfs=-12)
    step = rate // 50 * 2
    audio: list[Frame] = [
        OutputAudioFrame(pcm=pcm[i : i + step], sample_rate=rate, turn_id=turn)
        for i in range(0, len(pcm), step)
    ]
    return [ReplyTextFrame(text="A tone.", sentence=True, turn_id=turn), *audio,
            ReplyEndFrame(turn_id=turn)]  # fmt: skip


async def test_inbound_messages_become_frames_and_bad_ones_are_counted_and_skipped() -> None:
    frames: list[Frame] = []
    kinds: list[str] = []

    async def script(io: TwilioMediaIO) -> None:
        await read_all(io, frames)
        with pytest.raises(PeerGone):  # after stop, replies have nobody to hear them
            await io.write(reply(0.1)[1])

    app = Scripted(script, on_error=kinds.append)
    speech = pcm16_to_ulaw(tone(0.06, rate=8000, dbfs=-6))
    async with serving(app.app) as host, twilio_stream(f"ws://{host}/stream", signed=False) as peer:
        ws = peer.ws
        await ws.send(peer.media(SILENCE))  # media before start: chunk 1
        await peer.start(line=False, clinic="harbour")
        for i in range(3):  # chunks 2-4
            await ws.send(peer.media(speech[i * 160 : (i + 1) * 160]))
        await ws.send(wire.Dtmf(stream_sid=peer.stream_sid, digit="5").to_json())
        await ws.send("{not json")
        await ws.send(json.dumps({"event": "hangup", "streamSid": peer.stream_sid}))
        await ws.send(peer.media(SILENCE, stream_sid="MZ-another-stream"))  # chunk 5
        await ws.send(json.dumps({"event": "media", "junk": "x" * 70_000}))
        await ws.send(peer.media(SILENCE).replace('"payload":"', '"payload":"*'))  # chunk 6
        await ws.send(b"\x00\x01binary")
        await ws.send(wire.Mark(stream_sid=peer.stream_sid, name="never-sent").to_json())
        await ws.send(wire.Start(stream_sid="MZ2", call_sid="CA2", account_sid="AC").to_json())
        await ws.send(peer.media(speech[:160]))  # chunk 7
    io = await app.finished()
    assert io.start is not None and io.start.custom_parameters == {"clinic": "harbour"}
    assert io.stopped
    audio = [f for f in frames if isinstance(f, InputAudioFrame)]
    assert [f.pts_ns // 1_000_000 for f in audio] == [20, 40, 60, 120]  # Twilio's timestamps
    assert all(f.sample_rate == 8000 and f.num_samples == 160 for f in audio)
    assert audio[0].pcm == ulaw_to_pcm16(speech[:160])
    assert audio[0].ts_ns <= audio[1].ts_ns <= audio[2].ts_ns
    assert [f.digit for f in frames if isinstance(f, DTMFFrame)] == ["5"]
    assert io.edge.last_media_in_ns == audio[-1].ts_ns
    assert io.edge.arrival_ns(45_000_000) == audio[1].ts_ns  # the chunk of 40-60 ms
    expected = ["before_start", "bad_json", "unknown_event", "wrong_stream", "oversized",
                "bad_payload", "bad_json", "unknown_mark", "duplicate_start"]  # fmt: skip
    assert kinds == expected
    assert sum(io.errors.values()) == len(expected)


async def test_reply_audio_goes_out_paced_in_20_ms_media_with_marks_for_what_played() -> None:
    took: list[float] = []

    async def script(io: TwilioMediaIO) -> None:
        async with asyncio.TaskGroup() as tg:
            await io.wait_start()
            tg.create_task(read_all(io, []))
            started = time.perf_counter()
            for frame in reply(1.0):
                await io.write(frame)
            took.append(time.perf_counter() - started)

    app = Scripted(script, max_buffer_ms=200, mark_every_ms=100)
    async with serving(app.app) as host, twilio_stream(f"ws://{host}/stream", signed=False) as peer:
        await peer.start()
        await peer.quiet(0.3, within_s=5)
    io = await app.finished()
    assert peer.received == 8000  # one second of 16 kHz audio, at 8 kHz
    assert io.media_out == 50
    # never more than the budget ahead of playback (plus scheduling jitter)
    assert peer.max_ahead_ms <= 200 + 40, peer.max_ahead_ms
    assert io.max_ahead_ms <= 200 + 1
    assert took[0] >= 0.75
    # what was heard is the tone, not mangled: 440 Hz dominates
    heard = np.frombuffer(ulaw_to_pcm16(bytes(peer.heard)), dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(heard))
    assert abs(np.argmax(spectrum) * 8000 / heard.size - 440) < 5
    assert io.marks_sent == io.marks_played == len(peer.marks_echoed) >= 10
    assert io.played == [(1, "A tone.")]
    assert io.conversation == [(1, "bot", "A tone.")]
    assert 1 in io.edge.first_media_out_ns


async def test_flush_clears_twilios_buffer_and_cleared_marks_do_not_count_as_played() -> None:
    async def script(io: TwilioMediaIO) -> None:
        async with asyncio.TaskGroup() as tg:
            await io.wait_start()
            tg.create_task(read_all(io, []))

            async def speak() -> None:
                for frame in reply(3.0):
                    await io.write(frame)

            talking = tg.create_task(speak())
            await asyncio.sleep(0.5)
            talking.cancel()  # as an interrupt cancels the output node's write
            await io.flush()

    app = Scripted(script, max_buffer_ms=300)
    async with serving(app.app) as host, twilio_stream(f"ws://{host}/stream", signed=False) as peer:
        await peer.start()
        await within(peer.cleared.wait(), 5)
        await asyncio.sleep(0.3)
    io = await app.finished()
    assert io.clears == 1 and len(peer.clears) == 1
    assert peer.last_media_at is not None and peer.last_media_at <= peer.clears[0]
    # the clear dropped at most the budget: the rest of the 3 s was never sent
    assert io.flushed_ms <= 300 + 20
    assert peer.received + io.flushed_ms * 8 <= 8000 * 0.9
    assert io.marks_cleared >= 1 and io.marks_played + io.marks_cleared == io.marks_sent
    assert io.played == []  # the sentence never finished playing


async def test_a_peer_that_stops_echoing_marks_stalls_the_sender_then_counts_as_gone() -> None:
    outcome: list[BaseException] = []

    async def script(io: TwilioMediaIO) -> None:
        async with asyncio.TaskGroup() as tg:
            await io.wait_start()
            tg.create_task(read_all(io, []))
            try:
                for frame in reply(3.0):
                    await io.write(frame)
            except PeerGone as exc:
                outcome.append(exc)
            await io.close()

    kinds: list[str] = []
    app = Scripted(
        script, max_buffer_ms=100, mark_slack_ms=200, stall_timeout_s=0.5, on_error=kinds.append
    )
    started = time.perf_counter()
    async with serving(app.app) as host:
        async with twilio_stream(f"ws://{host}/stream", signed=False, echo_marks=False) as peer:
            await peer.start()
            await app.finished()
        assert isinstance(outcome[0], PeerGone)
        assert kinds == ["stalled"]
        assert 300 <= peer.received / 8 <= 300 + 20  # budget + slack, not a byte more
        assert time.perf_counter() - started < 4


async def test_a_peer_that_vanishes_mid_reply_ends_the_stream_as_a_hang_up() -> None:
    outcome: list[BaseException] = []

    async def script(io: TwilioMediaIO) -> None:
        async with asyncio.TaskGroup() as tg:
            await io.wait_start()
            tg.create_task(read_all(io, []))
            try:
                for frame in reply(3.0):
                    await io.write(frame)
            except PeerGone as exc:
                outcome.append(exc)

    app = Scripted(script)
    async with serving(app.app) as host:
        async with twilio_stream(f"ws://{host}/stream", signed=False) as peer:
            await peer.start()
            await within(peer.replied.wait(), 3)
            peer.ws.transport.abort()  # no close frame: the line just drops
        await app.finished()
        assert isinstance(outcome[0], PeerGone)
