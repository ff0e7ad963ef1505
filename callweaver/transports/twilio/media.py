"""The Twilio Media Streams transport: a call's :class:`~callweaver.pipelines.call.CallIO` over
the WebSocket Twilio opens for ``<Connect><Stream>``.

Inbound (:meth:`TwilioMediaIO.frames`): ``media`` becomes 8 kHz PCM16
:class:`~callweaver.frames.InputAudioFrame` chunks stamped with Twilio's own timestamp
(``pts_ns``) and their arrival here (``ts_ns``, so a turn's ``speech_end`` is measured at this
edge); ``dtmf`` becomes a :class:`~callweaver.frames.DTMFFrame`; ``stop`` or a closed socket
ends the iterator (a hang-up). A malformed or out-of-place message (bad JSON, unknown event,
another stream's ``streamSid``, media before ``start``, an oversized frame, bad base64) is
counted through ``on_error``, logged once per kind and stream, and skipped: the call goes on.

Outbound (:meth:`TwilioMediaIO.write`): reply audio is resampled to 8 kHz if it is not already,
encoded to mu-law and sent as 20 ms ``media`` messages, with a ``mark`` every ``mark_every_ms``
of audio and at the end of each reply segment (a :class:`~callweaver.frames.ReplyTextFrame`'s
sentence). Twilio echoes a mark once the audio before it has played, so :attr:`played` lists
the reply text the caller has really heard.

Pacing: Twilio plays what it is sent in real time and buffers the rest (for minutes). Audio
sent ahead is audio a barge-in must throw away, and a buffer nobody bounds is memory nobody
bounds, so :meth:`write` keeps at most ``max_buffer_ms`` of audio ahead of playback. Playback
is modelled on the wall clock (each chunk starts when sent or when the previous one ends) and
re-anchored by every echoed mark (what followed the mark is assumed still unplayed). Audio
whose marks have not come back is capped too (``max_buffer_ms + mark_slack_ms``): a peer
that stops reading or echoing stalls the sender instead of growing a buffer, and after
``stall_timeout_s`` the peer counts as gone. Only the call's own output task waits; other
calls never do.

Barge-in (:meth:`TwilioMediaIO.flush`): a ``clear`` drops what Twilio has buffered; the marks
then echoed are counted as cleared, not played.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

try:
    from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
except ImportError as exc:  # pragma: no cover - the core install has no web stack
    raise ImportError(
        "the Twilio transport needs the server extra: pip install 'callweaver[server]'"
    ) from exc

from callweaver.audio.mulaw import pcm16_to_ulaw, ulaw_to_pcm16
from callweaver.audio.resample import Resampler
from callweaver.errors import PeerGone, TransportError
from callweaver.frames.audio import InputAudioFrame, OutputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.dtmf import DTMFFrame
from callweaver.frames.text import ReplyEndFrame, ReplyTextFrame, TranscriptFrame
from callweaver.runtime.clock import Clock, MonotonicClock
from callweaver.transports.edge import EdgeTimes
from callweaver.transports.twilio.wire import (
    MAX_MESSAGE_CHARS,
    Connected,
    Dtmf,
    Inbound,
    Mark,
    Media,
    Start,
    Stop,
    WireError,
    clear_json,
    mark_json,
    media_json,
    parse,
)

log = logging.getLogger("callweaver.transports.twilio")

RATE = 8000
CHUNK = RATE // 50  # mu-law bytes (= samples) per 20 ms media message
_NS = 1_000_000_000


@dataclass(slots=True)
class _PendingMark:
    epoch: int
    position: int  # samples sent before the mark
    turn: int
    text: str | None  # the reply segment the mark ends, if it ends one


class TwilioMediaIO:
    """A call's transport over one Media Streams WebSocket (see the module docstring).

    The WebSocket must be accepted. Call :meth:`wait_start` before handing the io to a call
    to learn the stream's ``callSid`` (:meth:`frames` waits for it otherwise).
    ``on_error(kind)`` is called for every malformed or out-of-place inbound message and for
    a stalled peer (the server counts them in its metrics).
    """

    in_sample_rate = RATE
    out_sample_rate = RATE
    out_encoding = "mulaw"

    def __init__(
        self,
        ws: WebSocket,
        *,
        max_buffer_ms: int = 300,
        mark_every_ms: int = 100,
        mark_slack_ms: int = 1500,
        stall_timeout_s: float = 10.0,
        send_timeout_s: float = 5.0,
        max_message_chars: int = MAX_MESSAGE_CHARS,
        on_error: Callable[[str], None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        if max_buffer_ms < 20:
            raise ValueError("max_buffer_ms must be at least one 20 ms chunk")
        self.ws = ws
        self.clock = clock or MonotonicClock()
        self.max_buffer_ms = max_buffer_ms
        self.mark_every = max(mark_every_ms, 20) * RATE // 1000
        self.max_unconfirmed = (max_buffer_ms + mark_slack_ms) * RATE // 1000
        self.stall_timeout_s = stall_timeout_s
        self.send_timeout_s = send_timeout_s
        self.max_message_chars = max_message_chars
        self._on_error = on_error

        self.start: Start | None = None
        self.stopped = False
        """True once Twilio said ``stop`` (the caller hung up or the call left the stream)."""
        self.errors: Counter[str] = Counter()
        """Inbound problems by kind (see :class:`~callweaver.errors.WireError`,
        plus ``before_start``, ``wrong_stream``, ``duplicate_start``, ``unknown_mark``,
        ``unsupported_format``, ``no_start``, ``stalled``)."""
        self.conversation: list[tuple[int, str, str]] = []
        """(turn, "caller" or "bot", text): what was heard and said, in order."""
        self.played: list[tuple[int, str]] = []
        """(turn, text) of reply segments whose audio Twilio has played to the end."""
        self.edge = EdgeTimes()
        self.media_in = 0
        self.media_out = 0
        self.marks_sent = 0
        self.marks_played = 0
        self.marks_cleared = 0
        self.clears = 0
        self.flushed_ms = 0.0
        """Audio sent but dropped by ``clear``s, by the playback model."""
        self.max_ahead_ms = 0.0
        """The most audio ever sent ahead of playback, by the playback model."""

        self._gone = False
        self._reading = True
        self._sent = 0  # samples sent in this stream
        self._confirmed = 0  # samples known played (or cleared)
        self._play_end_ns = 0  # when the audio sent so far will have played, modelled
        self._epoch = 0  # bumped by each clear: older marks echo as cleared
        self._marks: dict[str, _PendingMark] = {}  # in send order
        self._mark_ids = itertools.count(1)
        self._progress = asyncio.Event()  # a mark came back
        self._since_mark = 0
        self._segment_samples = 0
        self._segment_text: str | None = None
        self._segment_turn = 0
        self._turn: int | None = None
        self._pending = b""  # mu-law less than a chunk long, waiting for more
        self._resampler: Resampler | None = None

    @property
    def parameters(self) -> dict[str, str]:
        """The stream's ``<Parameter>`` values (``From``, ``To``, ``CallSid`` among them when
        the webhook passed them), and ``callSid``/``accountSid`` from ``start`` itself."""
        if self.start is None:
            return {}
        known = {"CallSid": self.start.call_sid, "AccountSid": self.start.account_sid}
        return {**{k: v for k, v in known.items() if v}, **self.start.custom_parameters}

    @property
    def stream_sid(self) -> str:
        return self.start.stream_sid if self.start is not None else ""

    # -- inbound ------------------------------------------------------------------------------

    async def wait_start(self, timeout_s: float = 10.0) -> Start | None:
        """Read up to the ``start`` message and return it; None if the peer left (or said
        ``stop``) first, or sent no ``start`` within ``timeout_s``."""
        if self.start is not None:
            return self.start
        try:
            async with asyncio.timeout(timeout_s):
                while (event := await self._next()) is not None:
                    if isinstance(event, Start):
                        self._started(event)
                        return event
                    if isinstance(event, Stop):
                        self.stopped = True
                        break
                    if not isinstance(event, Connected):
                        self._error("before_start", f"{type(event).__name__.lower()} before start")
        except TimeoutError:
            self._error("no_start", f"no start message within {timeout_s:g} s")
        self._gone = True
        return None

    def _started(self, start: Start) -> None:
        self.start = start
        fmt = start.media_format
        if (fmt.encoding, fmt.sample_rate, fmt.channels) != ("audio/x-mulaw", RATE, 1):
            self._error(
                "unsupported_format",
                f"{fmt.encoding} {fmt.sample_rate} Hz x{fmt.channels}; decoding as mu-law 8 kHz",
            )

    async def frames(self) -> AsyncIterator[Frame]:
        """The caller's audio and keypresses, until ``stop`` or the socket closes."""
        if self.start is None and await self.wait_start() is None:
            return
        clock = self.clock
        try:
            while (event := await self._next()) is not None:
                if isinstance(event, Connected):
                    continue
                if isinstance(event, Start):
                    self._error("duplicate_start", "a second start message")
                    continue
                if event.stream_sid != self.stream_sid:
                    self._error("wrong_stream", f"{type(event).__name__.lower()} of another stream")
                    continue
                if isinstance(event, Media):
                    if event.track not in ("inbound", "inbound_track") or not event.payload:
                        continue
                    now = clock.now_ns()
                    pcm = ulaw_to_pcm16(event.payload)
                    pts = event.timestamp_ms * 1_000_000
                    self.media_in += 1
                    self.edge.last_media_in_ns = now
                    self.edge.arrivals.append((pts + len(event.payload) * _NS // RATE, now))
                    yield InputAudioFrame(pcm=pcm, sample_rate=RATE, pts_ns=pts, ts_ns=now)
                elif isinstance(event, Dtmf):
                    yield DTMFFrame(digit=event.digit, ts_ns=clock.now_ns())
                elif isinstance(event, Mark):
                    self._on_mark(event)
                else:  # Stop
                    self.stopped = True
                    break
            self._gone = True  # the caller's side is over: replies have nobody to hear them
        finally:
            # Closed by the call (it ends on its own): the reply may still drain, but echoed
            # marks are no longer read, so only the wall clock paces it from now on.
            self._reading = False

    async def _next(self) -> Inbound | None:
        """The next well-formed message; None once the socket is closed."""
        while True:
            try:
                message = await self.ws.receive()
            except (WebSocketDisconnect, RuntimeError):  # RuntimeError: already disconnected
                return None
            if message["type"] == "websocket.disconnect":
                return None
            data = message.get("text")
            if data is None:
                data = message.get("bytes") or b""
            try:
                return parse(data, max_chars=self.max_message_chars)
            except WireError as exc:
                self._error(exc.kind, exc.detail)

    def _error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if self._on_error is not None:
            self._on_error(kind)
        first = self.errors[kind] == 1
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "twilio stream %s: %s: %s%s",
            self.stream_sid or "(not started)",
            kind,
            detail[:200],
            " (skipped; further ones of this kind are logged at debug level)" if first else "",
        )

    def _on_mark(self, echo: Mark) -> None:
        """Account an echoed mark and every mark sent before it (Twilio plays in order)."""
        if echo.name not in self._marks:
            self._error("unknown_mark", f"echo of a mark never sent: {echo.name[:40]!r}")
            return
        now = self.clock.now_ns()
        while self._marks:
            name = next(iter(self._marks))
            mark = self._marks.pop(name)
            if mark.epoch != self._epoch:
                self.marks_cleared += 1
            else:
                self.marks_played += 1
                if mark.position > self._confirmed:
                    self._confirmed = mark.position
                # what was sent after the mark may not have started playing yet
                behind = now + (self._sent - mark.position) * _NS // RATE
                self._play_end_ns = max(self._play_end_ns, behind)
                if mark.text is not None:
                    self.played.append((mark.turn, mark.text))
            if name == echo.name:
                break
        self._progress.set()

    # -- outbound -----------------------------------------------------------------------------

    async def write(self, frame: Frame) -> None:
        """Send reply audio (paced, see the module docstring); note transcripts and reply
        text. Raises :class:`~callweaver.errors.PeerGone` once the caller has gone."""
        if isinstance(frame, OutputAudioFrame):
            await self._write_audio(frame)
        elif isinstance(frame, ReplyTextFrame):
            self.conversation.append((frame.turn_id, "bot", frame.text))
            if self._segment_samples:
                await self._end_segment()
            self._segment_text = (self._segment_text or "") + frame.text
            self._segment_turn = frame.turn_id
        elif isinstance(frame, ReplyEndFrame):
            await self._end_segment()
        elif isinstance(frame, TranscriptFrame) and frame.final:
            self.conversation.append((frame.turn_id, "caller", frame.text))

    async def _write_audio(self, frame: OutputAudioFrame) -> None:
        if self._gone:
            raise PeerGone("the caller has hung up")
        if self.start is None:
            raise TransportError("reply audio before the stream started")
        if frame.channels != 1:
            raise TransportError(f"reply audio must be mono, got {frame.channels} channels")
        if frame.turn_id != self._turn:
            if self._turn is not None:
                await self._end_segment()
            self._turn = frame.turn_id
        pcm = frame.pcm
        if frame.sample_rate != RATE:
            if self._resampler is None or self._resampler.in_rate != frame.sample_rate:
                self._resampler = Resampler(frame.sample_rate, RATE)
            pcm = self._resampler.process(pcm)
        self._pending += pcm16_to_ulaw(pcm)
        while len(self._pending) >= CHUNK:
            chunk, self._pending = self._pending[:CHUNK], self._pending[CHUNK:]
            await self._send_audio(chunk, frame.turn_id)

    async def _end_segment(self) -> None:
        """Send what is left of the segment's audio, then a mark that carries its text."""
        if self._resampler is not None:  # the segment's audio is complete: release its tail
            self._pending += pcm16_to_ulaw(self._resampler.flush())
        if self._pending and not self._gone:
            chunk, self._pending = self._pending, b""
            await self._send_audio(chunk, self._turn or 0)
        if self._segment_samples and not self._gone:
            await self._mark(self._segment_text)
        self._segment_samples = 0
        self._segment_text = None

    async def _send_audio(self, chunk: bytes, turn: int) -> None:
        n = len(chunk)
        await self._pace(n)
        now = self.clock.now_ns()
        self._play_end_ns = max(self._play_end_ns, now) + n * _NS // RATE
        self.max_ahead_ms = max(self.max_ahead_ms, (self._play_end_ns - now) / 1e6)
        self._sent += n
        self._since_mark += n
        self._segment_samples += n
        self.media_out += 1
        self.edge.first_media_out_ns.setdefault(turn, now)
        await self._send(media_json(self.stream_sid, chunk))
        if self._since_mark >= self.mark_every:
            await self._mark(None)

    async def _mark(self, text: str | None) -> None:
        name = f"cw{self._epoch}.{next(self._mark_ids)}"
        turn = self._segment_turn if text is not None else (self._turn or 0)
        self._marks[name] = _PendingMark(self._epoch, self._sent, turn, text)
        self._since_mark = 0
        self.marks_sent += 1
        await self._send(mark_json(self.stream_sid, name))

    async def _pace(self, samples: int) -> None:
        """Wait until ``samples`` more audio keeps within the bounds (module docstring)."""
        clock = self.clock
        duration_ns = samples * _NS // RATE
        budget_ns = self.max_buffer_ms * 1_000_000
        stalled_at: float | None = None
        while True:
            now = clock.now_ns()
            ahead_ns = max(self._play_end_ns - now, 0)
            if ahead_ns + duration_ns > budget_ns:
                await clock.sleep_until(now + ahead_ns + duration_ns - budget_ns)
                continue
            if not self._reading or self._sent + samples - self._confirmed <= self.max_unconfirmed:
                return
            loop = asyncio.get_running_loop()
            if stalled_at is None:
                stalled_at = loop.time()
            left = stalled_at + self.stall_timeout_s - loop.time()
            self._progress.clear()
            try:
                async with asyncio.timeout(max(left, 0)):
                    await self._progress.wait()
            except TimeoutError:
                self._gone = True
                self._error("stalled", f"no mark came back for {self.stall_timeout_s:g} s")
                raise PeerGone("the peer stopped playing our audio") from None

    async def _send(self, text: str) -> None:
        if self._gone:
            raise PeerGone("the caller has hung up")
        try:
            async with asyncio.timeout(self.send_timeout_s):
                await self.ws.send_text(text)
        except TimeoutError:
            self._gone = True
            self._error("stalled", f"a send took over {self.send_timeout_s:g} s")
            raise PeerGone("the peer stopped reading") from None
        except (WebSocketDisconnect, OSError, RuntimeError) as exc:  # closed under us
            self._gone = True
            raise PeerGone(f"the socket closed: {type(exc).__name__}") from None

    async def flush(self) -> float | None:
        """Barge-in: ``clear`` Twilio's buffer and forget the audio that has not played;
        returns the ms dropped (not sent yet, or sent and not played by Twilio's clock)."""
        pending_ms = len(self._pending) * 1000 / RATE  # mu-law: a byte a sample
        self._pending = b""
        self._resampler = None
        self._segment_samples = 0
        self._segment_text = None
        self._since_mark = 0
        if self.start is None or self._gone:
            return None
        now = self.clock.now_ns()
        unplayed_ns = max(self._play_end_ns - now, 0)
        if self._sent == self._confirmed and not unplayed_ns:
            return pending_ms  # nothing is buffered at Twilio
        self.flushed_ms += unplayed_ns / 1e6
        self._epoch += 1
        self._confirmed = self._sent
        self._play_end_ns = now
        self.clears += 1
        self._progress.set()
        with contextlib.suppress(PeerGone):  # gone: the call learns it from the next write
            await self._send(clear_json(self.stream_sid))
        return pending_ms + unplayed_ns / 1e6

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the socket from our side (Twilio then resumes the TwiML after ``<Connect>``);
        nothing happens if it is closed already."""
        self._gone = True
        if self.ws.application_state is not WebSocketState.CONNECTED:
            return
        with contextlib.suppress(WebSocketDisconnect, OSError, RuntimeError):
            await self.ws.close(code, reason)
