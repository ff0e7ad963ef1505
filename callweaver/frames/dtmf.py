"""Keypad digits pressed by the caller."""

from __future__ import annotations

from dataclasses import dataclass

from callweaver.frames.base import Frame

DTMF_DIGITS = frozenset("0123456789*#ABCD")


@dataclass(frozen=True, slots=True, kw_only=True)
class DTMFFrame(Frame):
    """One keypress: ``digit`` is one of 0-9, ``*``, ``#`` or A-D."""

    digit: str

    def __post_init__(self) -> None:
        if self.digit not in DTMF_DIGITS:
            raise ValueError(f"not a DTMF digit: {self.digit!r}")
