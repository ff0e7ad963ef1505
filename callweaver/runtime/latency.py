"""Per-turn latency accounting: when each stage of a turn happened, and percentiles over turns.

Every stage is a monotonic timestamp on the call's clock, recorded once per turn (the first
time it happens). Voice-to-voice is ``first_audio_out - speech_end``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Stage(StrEnum):
    """The stages of a turn, in the order they normally happen."""

    SPEECH_END = "speech_end"
    ENDPOINT = "endpoint"
    FINAL_TRANSCRIPT = "final_transcript"
    FIRST_TOKEN = "first_token"
    FIRST_TTS_AUDIO = "first_tts_audio"
    FIRST_AUDIO_OUT = "first_audio_out"


STAGES: tuple[Stage, ...] = tuple(Stage)


@dataclass(slots=True)
class TurnTimes:
    """The stage timestamps of one turn (ns on the call's clock)."""

    turn_id: int
    marks: dict[Stage, int] = field(default_factory=dict)
    switches: list[str] = field(default_factory=list)
    """Failover switches during the turn, as "stage:from->to" (to "none" when none was left)."""
    metrics: dict[str, float] = field(default_factory=dict)
    """What the nodes measured of the turn (their metrics frames: ``cache.hit`` with the
    match score, ``cache.audio.hit``, ``answers_score``...), the last value of each name."""

    def since_speech_end_ms(self, stage: Stage) -> float | None:
        start = self.marks.get(Stage.SPEECH_END)
        at = self.marks.get(stage)
        if start is None or at is None:
            return None
        return (at - start) / 1e6

    @property
    def voice_to_voice_ms(self) -> float | None:
        return self.since_speech_end_ms(Stage.FIRST_AUDIO_OUT)


class TurnLatency:
    """Collects stage marks for every turn of one call."""

    __slots__ = ("_turns",)

    def __init__(self) -> None:
        self._turns: dict[int, TurnTimes] = {}

    def mark(self, turn_id: int, stage: Stage, at_ns: int) -> None:
        """Record ``stage`` for ``turn_id`` unless it was already recorded (first one wins)."""
        turn = self._turns.get(turn_id)
        if turn is None:
            turn = self._turns[turn_id] = TurnTimes(turn_id)
        turn.marks.setdefault(stage, at_ns)

    def switch(self, turn_id: int, stage: str, from_provider: str, to_provider: str | None) -> None:
        """Record a failover switch in ``turn_id``."""
        turn = self._turns.get(turn_id)
        if turn is None:
            turn = self._turns[turn_id] = TurnTimes(turn_id)
        turn.switches.append(f"{stage}:{from_provider}->{to_provider or 'none'}")

    def metric(self, turn_id: int, name: str, value: float) -> None:
        """Record a node's measurement of ``turn_id``."""
        turn = self._turns.get(turn_id)
        if turn is None:
            turn = self._turns[turn_id] = TurnTimes(turn_id)
        turn.metrics[name] = value

    def get(self, turn_id: int) -> TurnTimes | None:
        """The marks of ``turn_id``, if any were recorded."""
        return self._turns.get(turn_id)

    @property
    def turns(self) -> list[TurnTimes]:
        return [self._turns[k] for k in sorted(self._turns)]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True, slots=True)
class Summary:
    """p50/p95/p99 of one stage over many turns (ms since end of caller speech)."""

    stage: str
    count: int
    p50: float
    p95: float
    p99: float


def summarize(turns: Iterable[TurnTimes]) -> list[Summary]:
    """Percentiles per stage over all turns that recorded it, plus voice-to-voice."""
    turns = list(turns)
    out: list[Summary] = []
    for stage in STAGES[1:]:
        values = [v for t in turns if (v := t.since_speech_end_ms(stage)) is not None]
        if values:
            out.append(
                Summary(
                    stage.value,
                    len(values),
                    percentile(values, 50),
                    percentile(values, 95),
                    percentile(values, 99),
                )
            )
    return out


def _cache_cell(metrics: dict[str, float]) -> str:
    """How the response cache served a turn: hit (with the audio: +audio), miss or -."""
    if "cache.hit" in metrics:
        return "hit+audio" if "cache.audio.hit" in metrics else "hit"
    return "miss" if "cache.miss" in metrics else "-"


def _language_cell(metrics: dict[str, float]) -> str:
    """The turn's locale (a language node's ``language.turn.<locale>``), ``*`` if it moved
    the call there."""
    locale = next((k.removeprefix(_TURN_LOCALE) for k in metrics if k.startswith(_TURN_LOCALE)), "")
    return f"{locale}*" if "language.switch" in metrics else locale or "-"


_TURN_LOCALE = "language.turn."


def format_table(turns: Sequence[TurnTimes]) -> str:
    """A plain-text table: one row per turn, each stage in ms after the end of caller speech,
    how the response cache served it, the turn's language and its failover switches, when
    there were any."""
    switched = any(t.switches for t in turns)
    cached = any(k.startswith("cache.") for t in turns for k in t.metrics)
    languages = any(k.startswith(_TURN_LOCALE) for t in turns for k in t.metrics)
    header = ["turn", *(s.value for s in STAGES[1:]), "voice_to_voice"]
    if cached:
        header.append("cache")
    if languages:
        header.append("language")
    if switched:
        header.append("failover")
    rows = [header]
    for t in turns:
        cells = [str(t.turn_id)]
        for stage in STAGES[1:]:
            v = t.since_speech_end_ms(stage)
            cells.append("-" if v is None else f"{v:.1f}")
        v2v = t.voice_to_voice_ms
        cells.append("-" if v2v is None else f"{v2v:.1f}")
        if cached:
            cells.append(_cache_cell(t.metrics))
        if languages:
            cells.append(_language_cell(t.metrics))
        if switched:
            cells.append(" ".join(t.switches) or "-")
        rows.append(cells)
    summary = summarize(turns)
    if summary:
        rows.append([])
        rows.append(["stage (ms)", "n", "p50", "p95", "p99"])
        for s in summary:
            rows.append([s.stage, str(s.count), f"{s.p50:.1f}", f"{s.p95:.1f}", f"{s.p99:.1f}"])
    widths = [max(len(r[i]) for r in rows if len(r) > i) for i in range(len(header))]
    lines = []
    for r in rows:
        lines.append("  ".join(c.rjust(widths[i]) for i, c in enumerate(r)).rstrip())
    return "\n".join(lines)
