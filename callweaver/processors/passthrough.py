"""Processors that pass frames on unchanged: the smallest possible nodes.

Useful as placeholders in a graph, and as the unit of the framework benchmark.
"""

from __future__ import annotations

from callweaver.frames.base import Frame
from callweaver.runtime.processor import Processor, Transform


class Passthrough(Processor):
    """An actor that forwards every frame (its own inbox, loop and task)."""


class Identity(Transform):
    """A pure transform that returns every frame as is; fused into its upstream actor when the
    graph allows it."""

    def transform(self, frame: Frame) -> Frame | None:
        return frame
