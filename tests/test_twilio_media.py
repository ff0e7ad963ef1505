"""Twilio Media Streams over real sockets: uvicorn on 127.0.0.1 and a `websockets` peer that
plays Twilio (real-time caller audio, continuous like a phone line; reply audio "played" on
the wall clock; marks echoed once played; `clear` drops what is buffered and echoes pending
marks, as Twilio documents).

First the transport alone, behind a scripted endpoint (no models); then the whole offline
agent of configs/local.yaml behind `create_app`, with signatures checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio
import uvicorn
import yaml
from fastapi import FastAPI, WebSocket
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from callweaver.audio.mulaw import pcm16_to_ulaw, ulaw_to_pcm16
from callweaver.audio.resample import resample
from callweaver.errors import ConfigError, PeerGone
from callweaver.frames import (
    DTMFFrame,
    InputAudioFrame,
    OutputAudioFrame,
    ReplyEndFrame,
    ReplyTextFrame,
)
from callweaver.frames.base import Frame
from callweaver.pipelines.config import load_config, parse_config
from callweaver.resources import whisper
from callweaver.server.app import create_app
from callweaver.testing import tone
from callweaver.transports.twilio import wire
from callweaver.transports.twilio.media import TwilioMediaIO
from callweaver.transports.wav import read_wav

pytestmark = pytest.mark.asyncio(loop_scope="module")

ROOT = Path(__file__).parent.parent
AUDIO = ROOT / "examples" / "audio"
TOKEN = "test"
SILENCE = b"\xff" * 160  # 20 ms of mu-law silence


# -- serving -----------------------------------------------------------------------------------


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """uvicorn serving ``app`` on a free 127.0.0.1 port until the block ends: "host:port"."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    async with asyncio.timeout(60):
        while not server.started:  # uvicorn offers no event for this
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


def ulaw_of(path: Path) -> bytes:
    """A WAV as Twilio carries it: 8 kHz mu-law."""
    pcm = read_wav(path)
    return pcm16_to_ulaw(resample(pcm.data, pcm.sample_rate, 8000))


async def transcribe(ulaw: bytes) -> str:
    pcm16k = resample(ulaw_to_pcm16(ulaw), 8000, 16000)
    audio = np.frombuffer(pcm16k, dtype="<i2").astype(np.float32) / 32768
    heard = await whisper.shared_model("tiny.en").transcribe(audio, window="full")
    return heard.text.lower()


async def within(awaitable: Awaitable[Any], seconds: float) -> Any:
    async with asyncio.timeout(seconds):
        return await awaitable


async def eventually(check: Callable[[], bool], *, within_s: float) -> None:
    """Poll ``check`` (state another task or the server changes) until it holds."""
    deadline = time.perf_counter() + within_s
    while not check():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"not within {within_s} s")
        await asyncio.sleep(0.02)


# -- the peer: Twilio's side of one stream -----------------------------------------------------


