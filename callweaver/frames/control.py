"""Control frames: the life of a call's actors.

Start, cancel and interrupt are system frames: they overtake queued data. End is deliberately
*not* a system frame: it is the end-of-stream marker and travels in order behind the data, so
that ending a call drains what is queued instead of losing it. Cancel is the "stop now" path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from callweaver.frames.base import Frame


@dataclass(frozen=True, slots=True, kw_only=True)
class StartFrame(Frame):
    """The call is starting: processors open what they need. The rates are the transport's
    (caller audio in, reply audio out), so that a TTS stage speaks at the rate the transport
    sends. ``parameters`` are the call's choices from the transport (Twilio's
    ``<Parameter>``s and ``From``/``To``/``CallSid``, a web page's query), also on the call's
    context."""

    system = True
    control = True

    in_sample_rate: int = 16000
    out_sample_rate: int = 16000
    out_encoding: str = "pcm16"
    """How the transport sends reply audio on its wire: ``pcm16``, or ``mulaw`` (Twilio)."""
    parameters: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True, slots=True, kw_only=True)
class EndFrame(Frame):
    """End of stream: everything before it is processed, then the actor stops.

    ``reason`` says why ("hangup", "completed", "shutdown", "error"); a hang-up is not an error.
    """

    control = True

    reason: str = "completed"


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelFrame(Frame):
    """Stop at once: queued frames are dropped and work in flight is cancelled."""

    system = True
    control = True

    reason: str = "cancelled"


@dataclass(frozen=True, slots=True, kw_only=True)
class InterruptFrame(Frame):
    """Barge-in: every reply frame of a turn older than ``turn_id`` is stale.

    Actors drop queued interruptible frames of older turns and cancel the work in flight on
    them; inboxes refuse such frames afterwards, so none can reach a transport.
    """

    system = True
    control = True
