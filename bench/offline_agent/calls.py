"""Running paced calls, one at a time and concurrently, and collecting their turns.

Each call runs the config's graph as ``Call(dep.graph)`` over a paced :class:`FileIO` (a
:class:`Caller`, which also notes what the measures need), the way ``callweaver simulate``
runs a file call; :func:`turns_of` turns its report into one :class:`Turn` per caller turn.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import random
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from bench.corpus import edit_distance, words
from bench.offline_agent import Json
from bench.offline_agent.answers import Answers
from bench.offline_agent.probes import Cpu, LoopLag, whisper_decodes
from bench.offline_agent.questions import QUESTIONS, RATE, VOICES, Question, Script, Voices, script
from callweaver.audio.resample import resample
from callweaver.frames.audio import OutputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.metrics import MetricsFrame
from callweaver.frames.speech import SpeechStoppedFrame
from callweaver.pipelines.call import Call, CallReport
from callweaver.pipelines.config import Deployment
from callweaver.runtime.clock import MonotonicClock
from callweaver.runtime.latency import STAGES, Stage
from callweaver.transports.file import FileIO
from callweaver.transports.wav import Pcm

LEAD_S = 0.5  # silence before the first question of a call
TAIL_S = 2.0  # after the last question: the reply starts playing, then the caller hangs up
WAIT_S = 2.0  # after a reply has played, before the caller's next question
SPREAD_S = 3.0  # concurrent calls start at random offsets within this

STAGE_NAMES = tuple(s.value for s in STAGES[1:])  # endpoint ... first_audio_out
V2V = "voice_to_voice"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Caller(FileIO):
    """The file transport, also noting per turn where the caller's speech ended (audio
    clock), the answers node's score, and the reply audio."""

    def __init__(self, audio: Pcm, clock: MonotonicClock, *, tail_ms: int) -> None:
        super().__init__(audio, clock, realtime=True, tail_ms=tail_ms)
        self.started_ns = 0
        self.speech_end_pts: dict[int, int] = {}
        self.scores: dict[int, float] = {}
        self.reply_audio: dict[int, list[bytes]] = defaultdict(list)
        self.reply_end_ns: dict[int, int] = {}  # when the reply's last audio left the TTS

    async def frames(self) -> AsyncIterator[Frame]:
        self.started_ns = self.clock.now_ns()
        async with contextlib.aclosing(super().frames()) as frames:
            async for frame in frames:
                yield frame

    async def write(self, frame: Frame) -> None:
        if isinstance(frame, OutputAudioFrame):
            self.reply_audio[frame.turn_id].append(frame.pcm)
            self.reply_end_ns[frame.turn_id] = self.clock.now_ns()
        elif isinstance(frame, SpeechStoppedFrame):
            self.speech_end_pts.setdefault(frame.turn_id, frame.pts_ns)
        elif isinstance(frame, MetricsFrame) and frame.name == "answers_score":
            self.scores[frame.turn_id] = frame.value
        await super().write(frame)


@dataclass
class Turn:
    """One caller turn: what was asked and heard, what was answered, and when."""

    call: int
    turn: int
    voice: str
    asked: str  # the question this turn belongs to ("" if it fell outside every question)
    expected: str
    heard: str
    said: str  # the reply's answer id, NONE, or "other" (a fallback, a cut reply)
    score: float | None
    edits: int  # word edits between asked and heard
    stages: dict[str, float | None]  # ms after the end of caller speech, and voice_to_voice
    v2v_caller_ms: float | None  # the same, from the caller's end of speech on the audio clock
    reply_s: float
    # monotonic s: the reply's text ready, its first audio, its last audio (synthesis done)
    tts_span: tuple[float, float, float] | None = None
    tts_alongside: int = 0  # other calls' replies being synthesized while this one's started
    last: bool = True  # False: a later turn of the same question (the question was split)
    reply_heard: str = ""  # the answer whisper hears in the reply audio
    reply_edits: int = 0  # word edits between that answer's reply and what whisper heard

    @property
    def v2v(self) -> float | None:
        return self.stages.get(V2V)

    @property
    def correct(self) -> bool:
        return self.said == self.expected