class FakeTwilio:
    """Twilio's side of one Media Streams WebSocket (see the module docstring).

    Once :meth:`open`, it reads the app's frames and plays them until the socket closes;
    after :meth:`start` the caller's line sends 20 ms of audio every 20 ms (speech queued by
    :meth:`say`, else silence), unless ``line=False``.
    """

    _sids = itertools.count(1)

    def __init__(self, ws: ClientConnection, *, echo_marks: bool = True) -> None:
        n = next(self._sids)
        self.ws = ws
        self.stream_sid = f"MZ{n:032x}"
        self.call_sid = f"CA{n:032x}"
        self.echo_marks = echo_marks
        self.heard = bytearray()  # reply audio, as played
        self.received = 0  # samples of reply audio received (and not cleared)
        self.played = 0  # ... and played
        self.max_ahead_ms = 0.0
        self.clears: list[float] = []  # when each clear arrived
        self.marks_echoed: list[str] = []
        self.first_media_at: float | None = None
        self.replied = asyncio.Event()  # reply audio came
        self.cleared = asyncio.Event()  # a clear came
        self.last_media_at: float | None = None
        self._queue: deque[tuple[wire.Outbound, float]] = deque()  # and when it has played
        self._ends = 0.0  # when everything received will have played
        self._queued = asyncio.Event()
        self._speech: deque[bytes | asyncio.Future[None]] = deque()
        self._seq = itertools.count(1)
        self._chunk = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []

    def open(self) -> None:
        self._tasks.append(asyncio.create_task(self._run()))

    async def close(self) -> None:
        """Hang up: ``stop``, close the socket, and wait for the peer's tasks to end."""
        for task in self._tasks[1:]:
            task.cancel()
        with contextlib.suppress(ConnectionClosed):
            stop = wire.Stop(stream_sid=self.stream_sid, call_sid=self.call_sid)
            await self.ws.send(stop.to_json())
        await self.ws.close()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- what Twilio sends

    async def start(self, *, line: bool = True, **params: str) -> None:
        await self.ws.send(wire.Connected().to_json())
        start = wire.Start(
            stream_sid=self.stream_sid,
            call_sid=self.call_sid,
            account_sid="AC" + "0" * 32,
            sequence=next(self._seq),
            custom_parameters=params,
        )
        await self.ws.send(start.to_json())
        if line:
            self._tasks.append(asyncio.create_task(self._line()))

    def media(self, payload: bytes, *, stream_sid: str | None = None) -> str:
        chunk = next(self._chunk)
        return wire.Media(
            stream_sid=stream_sid or self.stream_sid,
            chunk=chunk,
            timestamp_ms=(chunk - 1) * 20,
            payload=payload,
            sequence=next(self._seq),
        ).to_json()

    async def say(self, ulaw: bytes) -> None:
        """Queue speech on the line; return once it has all been sent."""
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._speech.extend(ulaw[i : i + 160].ljust(160, b"\xff") for i in range(0, len(ulaw), 160))
        self._speech.append(sent)
        await sent

    async def _line(self) -> None:
        t0 = time.perf_counter()
        for i in itertools.count():
            payload = SILENCE
            while self._speech:
                item = self._speech.popleft()
                if isinstance(item, bytes):
                    payload = item
                    break
                if not item.done():
                    item.set_result(None)
            await self.ws.send(self.media(payload))
            await asyncio.sleep(max(t0 + (i + 1) * 0.02 - time.perf_counter(), 0))

    # -- what Twilio does with the app's frames

    async def _run(self) -> None:
        playback = asyncio.create_task(self._playback())
        try:
            async for text in self.ws:
                await self._on_frame(wire.parse_outbound(text))
        except ConnectionClosed:
            pass
        finally:
            playback.cancel()
            await asyncio.gather(playback, return_exceptions=True)

    async def _on_frame(self, frame: wire.Outbound) -> None:
        """Audio plays from when it arrives or when what came before ends, whichever is
        later; a mark is echoed when what came before it has played."""
        assert frame.stream_sid == self.stream_sid
        now = time.perf_counter()
        if isinstance(frame, wire.OutboundMedia):
            self.first_media_at = self.first_media_at or now
            self.replied.set()
            self.last_media_at = now
            self.received += len(frame.payload)
            self._ends = max(self._ends, now) + len(frame.payload) / 8000
            self.max_ahead_ms = max(self.max_ahead_ms, (self._ends - now) * 1000)
        elif isinstance(frame, wire.Clear):
            self.clears.append(now)
            self.cleared.set()
            self._ends = now
            dropped = list(self._queue)
            self._queue.clear()
            for item, _ in dropped:
                if isinstance(item, wire.OutboundMedia):
                    self.received -= len(item.payload)
                else:  # pending marks are echoed at once
                    assert isinstance(item, wire.OutboundMark)
                    await self._echo(item)
            return
        self._queue.append((frame, self._ends))
        self._queued.set()

    async def _echo(self, mark: wire.OutboundMark) -> None:
        if self.echo_marks:
            self.marks_echoed.append(mark.name)
            echo = wire.Mark(stream_sid=self.stream_sid, name=mark.name, sequence=next(self._seq))
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(echo.to_json())

    async def _playback(self) -> None:
        while True:
            while not self._queue:
                self._queued.clear()
                await self._queued.wait()
            frame, ends = self._queue[0]
            await asyncio.sleep(ends - time.perf_counter())
            if not self._queue or self._queue[0][0] is not frame:
                continue  # cleared meanwhile
            self._queue.popleft()
            if isinstance(frame, wire.OutboundMark):
                await self._echo(frame)
            else:
                assert isinstance(frame, wire.OutboundMedia)
                self.heard += frame.payload
                self.played += len(frame.payload)

    # -- waiting on the app

    async def quiet(self, seconds: float, *, within_s: float) -> None:
        """Wait until reply audio came, then none for ``seconds``, and all of it played."""

        def quiet() -> bool:
            last = self.last_media_at
            return (
                last is not None
                and time.perf_counter() - last > seconds
                and self.played == self.received
            )

        await eventually(quiet, within_s=within_s)


