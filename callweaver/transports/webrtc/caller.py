"""The caller's side of a WebRTC call, in Python: what the call page does, for tests,
benchmarks and load tests of a deployment. An aiortc offerer that speaks PCM or WAV files at
real pace, records the bot's voice with arrival times, and reads the ``events`` data channel.

    async with webrtc_call("127.0.0.1:8000", addresses=["127.0.0.1"]) as caller:
        caller.mic.say_wav("question.wav")
        ...
        caller.received.pcm()  # 16 kHz mono PCM16 of the bot's voice
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from callweaver.audio.resample import resample
from callweaver.errors import TransportError
from callweaver.transports.wav import read_wav
from callweaver.transports.webrtc.ice import gather_on
from callweaver.transports.webrtc.jitter import shallow_jitter_buffers

RATE = 48000
SAMPLES = RATE // 50  # 20 ms
HEARD_RATE = 16000
Pcm16 = np.ndarray[Any, np.dtype[np.int16]]


class Microphone(MediaStreamTrack):
    """The caller's microphone: what :meth:`say` queued, else silence, 20 ms at a time in
    real time. :attr:`spoken_end_ns` is when the last queued sample left
    (``time.monotonic_ns``, the clock of callweaver's calls)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: Pcm16 = np.zeros(0, dtype=np.int16)
        self._sent = 0
        self._t0: float | None = None
        self.spoken_end_ns: int | None = None

    def say(self, pcm: bytes, sample_rate: int) -> float:
        """Queue PCM16 mono speech; returns its duration in seconds."""
        data = np.frombuffer(resample(pcm, sample_rate, RATE), dtype=np.int16)
        self._queue = np.concatenate([self._queue, data])
        return len(data) / RATE

    def say_wav(self, path: str | Path) -> float:
        wav = read_wav(path)
        return self.say(wav.data, wav.sample_rate)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.perf_counter()
        wait = self._t0 + self._sent * SAMPLES / RATE - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk, self._queue = self._queue[:SAMPLES], self._queue[SAMPLES:]
        if len(chunk) and not len(self._queue):
            self.spoken_end_ns = time.monotonic_ns()
        chunk = np.pad(chunk, (0, SAMPLES - len(chunk)))
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._sent * SAMPLES
        frame.time_base = Fraction(1, RATE)
        self._sent += 1
        return frame


@dataclass
class Received:
    """The bot's voice as it arrived: 16 kHz mono PCM16 chunks with their arrival times."""

    chunks: list[tuple[int, Pcm16]] = field(default_factory=list)

    def voiced_since(self, since_ns: int, *, rms: float = 300) -> int | None:
        """Arrival of the first chunk after ``since_ns`` louder than ``rms``."""
        for at, pcm in self.chunks:
            if at >= since_ns and np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > rms:
                return at
        return None

    def pcm(self, since_ns: int = 0) -> Pcm16:
        parts = [pcm for at, pcm in self.chunks if at >= since_ns]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


class WebRTCCaller:
    """One call to a callweaver WebRTC endpoint (``base_url`` is ``host:port``):
    :meth:`call` offers and waits until connected; the call runs until :meth:`hangup`.
    ``addresses``: where ICE gathers (``["127.0.0.1"]`` on loopback)."""

    def __init__(
        self, base_url: str, *, path: str = "/webrtc", addresses: Sequence[str] | None = None
    ) -> None:
        self.base_url = base_url
        self.path = path.rstrip("/")
        self.addresses = addresses
        self.pc = RTCPeerConnection()
        self.mic = Microphone()
        self.received = Received()
        self.events: list[dict[str, Any]] = []
        self.call_id: str | None = None
        self.connected = asyncio.Event()
        self.channel = self.pc.createDataChannel("events")
        self.channel.on("message", lambda raw: self.events.append(json.loads(raw)))
        self.pc.addTrack(self.mic)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_state)
        self._reader: asyncio.Task[None] | None = None

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected":
            self.connected.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if self._reader is None:  # awaited by hangup()
            self._reader = asyncio.get_running_loop().create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=HEARD_RATE)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic_ns()
            if not isinstance(frame, av.AudioFrame):
                continue
            for out in resampler.resample(frame):
                pcm = np.frombuffer(bytes(out.planes[0])[: out.samples * 2], dtype=np.int16)
                self.received.chunks.append((now, pcm))

    async def offer(self, parameters: Mapping[str, str] | None = None) -> httpx.Response:
        """Send the offer (with ``parameters`` for the call) and return the raw response."""
        with gather_on(self.addresses):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        body: dict[str, Any] = {"type": "offer", "sdp": self.pc.localDescription.sdp}
        if parameters:
            body["parameters"] = dict(parameters)
        async with httpx.AsyncClient(base_url=f"http://{self.base_url}") as client:
            return await client.post(f"{self.path}/offer", json=body, timeout=30)

    async def call(
        self, parameters: Mapping[str, str] | None = None, *, connect_timeout_s: float = 10.0
    ) -> None:
        """Offer, apply the answer, and wait for the connection."""
        response = await self.offer(parameters)
        if response.status_code != 200:
            raise TransportError(f"offer refused ({response.status_code}): {response.text}")
        answer = response.json()
        self.call_id = answer["call_id"]
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        shallow_jitter_buffers(self.pc)  # a browser's adaptive buffer stays shallow on loopback
        async with asyncio.timeout(connect_timeout_s):
            await self.connected.wait()

    def event(self, kind: str) -> list[dict[str, Any]]:
        """The server's events of one type, in arrival order."""
        return [e for e in self.events if e["type"] == kind]

    def send(self, message: dict[str, Any]) -> None:
        self.channel.send(json.dumps(message))

    async def hangup(self) -> None:
        """Say ``hangup`` (when the channel is open) and close the connection."""
        if self.channel.readyState == "open":
            self.send({"type": "hangup"})
            await asyncio.sleep(0.05)  # the message leaves before the transport closes
        await self.pc.close()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)


@asynccontextmanager
async def webrtc_call(
    base_url: str, *, addresses: Sequence[str] | None = None, **parameters: str
) -> AsyncIterator[WebRTCCaller]:
    """A connected call to the app at ``base_url``; hung up when the block ends."""
    caller = WebRTCCaller(base_url, addresses=addresses)
    try:
        await caller.call(parameters)
        yield caller
    finally:
        await caller.hangup()
