"""The callers: their questions, each with the answer it expects, and their voices.

Questions cover every declared answer of ``configs/local.yaml`` and a few the clinic has no
answer for (``NONE``: the no-match reply). flite speaks them in voices other than the bot's;
a :class:`Script` lays one caller's questions out on the audio of a call.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callweaver.audio.resample import resample
from callweaver.transports.wav import Pcm, read_wav

RATE = 16000
VOICES = ("rms", "awb", "kal16")  # flite's other voices; the bot's fallback is slt
NONE = "none"  # the expected answer of a question the clinic has no answer for

I16 = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class Question:
    answer: str  # the declared answer's id, or NONE
    text: str


# round robin over the answers, so that any prefix of the list is varied; no digits (flite
# and whisper would each spell them their own way)
QUESTIONS: tuple[Question, ...] = tuple(
    Question(a, t)
    for a, t in [
        ("hours", "What are your opening hours?"),
        ("address", "What is your address?"),
        ("parking", "Where can I park my car?"),
        ("book", "I would like to book an appointment."),
        ("cancel", "I need to cancel my appointment."),
        ("human", "Can I talk to a real person?"),
        ("insurance", "Do you accept my health insurance?"),
        (NONE, "What is the weather like today?"),
        ("hours", "When are you open during the week?"),
        ("address", "Where exactly is the clinic?"),
        ("parking", "Is there parking at the clinic?"),
        ("book", "Can I see a doctor next week?"),
        ("cancel", "Please cancel my appointment for me."),
        ("human", "Put me through to the receptionist, please."),
        ("insurance", "Which insurance plans do you take?"),
        (NONE, "Do you sell dog food?"),
        ("hours", "What time do you close in the evening?"),
        ("address", "How do I get to the clinic?"),
        ("parking", "Can I leave my car somewhere nearby?"),
        ("book", "I need to schedule a visit with the doctor."),
        ("cancel", "I can't come to my appointment, please cancel it."),
        ("human", "I would like to speak to someone at the front desk."),
        ("insurance", "Is my insurance accepted here?"),
        (NONE, "How much does a haircut cost?"),
    ]
)


class Voices:
    """flite speech of each (text, voice), at 16 kHz with the silence around it trimmed."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._cache: dict[tuple[str, str], I16] = {}

    def say(self, text: str, voice: str) -> I16:
        key = (text, voice)
        if key not in self._cache:
            path = self.workdir / f"say-{len(self._cache)}.wav"
            subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True)
            pcm = read_wav(path)
            data = (
                resample(pcm.data, pcm.sample_rate, RATE) if pcm.sample_rate != RATE else pcm.data
            )
            x = np.frombuffer(data, dtype="<i2")
            loud = np.flatnonzero(np.abs(x.astype(np.int32)) > 100)
            self._cache[key] = x[loud[0] : loud[-1] + 1].copy()
        return self._cache[key]


@dataclass(frozen=True, slots=True)
class Script:
    """One caller's side of a call: the audio, and each question with where it starts."""

    voice: str
    questions: tuple[Question, ...]
    starts: tuple[float, ...]  # s on the audio clock
    pcm: Pcm


def script(voices: Voices, voice: str, questions: Sequence[Question], lead_s: float,
           waits: Sequence[float]) -> Script:  # fmt: skip
    """``lead_s`` of silence, then each question followed by its wait (the last one's tail
    is the transport's ``tail_ms``)."""
    parts = [np.zeros(round(lead_s * RATE), np.int16)]
    starts, at = [], lead_s
    for q, wait in zip(questions, waits, strict=True):
        speech = voices.say(q.text, voice)
        starts.append(at)
        parts += [speech, np.zeros(round(wait * RATE), np.int16)]
        at += speech.size / RATE + wait
    pcm = Pcm(np.concatenate(parts).tobytes(), RATE)
    return Script(voice, tuple(questions), tuple(starts), pcm)
