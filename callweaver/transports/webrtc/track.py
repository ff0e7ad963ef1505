"""The bot's voice as a WebRTC audio track: reply audio in, 20 ms frames out at real time.

aiortc's sender pulls frames from :meth:`ReplyTrack.recv` as fast as it returns them, so the
track itself keeps time: frame *n* is released at ``start + n * 20 ms`` (a stall is caught up
at once, as a jitter buffer expects). Between replies it sends silence, as a phone line does.

:meth:`ReplyTrack.put` bounds what waits in the track to ``max_buffer_ms``: the call's output
task waits instead of queueing a whole reply, so a barge-in (:meth:`ReplyTrack.flush`) has
little to throw away and memory stays bounded. The first frame of each turn's reply that
leaves is reported to ``on_first_audio(turn, now_ns)``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from callweaver.runtime.clock import Clock, MonotonicClock

RATE = 48000
"""Opus's own rate: reply audio at this rate is encoded without resampling."""
SAMPLES = RATE // 50  # per 20 ms frame
_CHUNK_BYTES = SAMPLES * 2
_SILENCE = bytes(_CHUNK_BYTES)
_TIME_BASE = Fraction(1, RATE)
_NS = 1_000_000_000


class ReplyTrack(MediaStreamTrack):
    """See the module docstring. ``put`` takes 48 kHz mono PCM16."""

    kind = "audio"

    def __init__(
        self,
        *,
        max_buffer_ms: int = 300,
        clock: Clock | None = None,
        on_first_audio: Callable[[int, int], None] | None = None,
    ) -> None:
        super().__init__()
        if max_buffer_ms < 20:
            raise ValueError("max_buffer_ms must be at least one 20 ms frame")
        self.clock = clock or MonotonicClock()
        self.max_chunks = max_buffer_ms // 20
        self.on_first_audio = on_first_audio
        self.frames_sent = 0
        self.audio_frames_sent = 0
        """Frames that carried reply audio (the rest were silence)."""
        self.flushed_ms = 0
        self._chunks: deque[tuple[int, bytes]] = deque()  # (turn, 20 ms of PCM)
        self._pending = b""  # less than a frame of the current segment
        self._pending_turn = 0
        self._reported: set[int] = set()
        self._space = asyncio.Event()
        self._start_ns: int | None = None

    @property
    def buffered_ms(self) -> int:
        return len(self._chunks) * 20

    async def put(self, pcm: bytes, turn: int) -> None:
        """Queue reply audio for ``turn``, waiting while the track holds ``max_buffer_ms``."""
        if self._pending and turn != self._pending_turn:
            self.end_segment()
        self._pending_turn = turn
        data = self._pending + pcm
        whole = len(data) - len(data) % _CHUNK_BYTES
        self._pending = data[whole:]
        for offset in range(0, whole, _CHUNK_BYTES):
            while len(self._chunks) >= self.max_chunks:
                if self.readyState != "live":
                    raise MediaStreamError
                self._space.clear()
                await self._space.wait()
            self._chunks.append((turn, data[offset : offset + _CHUNK_BYTES]))

    def end_segment(self, tail: bytes = b"") -> None:
        """The reply paused (a sentence ended): queue ``tail`` (a resampler's last samples)
        and the segment's last partial frame, padded with silence. Never waits: a tail is a
        few ms."""
        data = self._pending + tail
        self._pending = b""
        for offset in range(0, len(data), _CHUNK_BYTES):
            chunk = data[offset : offset + _CHUNK_BYTES]
            self._chunks.append((self._pending_turn, chunk + bytes(_CHUNK_BYTES - len(chunk))))

    def flush(self) -> int:
        """Barge-in: drop the reply audio not yet sent; returns how many ms were dropped."""
        dropped = len(self._chunks) * 20 + (len(self._pending) // 2 * 1000 // RATE)
        self._chunks.clear()
        self._pending = b""
        self.flushed_ms += dropped
        self._space.set()
        return dropped

    def stop(self) -> None:
        super().stop()
        self._space.set()  # a put waiting for space sees the track has ended

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        clock = self.clock
        if self._start_ns is None:
            self._start_ns = clock.now_ns()
        else:
            await clock.sleep_until(self._start_ns + self.frames_sent * 20_000_000)
        if self._chunks:
            turn, pcm = self._chunks.popleft()
            self._space.set()
            self.audio_frames_sent += 1
            if turn not in self._reported:
                self._reported.add(turn)
                if self.on_first_audio is not None:
                    self.on_first_audio(turn, clock.now_ns())
        else:
            pcm = _SILENCE
        frame = av.AudioFrame(format="s16", layout="mono", samples=SAMPLES)
        frame.planes[0].update(pcm)
        frame.sample_rate = RATE
        frame.pts = self.frames_sent * SAMPLES
        frame.time_base = _TIME_BASE
        self.frames_sent += 1
        return frame