async def run_call(dep: Deployment, s: Script, tail_s: float = TAIL_S) -> tuple[CallReport, Caller]:
    clock = MonotonicClock()
    io = Caller(s.pcm, clock, tail_ms=round(tail_s * 1000))
    report = await Call(dep.graph, clock=clock).run(io)
    return report, io


def turns_of(call: int, s: Script, report: CallReport, io: Caller, answers: Answers) -> list[Turn]:
    said: dict[int, list[str]] = defaultdict(list)
    heard: dict[int, list[str]] = defaultdict(list)
    for turn_id, who, text in io.conversation:
        (heard if who == "caller" else said)[turn_id].append(text)
    out: list[Turn] = []
    for t in report.turns:
        stages: dict[str, float | None] = {n: t.since_speech_end_ms(Stage(n)) for n in STAGE_NAMES}
        stages[V2V] = t.voice_to_voice_ms
        pts = io.speech_end_pts.get(t.turn_id)
        q: Question | None = None
        caller_ms = None
        if pts is not None:
            k = bisect.bisect_right(s.starts, pts / 1e9) - 1
            q = s.questions[k] if k >= 0 else None
            out_ns = t.marks.get(Stage.FIRST_AUDIO_OUT)
            if out_ns is not None:
                caller_ms = (out_ns - io.started_ns - pts) / 1e6
        text = " ".join(heard[t.turn_id])
        out.append(
            Turn(
                call=call,
                turn=t.turn_id,
                voice=s.voice,
                asked=q.text if q else "",
                expected=q.answer if q else "",
                heard=text,
                said=answers.name(" ".join(said[t.turn_id])),
                score=io.scores.get(t.turn_id),
                edits=edit_distance(words(q.text), words(text)) if q else 0,
                stages=stages,
                v2v_caller_ms=caller_ms,
                reply_s=sum(len(p) for p in io.reply_audio[t.turn_id]) / 2 / io.out_sample_rate,
                tts_span=tts_span(t.marks, io.reply_end_ns.get(t.turn_id)),
            )
        )
    for earlier, later in itertools.pairwise(out):
        if earlier.asked and earlier.asked == later.asked:
            earlier.last = False
    return out


def tts_span(marks: dict[Stage, int], end_ns: int | None) -> tuple[float, float, float] | None:
    token, first = marks.get(Stage.FIRST_TOKEN), marks.get(Stage.FIRST_TTS_AUDIO)
    if token is None or first is None or end_ns is None:
        return None
    return token / 1e9, first / 1e9, end_ns / 1e9


def count_alongside(turns: Sequence[Turn]) -> None:
    """For each turn: how many other calls' replies were being synthesized (text ready, last
    audio not yet out) while its first piece was."""
    spans = [(t.call, t.tts_span) for t in turns if t.tts_span]
    for t in turns:
        if t.tts_span:
            start, first, _ = t.tts_span
            t.tts_alongside = sum(
                1 for call, (a, _, z) in spans if call != t.call and a < first and z > start
            )


async def check_reply_audio(
    turns: Sequence[Turn], ios: dict[int, Caller], answers: Answers
) -> None:
    """Transcribe each turn's reply audio with the process's whisper and name the answer it
    is closest to (after the calls: it takes the model while no call is running)."""
    from callweaver.resources.whisper import shared_model

    model = shared_model("tiny.en")
    for t in turns:
        io = ios[t.call]
        pcm = b"".join(io.reply_audio[t.turn])
        if not pcm:
            continue
        data = resample(pcm, io.out_sample_rate, RATE) if io.out_sample_rate != RATE else pcm
        audio = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        result = await model.transcribe(audio, language="en")
        t.reply_heard, t.reply_edits = answers.nearest(result.text)


