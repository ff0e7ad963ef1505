"""When audio crossed a transport's edge: the raw material of voice-to-voice figures measured
where the caller is (last voiced audio in, first reply audio out), shared by the transports
that carry audio."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

_ARRIVALS_KEPT = 1500  # inbound chunks whose arrival is remembered: 30 s of 20 ms chunks


@dataclass(slots=True)
class EdgeTimes:
    """When audio crossed this edge, on the transport's clock (the call's, by default)."""

    last_media_in_ns: int | None = None
    """Arrival of the latest inbound audio chunk."""
    first_media_out_ns: dict[int, int] = field(default_factory=dict)
    """Per reply turn: when its first audio chunk was sent."""
    arrivals: deque[tuple[int, int]] = field(default_factory=lambda: deque(maxlen=_ARRIVALS_KEPT))
    """(end of chunk on the audio clock, arrival) of the latest inbound chunks."""

    def arrival_ns(self, pts_ns: int) -> int | None:
        """When the inbound audio at ``pts_ns`` (the peer's audio clock) arrived, if still known."""
        for end, arrived in self.arrivals:
            if end >= pts_ns:
                return arrived
        return None
