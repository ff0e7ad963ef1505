"""A ConversationRelay session as a call's transport (:class:`~callweaver.pipelines.call.
CallIO`).

In: each final ``prompt`` opens a turn and becomes a final :class:`TranscriptFrame` (the turn's
``speech_end``, ``endpoint`` and ``final_transcript`` marks are its arrival: Twilio has already
endpointed and transcribed); a partial prompt becomes an interim transcript; ``dtmf`` a
:class:`DTMFFrame`; ``interrupt`` (the caller spoke over the bot, Twilio stopped speaking)
interrupts the call's reply in flight. Out: each :class:`ReplyTextFrame` a ``text`` token,
:class:`ReplyEndFrame` the ``last`` one. Audio frames have no place here and are ignored.

A malformed or unknown message is counted (``on_wire_error``), logged and skipped: the
session goes on. The socket closing is a hang-up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket, WebSocketDisconnect

from callweaver.errors import PeerGone, WireError
from callweaver.frames.base import Frame
from callweaver.frames.dtmf import DTMF_DIGITS, DTMFFrame
from callweaver.frames.text import LanguageFrame, ReplyEndFrame, ReplyTextFrame, TranscriptFrame
from callweaver.runtime.latency import Stage
from callweaver.transports.relay import wire

if TYPE_CHECKING:
    from callweaver.pipelines.call import Call

log = logging.getLogger("callweaver.relay")


class RelayIO:
    """See the module docstring."""

    def __init__(
        self, ws: WebSocket, *, on_wire_error: Callable[[str], None] | None = None
    ) -> None:
        self.ws = ws
        self.on_wire_error = on_wire_error
        self.call: Call | None = None
        self.setup: wire.Setup | None = None
        self.conversation: list[tuple[int, str, str]] = []
        self.wire_errors: dict[str, int] = {}
        self._language = ""
        self._early: wire.Message | None = None  # read by wait_setup, not yet handled
        self._closed = False

    @property
    def parameters(self) -> dict[str, str]:
        """The session's ``<Parameter>`` values and who is calling (from ``setup``)."""
        setup = self.setup
        if setup is None:
            return {}
        known = {"CallSid": setup.call_sid, "From": setup.from_, "To": setup.to}
        return {**{k: v for k, v in known.items() if v}, **setup.custom_parameters}

    async def wait_setup(self, timeout_s: float = 10.0) -> wire.Setup | None:
        """Read the first message, which Twilio makes ``setup``, and return the setup; None
        if the session closed first or was silent for ``timeout_s``, or began with another
        message (counted as ``before_setup`` and still handled: the session goes on)."""
        try:
            async with asyncio.timeout(timeout_s):
                msg = await self._next()
        except TimeoutError:
            self._wire_error("no_setup", f"no setup message within {timeout_s:g} s")
            self._closed = True
            return None
        if msg is None:
            self._closed = True
        elif isinstance(msg, wire.Setup):
            self.setup = msg
        else:
            self._wire_error("before_setup", f"{type(msg).__name__} before setup")
            self._early = msg
        return self.setup

    async def _next(self) -> wire.Message | None:
        """The next well-formed message; None once the session has closed."""
        if self._early is not None:
            msg, self._early = self._early, None
            return msg
        while not self._closed:
            try:
                raw = await self.ws.receive_text()
            except (WebSocketDisconnect, RuntimeError):
                break  # the session ended: a hang-up
            try:
                return wire.parse(raw)
            except WireError as exc:
                self._wire_error(exc.kind, str(exc))
        self._closed = True
        return None

    def attach(self, call: Call) -> None:
        """The call this session feeds (turns and interrupts go to it)."""
        self.call = call

    async def frames(self) -> AsyncIterator[Frame]:
        assert self.call is not None, "attach(call) first"
        ctx = self.call.ctx
        while (msg := await self._next()) is not None:
            if isinstance(msg, wire.Setup):
                self.setup = msg
            elif isinstance(msg, wire.Prompt):
                if not msg.last:
                    yield TranscriptFrame(
                        call_id=ctx.call_id, turn_id=ctx.turn_id, ts_ns=ctx.now_ns(),
                        text=msg.text, final=False, language=msg.lang,
                    )  # fmt: skip
                    continue
                turn = ctx.begin_turn()
                now = ctx.now_ns()
                for stage in (Stage.SPEECH_END, Stage.ENDPOINT, Stage.FINAL_TRANSCRIPT):
                    ctx.mark(turn, stage, now)
                self._language = msg.lang
                self.conversation.append((turn, "caller", msg.text))
                yield TranscriptFrame(
                    call_id=ctx.call_id, turn_id=turn, ts_ns=now, text=msg.text, final=True,
                    language=msg.lang,
                )  # fmt: skip
            elif isinstance(msg, wire.Dtmf):
                if msg.digit in DTMF_DIGITS:
                    yield DTMFFrame(
                        call_id=ctx.call_id, turn_id=ctx.turn_id, ts_ns=ctx.now_ns(),
                        digit=msg.digit,
                    )  # fmt: skip
                else:
                    self._wire_error("bad_field", f"dtmf digit {msg.digit!r}")
            elif isinstance(msg, wire.Interrupt):
                # the bot's reply to the current turn is stale from now on; Twilio says what
                # the caller heard of it
                ctx.spoken.cut_text(ctx.turn_id, msg.utterance_until_interrupt)
                self.call.interrupt(ctx.turn_id + 1)
            elif isinstance(msg, wire.RelayError):
                self._wire_error("relay_error", msg.description)

    async def write(self, frame: Frame) -> None:
        if isinstance(frame, ReplyTextFrame):
            self.conversation.append((frame.turn_id, "bot", frame.text))
            await self._send(wire.text(frame.text + " ", last=False, lang=frame.language))
        elif isinstance(frame, ReplyEndFrame):
            await self._send(wire.text("", last=True))
        elif isinstance(frame, LanguageFrame) and frame.reason != "start":
            # the caller's language changed: Twilio's voice and recognizer follow
            await self._send(wire.language(tts=frame.locale, transcription=frame.locale))

    async def flush(self) -> None:
        """Twilio stops its own speech on barge-in: nothing is buffered here."""

    async def _send(self, message: str) -> None:
        try:
            await self.ws.send_text(message)
        except (WebSocketDisconnect, RuntimeError, OSError) as exc:
            raise PeerGone(f"relay session closed: {exc}") from exc

    def _wire_error(self, kind: str, message: str) -> None:
        self.wire_errors[kind] = self.wire_errors.get(kind, 0) + 1
        if self.wire_errors[kind] == 1:  # once per kind per session: a broken peer floods
            call_id = self.call.call_id if self.call is not None else "-"
            log.warning("call %s: relay message skipped (%s): %s", call_id, kind, message)
        if self.on_wire_error is not None:
            self.on_wire_error(kind)
