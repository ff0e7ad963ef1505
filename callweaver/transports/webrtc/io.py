"""A WebRTC peer connection as a call's transport (:class:`~callweaver.pipelines.call.CallIO`),
with callweaver as the answerer (aiortc).

:meth:`WebRTCIO.answer` takes the page's offer (ICE already gathered: no trickle), answers it
with the bot's :class:`~callweaver.transports.webrtc.track.ReplyTrack` on the offer's audio
section, gathers on the configured addresses (:mod:`~callweaver.transports.webrtc.ice`), and
makes the inbound jitter buffer one frame deep (:mod:`~callweaver.transports.webrtc.jitter`).

Inbound (:meth:`WebRTCIO.frames`): the caller's opus audio, decoded by aiortc, becomes 16 kHz
mono :class:`~callweaver.frames.InputAudioFrame` chunks stamped with the peer's RTP clock
(``pts_ns``) and their arrival (``ts_ns``); ``dtmf`` messages on the data channel become
:class:`~callweaver.frames.DTMFFrame`. The iterator ends when the caller hangs up: a
``hangup`` message, the connection closing or failing (a closed tab), or the remote track
ending. If the connection is not up within ``connect_timeout_s`` it ends too.

Outbound (:meth:`WebRTCIO.write`): reply audio goes to the reply track at 48 kHz (the rate
the call's :class:`StartFrame` asks the TTS for), paced there; transcripts and reply text go
to the page on the ``events`` data channel (:mod:`~callweaver.transports.webrtc.events`),
with each turn's voice-to-voice time measured at this edge. A malformed data channel message
is counted through ``on_error``, logged once per kind, and skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import av
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from callweaver.audio.resample import Resampler
from callweaver.errors import PeerGone, TransportError, WireError
from callweaver.frames.audio import InputAudioFrame, OutputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.dtmf import DTMFFrame
from callweaver.frames.text import ReplyEndFrame, ReplyTextFrame, TranscriptFrame
from callweaver.runtime.clock import Clock, MonotonicClock
from callweaver.runtime.latency import Stage
from callweaver.transports.edge import EdgeTimes
from callweaver.transports.webrtc import events
from callweaver.transports.webrtc.ice import gather_on
from callweaver.transports.webrtc.jitter import shallow_jitter_buffers
from callweaver.transports.webrtc.track import RATE as OUT_RATE
from callweaver.transports.webrtc.track import ReplyTrack

if TYPE_CHECKING:
    from callweaver.pipelines.call import Call

log = logging.getLogger("callweaver.transports.webrtc")

IN_RATE = 16000
_NS = 1_000_000_000
_OUTBOX = 256  # events kept for a channel that is not open yet


class WebRTCIO:
    """A call's transport over one peer connection (see the module docstring)."""

    in_sample_rate = IN_RATE
    out_sample_rate = OUT_RATE

    def __init__(
        self,
        pc: RTCPeerConnection,
        *,
        parameters: Mapping[str, str] | None = None,
        max_buffer_ms: int = 300,
        connect_timeout_s: float = 15.0,
        on_error: Callable[[str], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.pc = pc
        self.clock = clock or MonotonicClock()
        self.parameters: dict[str, str] = dict(parameters or {})
        """The call's choices from the page (the call's context carries them)."""
        self.connect_timeout_s = connect_timeout_s
        self.reply = ReplyTrack(
            max_buffer_ms=max_buffer_ms, clock=self.clock, on_first_audio=self._first_audio
        )
        self.edge = EdgeTimes()
        self.errors: Counter[str] = Counter()
        self.conversation: list[tuple[int, str, str]] = []
        """(turn, "caller" or "bot", text): what was heard and said, in order."""
        self.frames_in = 0
        self.hangup: str | None = None
        """Why the caller's side ended ("hangup message", "connection closed"...), once it has."""
        self.call: Call | None = None
        self._remote: MediaStreamTrack | None = None
        self._channel: RTCDataChannel | None = None
        self._outbox: deque[str] = deque(maxlen=_OUTBOX)
        self._dtmf: deque[str] = deque()
        self._connected = asyncio.Event()
        self._resampler: Resampler | None = None
        self._on_error = on_error
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_state)

    @classmethod
    async def answer(
        cls,
        offer: events.Offer,
        *,
        addresses: Sequence[str] | None = None,
        ice_servers: Sequence[str] = (),
        **kwargs: object,
    ) -> WebRTCIO:
        """Answer ``offer``: the returned io's :attr:`answer_sdp` goes back to the page.
        Raises :class:`~callweaver.errors.WireError` for an offer aiortc cannot take."""
        config = RTCConfiguration(iceServers=[RTCIceServer(urls=url) for url in ice_servers])
        pc = RTCPeerConnection(config)
        io = cls(pc, parameters=offer.parameters, **kwargs)  # type: ignore[arg-type]
        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
            if io._remote is None:
                raise WireError("no_audio", "the offer sends no audio")
            pc.addTrack(io.reply)
            shallow_jitter_buffers(pc)
            with gather_on(addresses):
                await pc.setLocalDescription(await pc.createAnswer())
        except WireError:
            await pc.close()
            raise
        except Exception as exc:  # aiortc's SDP parser asserts, indexes, raises ValueError...
            await pc.close()
            raise WireError("bad_sdp", f"{type(exc).__name__}: {exc}") from None
        return io

    @property
    def answer_sdp(self) -> str:
        return self.pc.localDescription.sdp

    def attach(self, call: Call) -> None:
        """The call this connection feeds: a hang-up ends it, the page sees its id."""
        self.call = call
        self._send_event(events.call_event(call.call_id))

    # -- peer connection events ---------------------------------------------------------------

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._remote is None:
            self._remote = track

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if channel.label != "events" or self._channel is not None:
            return
        self._channel = channel
        channel.on("message", self._on_message)
        while self._outbox and channel.readyState == "open":
            channel.send(self._outbox.popleft())

    def _on_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected":
            self._connected.set()
        elif state in ("failed", "closed"):
            self._hung_up(f"connection {state}")

    def _on_message(self, raw: str | bytes) -> None:
        try:
            message = events.parse_message(raw)
        except WireError as exc:
            self._error(exc.kind, exc.detail)
            return
        if isinstance(message, events.Hangup):
            self._hung_up("hangup message")
        else:
            self._dtmf.append(message.digit)

    def _hung_up(self, why: str) -> None:
        if self.hangup is None:
            self.hangup = why
        self._connected.set()  # a caller still waiting to connect is not coming
        if self.call is not None:
            self.call.end("hangup")

    # -- inbound ------------------------------------------------------------------------------

    async def frames(self) -> AsyncIterator[Frame]:
        """The caller's audio and keypresses, until the caller hangs up."""
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                await self._connected.wait()
        except TimeoutError:
            self._error("no_connection", f"not connected within {self.connect_timeout_s:g} s")
            self.hangup = "never connected"
            return
        remote = self._remote
        if self.hangup is not None or remote is None:
            return
        clock = self.clock
        resampler = av.AudioResampler(format="s16", layout="mono", rate=IN_RATE)
        while True:
            try:
                decoded = await remote.recv()
            except MediaStreamError:
                self._hung_up("remote track ended")
                return
            while self._dtmf:
                yield DTMFFrame(digit=self._dtmf.popleft(), ts_ns=clock.now_ns())
            if not isinstance(decoded, av.AudioFrame):
                continue
            now = clock.now_ns()
            pts = (
                int(decoded.pts * decoded.time_base * _NS)
                if decoded.pts is not None and decoded.time_base is not None
                else now
            )
            pcm = b"".join(
                bytes(out.planes[0])[: out.samples * 2] for out in resampler.resample(decoded)
            )
            if not pcm:
                continue
            self.frames_in += 1
            self.edge.last_media_in_ns = now
            self.edge.arrivals.append((pts + decoded.samples * _NS // decoded.sample_rate, now))
            yield InputAudioFrame(pcm=pcm, sample_rate=IN_RATE, pts_ns=pts, ts_ns=now)

    # -- outbound -----------------------------------------------------------------------------

    async def write(self, frame: Frame) -> None:
        """Send reply audio and show text on the page. Raises
        :class:`~callweaver.errors.PeerGone` once the caller has gone."""
        if isinstance(frame, OutputAudioFrame):
            await self._write_audio(frame)
        elif isinstance(frame, ReplyTextFrame):
            self.conversation.append((frame.turn_id, "bot", frame.text))
            self._send_event(events.reply_event(frame.turn_id, frame.text))
        elif isinstance(frame, ReplyEndFrame):
            self._end_segment()
            self._send_event(events.reply_end_event(frame.turn_id))
        elif isinstance(frame, TranscriptFrame):
            if frame.final:
                self.conversation.append((frame.turn_id, "caller", frame.text))
            self._send_event(events.transcript_event(frame.turn_id, frame.text, frame.final))

    async def _write_audio(self, frame: OutputAudioFrame) -> None:
        if self.hangup is not None:
            raise PeerGone(f"the caller has gone ({self.hangup})")
        if frame.channels != 1:
            raise TransportError(f"reply audio must be mono, got {frame.channels} channels")
        pcm = frame.pcm
        if frame.sample_rate != OUT_RATE:
            if self._resampler is None or self._resampler.in_rate != frame.sample_rate:
                self._resampler = Resampler(frame.sample_rate, OUT_RATE)
            pcm = self._resampler.process(pcm)
        try:
            await self.reply.put(pcm, frame.turn_id)
        except MediaStreamError:
            raise PeerGone("the connection closed") from None

    def _end_segment(self) -> None:
        tail = self._resampler.flush() if self._resampler is not None else b""
        self._resampler = None
        self.reply.end_segment(tail)

    async def flush(self) -> float:
        """Barge-in: drop reply audio the track has not sent; tell the page. Returns the ms
        dropped."""
        self._resampler = None
        dropped = self.reply.flush()
        turn = self.call.ctx.turn_id if self.call is not None else 0
        if dropped:
            self._send_event(events.interrupted_event(turn))
        return float(dropped)

    def _first_audio(self, turn: int, now_ns: int) -> None:
        self.edge.first_media_out_ns.setdefault(turn, now_ns)
        times = self.call.ctx.latency.get(turn) if self.call is not None else None
        speech_end = times.marks.get(Stage.SPEECH_END) if times is not None else None
        if speech_end is not None:
            self._send_event(events.latency_event(turn, (now_ns - speech_end) / 1e6))

    def _send_event(self, text: str) -> None:
        channel = self._channel
        if channel is None or channel.readyState != "open":
            self._outbox.append(text)
            return
        with contextlib.suppress(Exception):  # closing under us: the page is gone anyway
            channel.send(text)

    def _error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if self._on_error is not None:
            self._on_error(kind)
        call_id = self.call.call_id if self.call is not None else "(no call)"
        first = self.errors[kind] == 1
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "webrtc %s: %s: %s%s",
            call_id,
            kind,
            detail[:200],
            " (skipped; further ones of this kind are logged at debug level)" if first else "",
        )

    async def close(self, reason: str = "completed") -> None:
        """End the connection from our side, telling the page why first."""
        if self.pc.connectionState != "closed":
            self._send_event(events.ended_event(reason))
            await asyncio.sleep(0)  # let the message leave before the transport closes
        self.hangup = self.hangup or "closed by the server"
        self.reply.stop()
        await self.pc.close()
