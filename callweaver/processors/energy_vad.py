"""A voice activity detector on signal energy: no model, microseconds per frame.

Each incoming chunk is speech when its level is above ``threshold_dbfs``; turn-taking is the
shared logic of :mod:`callweaver.processors.vad`. It is the lightweight fallback when no neural
VAD is wanted and the detector many tests use; it does not tell speech from loud noise.
"""

from __future__ import annotations

from pydantic import Field

from callweaver.audio.levels import level_dbfs
from callweaver.frames.audio import InputAudioFrame
from callweaver.processors.vad import TurnParams, VoiceActivity, Window

__all__ = ["EnergyVAD", "EnergyVADParams", "level_dbfs"]


class EnergyVADParams(TurnParams):
    threshold_dbfs: float = Field(-35.0, le=0, description="level above which a chunk is speech")
    start_ms: int = Field(60, ge=0, description="speech needed to open a turn")


class EnergyVAD(VoiceActivity):
    """Speech by level, one decision per incoming chunk."""

    Params = EnergyVADParams

    def __init__(self, params: EnergyVADParams | None = None) -> None:
        self.p = params or EnergyVADParams()
        super().__init__(self.p)

    async def classify(self, frame: InputAudioFrame) -> list[Window]:
        voiced = level_dbfs(frame.pcm) >= self.p.threshold_dbfs
        end = frame.pts_ns + frame.duration_ns
        return [Window(voiced, frame.pts_ns, end, frame.ts_ns)]
