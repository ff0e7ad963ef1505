"""Statistics over turns: percentiles per stage, where the time goes, and correctness."""

from __future__ import annotations

from collections.abc import Sequence

from bench.corpus import words
from bench.offline_agent import Json
from bench.offline_agent.answers import Answers, answers_for_text
from bench.offline_agent.calls import STAGE_NAMES, V2V, Turn
from bench.offline_agent.questions import Question
from callweaver.runtime.latency import Stage, percentile

# where the time between two stages goes
COMPONENTS = {
    "endpoint (VAD silence)": (Stage.SPEECH_END, Stage.ENDPOINT),
    "transcript after endpoint (STT)": (Stage.ENDPOINT, Stage.FINAL_TRANSCRIPT),
    "answer chosen (embedding + match)": (Stage.FINAL_TRANSCRIPT, Stage.FIRST_TOKEN),
    "first sentence synthesized (TTS)": (Stage.FIRST_TOKEN, Stage.FIRST_TTS_AUDIO),
    "to the transport": (Stage.FIRST_TTS_AUDIO, Stage.FIRST_AUDIO_OUT),
}


def stats(values: Sequence[float]) -> Json | None:
    if not values:
        return None
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "max": max(values),
    }


def stage_stats(turns: Sequence[Turn]) -> dict[str, Json | None]:
    return {
        name: stats([v for t in turns if (v := t.stages.get(name)) is not None])
        for name in (*STAGE_NAMES, V2V)
    }


def component_stats(turns: Sequence[Turn]) -> dict[str, Json | None]:
    out: dict[str, Json | None] = {}
    for label, (a, b) in COMPONENTS.items():
        values = []
        for t in turns:
            start = 0.0 if a is Stage.SPEECH_END else t.stages.get(a.value)
            end = t.stages.get(b.value)
            if start is not None and end is not None:
                values.append(end - start)
        out[label] = stats(values)
    return out


def correctness(turns: Sequence[Turn], answers: Answers) -> Json:
    """Per question (the last turn of each: a split question is answered once it is whole)."""
    asked = [t for t in turns if t.asked and t.last]
    ref_words = sum(len(words(t.asked)) for t in asked)
    by_text = {
        q.text: answers_for_text(answers, q.text)
        for q in {Question(t.expected, t.asked) for t in asked}
    }
    return {
        "questions": len(asked),
        "turns": len(turns),
        "split_questions": sum(1 for t in turns if not t.last),
        "stray_turns": sum(1 for t in turns if not t.asked),
        "transcripts_exact": sum(1 for t in asked if t.edits == 0),
        "wer": sum(t.edits for t in asked) / ref_words if ref_words else None,
        "answered_right": sum(1 for t in asked if t.correct),
        "text_alone_right": sum(1 for t in asked if by_text[t.asked] == t.expected),
        "reply_audio_checked": sum(1 for t in asked if t.reply_heard),
        "reply_audio_heard_as_said": sum(
            1 for t in asked if t.reply_heard and t.reply_heard == t.said
        ),
    }


def reply_lengths(turns: Sequence[Turn]) -> dict[str, float]:
    """The longest reply audio heard per answer, to pace a caller's next question after it."""
    out: dict[str, float] = {}
    for t in turns:
        if t.said != "other":
            out[t.said] = max(out.get(t.said, 0.0), t.reply_s)
    return out


def tts_of(t: Turn) -> float | None:
    a, b = t.stages.get(Stage.FIRST_TOKEN.value), t.stages.get(Stage.FIRST_TTS_AUDIO.value)
    return None if a is None or b is None else b - a
