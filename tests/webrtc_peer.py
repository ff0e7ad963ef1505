"""A browser's side of a WebRTC call, for tests and benchmarks, in Python: an aiortc offerer
on loopback that speaks a WAV at real pace, records the bot's voice with arrival times, and
reads the ``events`` data channel as the call page does."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
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
from callweaver.resources import whisper
from callweaver.transports.wav import read_wav
from callweaver.transports.webrtc.ice import gather_on

RATE = 48000
SAMPLES = 960  # 20 ms
_NS = 1_000_000_000


class Microphone(MediaStreamTrack):
    """The caller's microphone: what :meth:`say` queues, else silence, 20 ms at a time in
    real time. ``spoken_end_ns`` is when the last queued speech left (time.monotonic_ns)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue = np.zeros(0, dtype="<i2")
        self._sent = 0
        self._t0: float | None = None
        self.spoken_end_ns: int | None = None

    def say(self, path: Path) -> float:
        """Queue a WAV's speech; returns its duration in seconds."""
        pcm = read_wav(path)
        data = np.frombuffer(resample(pcm.data, pcm.sample_rate, RATE), dtype="<i2")
        self._queue = np.concatenate([self._queue, data])
        return len(data) / RATE

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._t0 is None:
            self._t0 = time.perf_counter()
        wait = self._t0 + self._sent * SAMPLES / RATE - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = self._queue[:SAMPLES]
        self._queue = self._queue[SAMPLES:]
        if len(chunk):
            if not len(self._queue):
                self.spoken_end_ns = time.monotonic_ns()
            chunk = np.pad(chunk, (0, SAMPLES - len(chunk)))
        else:
            chunk = np.zeros(SAMPLES, dtype="<i2")
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._sent * SAMPLES
        frame.time_base = Fraction(1, RATE)
        self._sent += 1
        return frame


@dataclass
class Received:
    """The bot's voice as it arrived: 16 kHz mono PCM per 20 ms, with arrival times."""

    chunks: list[tuple[int, np.ndarray[Any, np.dtype[np.int16]]]] = field(default_factory=list)

    def voiced_since(self, since_ns: int, *, rms: float = 300) -> int | None:
        """Arrival of the first chunk after ``since_ns`` louder than ``rms``."""
        for at, pcm in self.chunks:
            if at >= since_ns and np.sqrt(np.mean(pcm.astype(np.float64) ** 2)) > rms:
                return at
        return None

    def pcm(self, since_ns: int = 0) -> np.ndarray[Any, np.dtype[np.int16]]:
        parts = [pcm for at, pcm in self.chunks if at >= since_ns]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)


class BrowserPeer:
    """One call from the "browser": :meth:`call` offers, the peer then runs until
    :meth:`hangup` (or the block of :func:`webrtc_call` ends)."""

    def __init__(self, base_url: str, *, path: str = "/webrtc") -> None:
        self.base_url = base_url
        self.path = path
        self.pc = RTCPeerConnection()
        self.mic = Microphone()
        self.received = Received()
        self.events: list[dict[str, Any]] = []
        self.call_id: str | None = None
        self.channel = self.pc.createDataChannel("events")
        self.channel.on("message", lambda raw: self.events.append(json.loads(raw)))
        self.pc.addTrack(self.mic)
        self.pc.on("track", self._on_track)
        self.connected = asyncio.Event()
        self.pc.on("connectionstatechange", self._on_state)
        self._reader: asyncio.Task[None] | None = None

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected":
            self.connected.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic_ns()
            assert isinstance(frame, av.AudioFrame)
            for out in resampler.resample(frame):
                pcm = np.frombuffer(bytes(out.planes[0])[: out.samples * 2], dtype="<i2")
                self.received.chunks.append((now, pcm))

    async def offer(self, **parameters: str) -> httpx.Response:
        with gather_on(["127.0.0.1"]):
            await self.pc.setLocalDescription(await self.pc.createOffer())
        async with httpx.AsyncClient(base_url=f"http://{self.base_url}") as client:
            body = {"type": "offer", "sdp": self.pc.localDescription.sdp}
            if parameters:
                body["parameters"] = parameters  # type: ignore[assignment]
            return await client.post(f"{self.path}/offer", json=body, timeout=30)

    async def call(self, **parameters: str) -> None:
        response = await self.offer(**parameters)
        response.raise_for_status()
        answer = response.json()
        self.call_id = answer["call_id"]
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        async with asyncio.timeout(10):
            await self.connected.wait()

    def event(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def send(self, message: dict[str, Any]) -> None:
        self.channel.send(json.dumps(message))

    async def hangup(self) -> None:
        if self.channel.readyState == "open":
            self.send({"type": "hangup"})
            await asyncio.sleep(0.05)
        await self.pc.close()
        if self._reader is not None:
            await asyncio.wait_for(self._reader, 5)


@asynccontextmanager
async def webrtc_call(base_url: str, **parameters: str) -> AsyncIterator[BrowserPeer]:
    """A connected call to the app at ``base_url``; hung up when the block ends."""
    peer = BrowserPeer(base_url)
    try:
        await peer.call(**parameters)
        yield peer
    finally:
        await peer.hangup()


async def transcribe16k(pcm: np.ndarray[Any, np.dtype[np.int16]]) -> str:
    heard = await whisper.shared_model("tiny.en").transcribe(
        pcm.astype(np.float32) / 32768, window="full"
    )
    return heard.text.lower()
