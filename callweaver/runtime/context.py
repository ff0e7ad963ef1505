"""What a processor knows of the call it runs in: ids, clock, turns, latency, and the levers
(interrupt, end, cancel) that act on the whole call."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from callweaver.runtime.clock import Clock, MonotonicClock
from callweaver.runtime.latency import Stage, TurnLatency
from callweaver.runtime.replies import ReplyLog
from callweaver.runtime.spoken import SpokenLog

log = logging.getLogger("callweaver.call")


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """A processor failure and what its node's policy did about it."""

    node: str
    message: str
    policy: str
    at_ns: int


def _no_lever(_: int | str) -> None:
    raise RuntimeError("this context is not attached to a running call")


@dataclass(slots=True, eq=False)
class CallContext:
    """Per-call state shared by the call's processors.

    ``turn_id`` is the caller's current turn: it grows when a new caller utterance starts
    (:meth:`begin_turn`). Turn 0 means "no turn yet"; frames with ``turn_id == 0`` (raw caller
    audio, DTMF) belong to no turn, and work on them is never cancelled by an interrupt.
    """

    call_id: str
    clock: Clock = field(default_factory=MonotonicClock)
    turn_id: int = 0
    deployment: str = ""
    """The deployment's name (its config's ``name``)."""
    parameters: Mapping[str, str] = field(default_factory=dict)
    """The call's choices from its transport (see :class:`~callweaver.frames.StartFrame`)."""
    latency: TurnLatency = field(default_factory=TurnLatency)
    errors: list[ErrorRecord] = field(default_factory=list)
    spoken: SpokenLog = field(default_factory=SpokenLog)
    """What was said of each reply and, after a barge-in, what the caller heard of it."""
    replies: ReplyLog = field(default_factory=ReplyLog)
    """The replies the reply node completed, for the response cache to learn from."""
    _interrupt: Callable[[int], None] = _no_lever
    _end: Callable[[str], None] = _no_lever
    _cancel: Callable[[str], None] = _no_lever

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def begin_turn(self) -> int:
        """Start a new caller turn and return its id."""
        self.turn_id += 1
        return self.turn_id

    def interrupt(self, before_turn: int | None = None) -> None:
        """Barge-in: make every reply frame of turns older than ``before_turn`` (default: the
        current turn) stale in every actor of the call, and cancel the work in flight on them."""
        self._interrupt(self.turn_id if before_turn is None else before_turn)

    def end(self, reason: str = "completed") -> None:
        """End the call gracefully: stop taking input, drain what is queued."""
        self._end(reason)

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the call at once."""
        self._cancel(reason)

    def mark(self, turn_id: int, stage: Stage, at_ns: int | None = None) -> None:
        """Record a latency stage for a turn (first mark wins)."""
        self.latency.mark(turn_id, stage, self.clock.now_ns() if at_ns is None else at_ns)

    def record_error(self, node: str, exc: BaseException, policy: str) -> None:
        self.errors.append(ErrorRecord(node, repr(exc), policy, self.clock.now_ns()))
        log.warning("call %s: node %s failed (%s): %r", self.call_id, node, policy, exc)