@asynccontextmanager
async def twilio_stream(
    url: str, *, signed: bool = True, echo_marks: bool = True
) -> AsyncIterator[FakeTwilio]:
    """A stream to ``url`` (ws://...) with its peer running; hung up when the block ends."""
    headers = {}
    if signed:  # Twilio signs the wss:// URL the TwiML named
        wss = "wss://" + url.split("://", 1)[1]
        headers["X-Twilio-Signature"] = RequestValidator(TOKEN).compute_signature(wss, {})
    async with connect(url, additional_headers=headers) as ws:
        peer = FakeTwilio(ws, echo_marks=echo_marks)
        peer.open()
        try:
            yield peer
        finally:
            await peer.close()


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


# -- the offline agent behind create_app -------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def agent(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, FastAPI]]:
    data = yaml.safe_load((ROOT / "configs" / "local.yaml").read_text())
    data["transports"] = {
        "twilio": {"validate_signature": True, "auth_token": TOKEN,
                   "parameters": {"clinic": "harbour"}},
    }  # fmt: skip
    config = tmp_path_factory.mktemp("twilio") / "twilio.yaml"
    config.write_text(yaml.safe_dump(data))
    app = create_app(load_config(config))
    async with serving(app) as host:
        yield host, app


async def metrics(host: str) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"http://{host}/metrics")).text


def counted(text: str, kind: str) -> float:
    line = f'callweaver_transport_errors_total{{kind="{kind}",transport="twilio"}} '
    for row in text.splitlines():
        if row.startswith(line):
            return float(row[len(line) :])
    return 0.0


async def test_the_webhook_answers_stream_twiml_and_forged_requests_are_refused(
    agent: tuple[str, FastAPI],
) -> None:
    host, _ = agent
    url = f"http://{host}/twilio/voice"
    form = {"CallSid": "CA123", "From": "+15550001", "To": "+15550002", "Direction": "inbound"}
    sign = RequestValidator(TOKEN).compute_signature
    before = counted(await metrics(host), "bad_signature")
    async with httpx.AsyncClient() as client:
        ok = await client.post(url, data=form, headers={"X-Twilio-Signature": sign(url, form)})
        forged = await client.post(url, data=form, headers={"X-Twilio-Signature": "Zm9yZ2Vk"})
        unsigned = await client.post(url, data=form)
        tampered = await client.post(
            url, data={**form, "From": "+15559999"}, headers={"X-Twilio-Signature": sign(url, form)}
        )
    assert ok.status_code == 200, ok.text
    assert ok.headers["content-type"].startswith("application/xml")
    assert ok.text == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        f'<Stream url="wss://{host}/twilio/stream">'
        '<Parameter name="clinic" value="harbour" />'
        '<Parameter name="From" value="+15550001" />'
        '<Parameter name="To" value="+15550002" />'
        '<Parameter name="CallSid" value="CA123" />'
        "</Stream></Connect></Response>"
    )
    assert [forged.status_code, unsigned.status_code, tampered.status_code] == [403, 403, 403]
    assert counted(await metrics(host), "bad_signature") == before + 3

    # the stream's handshake is signed over its URL alone; a forged one never becomes a socket
    for headers in ({"X-Twilio-Signature": "Zm9yZ2Vk"}, {}):
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"ws://{host}/twilio/stream", additional_headers=headers):
                pass
        assert info.value.response.status_code == 403
    assert counted(await metrics(host), "bad_signature") == before + 5


