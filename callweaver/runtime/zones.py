"""The callers' time zone: an IANA name from a config, checked (:data:`ZoneName`), and what
the wall clock's day means in it (:func:`until_midnight`). "" is the server's own zone."""

from __future__ import annotations

import datetime
import zoneinfo
from typing import Annotated

from pydantic import AfterValidator

__all__ = ["ZoneName", "until_midnight", "zone"]


def zone(name: str) -> zoneinfo.ZoneInfo | None:
    """The zone ``name`` (None for "": the server's local time). Raises ValueError naming
    it when it is not an IANA zone."""
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r} (an IANA name: Europe/Madrid)") from None


def _checked(name: str) -> str:
    zone(name)
    return name


ZoneName = Annotated[str, AfterValidator(_checked)]
"""A config field holding an IANA zone name, or "" for the server's."""


def until_midnight(now: float, tz: datetime.tzinfo | None = None) -> float:
    """Seconds from ``now`` (Unix time) to the next midnight in ``tz`` (None: the server's
    local time): how long something said about "today" stays true."""
    local = datetime.datetime.fromtimestamp(now, tz)  # naive, in local time, for None
    tomorrow = local.date() + datetime.timedelta(days=1)
    # in the zone: the day may be 23 or 25 hours long (DST)
    midnight = datetime.datetime.combine(tomorrow, datetime.time(), tzinfo=tz)
    return max(0.0, midnight.timestamp() - now)
