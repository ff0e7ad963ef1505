"""Frames: the immutable values that flow through a call. Imports nothing else of callweaver."""

from callweaver.frames.audio import AudioFrame, InputAudioFrame, OutputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.control import CancelFrame, EndFrame, InterruptFrame, StartFrame
from callweaver.frames.dtmf import DTMFFrame
from callweaver.frames.metrics import ErrorFrame, MetricsFrame
from callweaver.frames.speech import (
    EndOfTurnFrame,
    SpeechPausedFrame,
    SpeechStartedFrame,
    SpeechStoppedFrame,
)
from callweaver.frames.text import (
    LanguageFrame,
    ReplyEndFrame,
    ReplyTextFrame,
    TranscriptFrame,
)

__all__ = [
    "AudioFrame",
    "CancelFrame",
    "DTMFFrame",
    "EndFrame",
    "EndOfTurnFrame",
    "ErrorFrame",
    "Frame",
    "InputAudioFrame",
    "InterruptFrame",
    "LanguageFrame",
    "MetricsFrame",
    "OutputAudioFrame",
    "ReplyEndFrame",
    "ReplyTextFrame",
    "SpeechPausedFrame",
    "SpeechStartedFrame",
    "SpeechStoppedFrame",
    "StartFrame",
    "TranscriptFrame",
]