async def test_a_paced_call_is_answered_out_loud_while_bad_peers_come_and_go(
    agent: tuple[str, FastAPI],
) -> None:
    host, app = agent
    url = f"ws://{host}/twilio/stream"
    question = ulaw_of(AUDIO / "question-hours.wav")
    kinds = ("before_start", "bad_json", "unknown_event", "wrong_stream", "oversized",
             "bad_payload")  # fmt: skip
    before = {kind: counted(await metrics(host), kind) for kind in kinds}

    async def good_call() -> str:
        async with twilio_stream(url) as peer:
            await peer.start(clinic="harbour")
            await peer.ws.send(wire.Dtmf(stream_sid=peer.stream_sid, digit="1").to_json())
            await peer.say(question)
            await peer.quiet(1.0, within_s=25)
            # the budget, plus what a busy event loop (this one runs server, peers and
            # models) adds by reading the socket late
            assert peer.max_ahead_ms <= 300 + 80, peer.max_ahead_ms
            assert not peer.clears
            return await transcribe(bytes(peer.heard))

    async def junk_call() -> str:
        async with twilio_stream(url) as peer:
            ws = peer.ws
            await ws.send(peer.media(SILENCE))  # before start
            await peer.start()
            await ws.send("{oops")
            await ws.send(json.dumps({"event": "hangup", "streamSid": peer.stream_sid}))
            await ws.send(peer.media(SILENCE, stream_sid="MZ" + "f" * 32))
            await ws.send(json.dumps({"event": "media", "pad": "x" * 70_000}))
            await ws.send(peer.media(SILENCE).replace('"payload":"', '"payload":"!'))
            await peer.say(question)
            await within(peer.replied.wait(), 15)
            await asyncio.sleep(2.5)  # hear the start of the answer, then hang up
            return await transcribe(bytes(peer.heard))

    async def vanishing_call() -> None:
        async with twilio_stream(url) as peer:
            await peer.start()
            await peer.say(question)
            await within(peer.replied.wait(), 15)
            await asyncio.sleep(0.3)
            peer.ws.transport.abort()  # gone mid-sentence, without a word

    good, junk, _ = await asyncio.gather(good_call(), junk_call(), vanishing_call())
    assert "saturday" in good and "sunday" in good, good
    assert "open" in junk, junk

    server = app.state.server
    # every call ends; nothing is left over from the broken ones
    await eventually(lambda: not server.calls, within_s=10)
    text = await metrics(host)
    for kind in kinds:
        assert counted(text, kind) >= before[kind] + 1, kind
    assert 'callweaver_calls_total{reason="hangup",transport="twilio"}' in text
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://{host}/health")).status_code == 200


