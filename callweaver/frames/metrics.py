"""Metrics and error frames: what a call reports about itself."""

from __future__ import annotations

from dataclasses import dataclass

from callweaver.frames.base import Frame


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsFrame(Frame):
    """A measured value, for example a stage's latency in this turn."""

    name: str
    value: float
    node: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorFrame(Frame):
    """A processor failed. ``fatal`` errors end the call; others were handled by policy."""

    node: str
    message: str
    fatal: bool = False
