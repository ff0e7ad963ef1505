"""Speech events: what voice activity detection and endpointing decided.

They travel in order with the audio (not in the system lane) so that a speech-to-text stage
sees the last voiced chunk before it sees that speech stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

from callweaver.frames.base import Frame


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStartedFrame(Frame):
    """The caller started speaking at ``pts_ns``: the audio-clock time of the first voiced
    sample."""

    pts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechPausedFrame(Frame):
    """The caller's speech paused at ``pts_ns`` (audio clock, just after the last voiced
    sample): a candidate end of turn, before the endpoint decision. Stages may start work
    that a real end of turn would need (a speculative transcription); the pause becomes the
    end only if :class:`SpeechStoppedFrame` follows with the same ``pts_ns``."""

    pts_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStoppedFrame(Frame):
    """The caller stopped speaking; ``pts_ns`` is the audio-clock time just after the last voiced
    sample and ``speech_end_ns`` the same instant on the call's monotonic clock."""

    pts_ns: int
    speech_end_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EndOfTurnFrame(Frame):
    """The endpoint decision: the caller has finished this turn and a reply may start."""

    speech_end_ns: int