async def test_caller_speech_over_the_reply_clears_twilios_buffer(
    agent: tuple[str, FastAPI],
) -> None:
    host, _ = agent
    async with twilio_stream(f"ws://{host}/twilio/stream") as peer:
        await peer.start()
        await peer.say(ulaw_of(AUDIO / "question-hours.wav"))
        await within(peer.replied.wait(), 15)
        await asyncio.sleep(0.5)
        barge_in = asyncio.ensure_future(peer.say(ulaw_of(AUDIO / "question-address.wav")))
        await within(peer.cleared.wait(), 4)
        barge_in.cancel()
        first_reply_at = peer.first_media_at
    assert first_reply_at is not None and peer.clears[0] > first_reply_at
    assert peer.marks_echoed  # pending marks were echoed on the clear


async def test_behind_a_proxy_public_url_is_what_is_signed_and_where_the_stream_points(
    tmp_path: Path,
) -> None:
    data = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    public = "https://voice.example.com/agent"  # the proxy strips /agent
    data["transports"] = {"twilio": {"auth_token": TOKEN, "public_url": public, "path": "/tw"}}
    config = tmp_path / "proxied.yaml"
    config.write_text(yaml.safe_dump(data))
    sign = RequestValidator(TOKEN).compute_signature
    form = {"CallSid": "CA9", "From": "+15550001", "To": "+15550002"}
    async with serving(create_app(load_config(config))) as host:
        local = f"http://{host}/tw/voice"
        async with httpx.AsyncClient() as client:
            ok = await client.post(
                local, data=form, headers={"X-Twilio-Signature": sign(f"{public}/tw/voice", form)}
            )
            signed_locally = await client.post(
                local, data=form, headers={"X-Twilio-Signature": sign(local, form)}
            )
        assert ok.status_code == 200, ok.text
        assert '<Stream url="wss://voice.example.com/agent/tw/stream">' in ok.text
        assert signed_locally.status_code == 403

        stream = f"ws://{host}/tw/stream"
        with pytest.raises(InvalidStatus):  # signed for the URL this server sees: refused
            headers = {"X-Twilio-Signature": sign(f"wss://{host}/tw/stream", {})}
            async with connect(stream, additional_headers=headers):
                pass
        headers = {"X-Twilio-Signature": sign("wss://voice.example.com/agent/tw/stream", {})}
        async with connect(stream, additional_headers=headers) as ws:
            peer = FakeTwilio(ws)
            await peer.start(line=False)
            await ws.send(wire.Stop(stream_sid=peer.stream_sid).to_json())
            # the stop ends the call, and the app closes the socket (Twilio moves on)
            await within(ws.wait_closed(), 5)


async def test_the_twilio_config_needs_a_token_to_check_signatures() -> None:
    def twilio(section: str) -> str:
        pipeline = "pipeline: {nodes: [{name: bot, type: echo}]}"
        return f"name: t\ntransports:\n  twilio: {section}\n{pipeline}\n"

    with pytest.raises(ConfigError) as info:
        parse_config(twilio("{}"), "t.yaml", env={})
    assert "validate_signature needs auth_token" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_config(twilio("{auth_token: '${TWILIO_AUTH_TOKEN:-}'}"), "t.yaml", env={})
    assert "validate_signature needs auth_token" in str(info.value)
    for bad in ("{validate_signature: false, max_buffer_ms: 5}",
                "{validate_signature: false, public_url: 'example.com'}",
                "{validate_signature: false, path: 'twilio'}",
                "{validate_signature: false, typo: 1}"):  # fmt: skip
        with pytest.raises(ConfigError):
            parse_config(twilio(bad), "t.yaml", env={})
    dep = parse_config(
        twilio("{auth_token: '${TWILIO_AUTH_TOKEN}'}"), "t.yaml", env={"TWILIO_AUTH_TOKEN": "s3"}
    )
    twilio_config = dep.config.transports.twilio
    assert twilio_config is not None and twilio_config.auth_token is not None
    assert twilio_config.auth_token.get_secret_value() == "s3"
    assert "s3" not in repr(twilio_config)  # a secret is never printed
    assert (twilio_config.path, twilio_config.max_buffer_ms) == ("/twilio", 300)