async def cold_call(dep: Deployment, voices: Voices, answers: Answers) -> Json:
    """The process's first call: its start loads every model."""
    s = script(voices, VOICES[0], QUESTIONS[:1], LEAD_S, [0.0])
    started = time.perf_counter()
    async with LoopLag() as lag:
        report, io = await run_call(dep, s)
    turns = turns_of(0, s, report, io, answers)
    return {
        "seconds": time.perf_counter() - started,
        "loop_lag": lag.summary(),
        "turns": [asdict(t) for t in turns],
    }


async def one_at_a_time(dep: Deployment, voices: Voices, answers: Answers,
                        questions: Sequence[Question]) -> tuple[list[Turn], Json]:  # fmt: skip
    """One call per question, one after the other."""
    turns: list[Turn] = []
    ios: dict[int, Caller] = {}
    drops = 0
    scripts = [script(voices, VOICES[i % len(VOICES)], [q], LEAD_S, [0.0])
               for i, q in enumerate(questions)]  # fmt: skip
    decodes = whisper_decodes()
    cpu = Cpu()
    async with LoopLag() as lag:
        for i, (q, s) in enumerate(zip(questions, scripts, strict=True)):
            report, io = await run_call(dep, s)
            ios[i] = io
            drops += sum(st.dropped_overflow for st in report.nodes.values())
            found = turns_of(i, s, report, io, answers)
            turns += found
            v2v = ", ".join(f"{t.v2v:.0f}" if t.v2v is not None else "-" for t in found)
            log(f"  [{i + 1}/{len(questions)}] {s.voice}: {q.text!r} -> heard "
                f"{' | '.join(t.heard for t in found)!r}, answered "
                f"{', '.join(t.said for t in found)}; v2v {v2v} ms")  # fmt: skip
    info = {
        "loop_lag": lag.summary(),
        "cpu_cores": cpu.cores(),
        "whisper_decodes": whisper_decodes() - decodes,
        "audio_dropped": drops,
    }
    await check_reply_audio(turns, ios, answers)
    return turns, info


async def concurrent(dep: Deployment, voices: Voices, answers: Answers, n: int, per_call: int,
                     questions: Sequence[Question], reply_s: dict[str, float],
                     seed: int) -> tuple[list[Turn], Json]:  # fmt: skip
    """``n`` paced calls at once, each asking ``per_call`` questions and waiting for each
    reply to play; the calls start at random offsets within ``SPREAD_S``."""
    rng = random.Random(seed * 1000 + n)
    scripts = []
    for i in range(n):
        asked = [questions[(i * per_call + k) % len(questions)] for k in range(per_call)]
        waits = [reply_s.get(q.answer, 6.0) + WAIT_S for q in asked[:-1]] + [0.0]
        lead = LEAD_S + (rng.uniform(0, SPREAD_S) if n > 1 else 0.0)
        scripts.append(script(voices, VOICES[i % len(VOICES)], asked, lead, waits))
    decodes = whisper_decodes()
    cpu = Cpu()
    started = time.perf_counter()
    async with LoopLag() as lag:
        results = await asyncio.gather(*(run_call(dep, s) for s in scripts))
    turns: list[Turn] = []
    drops = flushed = 0
    for i, (s, (report, io)) in enumerate(zip(scripts, results, strict=True)):
        turns += turns_of(i, s, report, io, answers)
    count_alongside(turns)
    for report, io in results:
        drops += sum(st.dropped_overflow for st in report.nodes.values())
        flushed += io.flushed_samples > 0
    return turns, {
        "seconds": time.perf_counter() - started,
        "loop_lag": lag.summary(),
        "cpu_cores": cpu.cores(),
        "whisper_decodes": whisper_decodes() - decodes,
        "audio_dropped": drops,
        "calls_with_barge_in": flushed,
    }
