"""The file transport: a WAV file plays the caller, and the bot's side is recorded to a WAV.

Inbound: the file is cut into 20 ms :class:`~callweaver.frames.InputAudioFrame` chunks, paced
in real time on the call's clock (so latency figures mean what they say) or as fast as the
graph takes them. Outbound: reply audio is laid on a timeline as a phone would play it: each
chunk starts when it arrives or when the previous one finishes, whichever is later; a barge-in
flush drops what has not "played" yet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from callweaver.errors import TransportError
from callweaver.frames.audio import InputAudioFrame, OutputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.text import ReplyTextFrame, TranscriptFrame
from callweaver.runtime.clock import Clock
from callweaver.transports.wav import Pcm, read_wav, write_wav

_NS = 1_000_000_000


class FileIO:
    """A call's transport backed by a WAV in and a WAV out (see the module docstring)."""

    def __init__(
        self,
        audio: Pcm,
        clock: Clock,
        *,
        realtime: bool = True,
        frame_ms: int = 20,
        tail_ms: int = 0,
    ) -> None:
        self.audio = audio
        self.clock = clock
        self.realtime = realtime
        self.frame_bytes = audio.sample_rate * frame_ms // 1000 * 2
        self.in_sample_rate = self.out_sample_rate = audio.sample_rate
        self.tail_ms = tail_ms
        self._t0: int | None = None
        self._played_to = 0
        self._out = np.zeros(0, dtype="<i2")
        self._cursor = 0
        self.frames_in = 0
        self.frames_out = 0
        self.conversation: list[tuple[int, str, str]] = []
        self.languages: dict[int, str] = {}  # turn -> the language its transcript was in
        """(turn, "caller", "interim" or "bot", text): what was heard (interim transcripts
        too, as a streaming STT revised them while the caller spoke) and said, in order."""
        self.flushed_samples = 0
        self.parameters: dict[str, str] = {}
        """The call's parameters (``simulate --param``), as a phone call's would be."""

    @classmethod
    def from_wav(cls, path: str | Path, clock: Clock, **kwargs: object) -> FileIO:
        return cls(read_wav(path), clock, **kwargs)  # type: ignore[arg-type]

    async def frames(self) -> AsyncIterator[Frame]:
        """20 ms chunks of the input file, then ``tail_ms`` of silence, then the end."""
        rate = self.audio.sample_rate
        data = self.audio.data + bytes(rate * self.tail_ms // 1000 * 2)
        step = self.frame_bytes
        clock = self.clock
        t0 = self._t0 = clock.now_ns()
        for offset in range(0, len(data), step):
            chunk = data[offset : offset + step]
            pts = offset // 2 * _NS // rate
            end = pts + len(chunk) // 2 * _NS // rate
            if self.realtime:
                await clock.sleep_until(t0 + end)
            self._played_to = offset // 2 + len(chunk) // 2
            self.frames_in += 1
            yield InputAudioFrame(pcm=chunk, sample_rate=rate, pts_ns=pts, ts_ns=clock.now_ns())

    def _now_sample(self) -> int:
        if self.realtime and self._t0 is not None:
            return (self.clock.now_ns() - self._t0) * self.audio.sample_rate // _NS
        return self._played_to

    async def write(self, frame: Frame) -> None:
        """Lay reply audio on the outbound timeline; note transcripts and reply text."""
        if not isinstance(frame, OutputAudioFrame):
            if isinstance(frame, TranscriptFrame):
                who = "caller" if frame.final else "interim"
                self.conversation.append((frame.turn_id, who, frame.text))
                if frame.final and frame.language:
                    self.languages[frame.turn_id] = frame.language
            elif isinstance(frame, ReplyTextFrame):
                self.conversation.append((frame.turn_id, "bot", frame.text))
            return
        if frame.sample_rate != self.audio.sample_rate or frame.channels != 1:
            raise TransportError(
                f"reply audio is {frame.sample_rate} Hz x{frame.channels}, the recording is "
                f"{self.audio.sample_rate} Hz mono"
            )
        samples = np.frombuffer(frame.pcm, dtype="<i2")
        start = max(self._cursor, self._now_sample())
        end = start + samples.size
        if end > self._out.size:
            grown = np.zeros(max(end, 2 * self._out.size), dtype="<i2")
            grown[: self._cursor] = self._out[: self._cursor]
            self._out = grown
        self._out[start:end] = samples
        self._cursor = end
        self.frames_out += 1

    async def flush(self) -> float:
        """Barge-in: reply audio that has not played by now is dropped; returns its ms."""
        now = self._now_sample()
        if self._cursor <= now:
            return 0.0
        dropped = self._cursor - now
        self.flushed_samples += dropped
        self._out[now : self._cursor] = 0
        self._cursor = now
        return dropped * 1000 / self.audio.sample_rate

    def recording(self) -> Pcm:
        """The outbound side as mono PCM16, at least as long as the input."""
        total = max(self._cursor, len(self.audio.data) // 2)
        out = np.zeros(total, dtype="<i2")
        out[: self._cursor] = self._out[: self._cursor]
        return Pcm(out.tobytes(), self.audio.sample_rate)

    def save(self, path: str | Path) -> None:
        write_wav(path, self.recording())
