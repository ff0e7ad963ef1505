"""Twilio's side of a Media Streams call, for tests: a uvicorn app on 127.0.0.1 and a peer
that speaks the protocol as Twilio does (paced media, echoed marks)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
from fastapi import FastAPI
from twilio.request_validator import RequestValidator
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from callweaver.audio.mulaw import pcm16_to_ulaw, ulaw_to_pcm16
from callweaver.audio.resample import resample
from callweaver.resources import whisper
from callweaver.transports.twilio import wire
from callweaver.transports.wav import read_wav

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
