"""Turn-taking on top of voice activity: the part every VAD shares.

A VAD processor forwards the caller's audio untouched and classifies it into windows, voiced
or not (:meth:`VoiceActivity.classify`). From those decisions this module runs the turn logic:

- speech for ``start_ms`` opens a turn: a new turn id, :class:`SpeechStartedFrame` stamped with
  the audio-clock time of the first voiced sample of the run;
- speech for ``interrupt_min_ms`` (counted from that first sample) interrupts the bot's reply,
  when ``barge_in`` is on: a cough or a click shorter than that never cuts the bot off;
- the first silent window after speech is a pause: :class:`SpeechPausedFrame`, so that later
  stages may start work early (speculative transcription);
- silence for ``stop_ms`` after the last voiced sample closes the turn (the endpoint):
  :class:`SpeechStoppedFrame` and :class:`EndOfTurnFrame`, with the latency marks
  ``speech_end`` (arrival of the last voiced sample) and ``endpoint`` (now).

Smart end of turn (``end_of_turn: smart_turn``). A pause of ``stop_ms`` is only a *candidate*
endpoint: the smart-turn model (:mod:`callweaver.resources.smart_turn`) hears the caller's
speech with the pause and says whether they have finished. Finished: the turn ends now, as
above, ``stop_ms`` plus the model's time after the speech. Not finished: the turn stays open;
if the caller goes on, their speech belongs to the same turn and its next pause of ``stop_ms``
is judged afresh; if they stay silent, the turn ends after ``max_stop_ms`` of silence,
whatever the model said.

Choices, measured by ``python -m bench.turn_endpoint``:

- the model is asked once per pause, not again as the pause grows: with more trailing silence
  it leans to "finished" whatever was said, so asking again cuts more callers off
  mid-sentence; it would shorten the wait at true ends the model first misjudged, but cutting
  a caller off costs more (they repeat themselves, or barge in on the reply) than waiting;
- it hears from half a second before the turn's first voiced sample (its last 8 s at most),
  and from the previous turn's start instead when this turn began less than ``max_stop_ms``
  after that one ended: a caller cut off mid-sentence who goes on is heard as one sentence.
  Hearing only the new turn (as pipecat does) judges "it was the worst of times" alone,
  which sounds finished: on a long sentence read aloud it then cut at every pause, no better
  than silence alone.

Each decision is reported as two :class:`MetricsFrame` (``smart_turn_ms``: its wall time,
queueing on the shared model included; ``smart_turn_probability``) and kept in
:attr:`VoiceActivity.decisions`.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from callweaver.audio.resample import Resampler
from callweaver.frames.audio import InputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.speech import (
    EndOfTurnFrame,
    SpeechPausedFrame,
    SpeechStartedFrame,
    SpeechStoppedFrame,
)
from callweaver.resources import smart_turn
from callweaver.runtime.latency import Stage
from callweaver.runtime.processor import Processor

_MS = 1_000_000
_PREROLL_NS = 500 * _MS  # audio the model hears before the turn's first voiced sample


class TurnParams(BaseModel):
    """The turn-taking params every VAD node takes."""

    model_config = ConfigDict(extra="forbid")

    start_ms: int = Field(64, ge=0, description="speech needed to open a turn")
    stop_ms: int = Field(200, ge=20, description="silence that ends a turn (the endpoint)")
    barge_in: bool = Field(True, description="caller speech interrupts the bot's reply")
    interrupt_min_ms: int = Field(
        200, ge=0, description="speech needed before it interrupts the bot (guards coughs)"
    )
    end_of_turn: Literal["silence", "smart_turn"] = Field(
        "silence",
        description="silence: a pause of stop_ms ends the turn; smart_turn: only if the "
        "smart-turn model hears a finished turn (needs pip install 'callweaver[turn]')",
    )
    max_stop_ms: int = Field(
        3000, ge=20, description="with smart_turn: silence that ends a turn whatever the model says"
    )
    smart_turn_threshold: float = Field(
        0.5, gt=0, lt=1, description="with smart_turn: probability of a finished turn that ends it"
    )

    @model_validator(mode="after")
    def _consistent(self) -> TurnParams:
        if self.interrupt_min_ms < self.start_ms:
            raise ValueError("interrupt_min_ms must be at least start_ms")
        if self.end_of_turn == "smart_turn":
            if self.max_stop_ms < self.stop_ms:
                raise ValueError("max_stop_ms must be at least stop_ms")
            try:
                smart_turn.default_model_path()
            except smart_turn.SmartTurnUnavailable as exc:
                raise ValueError(str(exc)) from None
        return self


@dataclass(frozen=True, slots=True)
class Window:
    """One classified stretch of caller audio. Times are audio-clock ns; ``end_arrival_ns`` is
    when its last sample arrived, on the call's monotonic clock."""

    voiced: bool
    start_pts: int
    end_pts: int
    end_arrival_ns: int
    span: Callable[[], tuple[int, int]] | None = None
    """Where the speech of a voiced window starts and ends (audio clock), when the VAD can
    place it more finely than the window. Computed on demand: the turn logic needs it only for
    the first and the last voiced window of a turn."""

    @property
    def onset_pts(self) -> int:
        return self.start_pts if self.span is None else self.span()[0]

    @property
    def offset_pts(self) -> int:
        return self.end_pts if self.span is None else self.span()[1]

    @property
    def offset_arrival_ns(self) -> int:
        """When the last voiced sample arrived (the window's end arrived ``end_arrival_ns``)."""
        return self.end_arrival_ns - (self.end_pts - self.offset_pts)


@dataclass(frozen=True, slots=True)
class TurnDecision:
    """One answer of the smart-turn model: at ``silence_ms`` into a pause of turn ``turn_id``
    that started at ``pause_pts`` (audio clock: the end of the last voiced window), having
    heard ``heard_ms`` of audio up to that moment."""

    turn_id: int
    pause_pts: int
    probability: float
    complete: bool
    silence_ms: float
    heard_ms: float
    wall_ms: float


class _RecentAudio:
    """The caller's last 8 s at the smart-turn model's rate, and the audio-clock time of their
    end. Memory is bounded: 256 KB per call, only when smart_turn is on."""

    __slots__ = ("_chunks", "_resampler", "_size", "end_pts")

    def __init__(self, sample_rate: int) -> None:
        self._resampler = Resampler(sample_rate, smart_turn.SAMPLE_RATE)
        self._chunks: deque[npt.NDArray[np.int16]] = deque()
        self._size = 0
        self.end_pts = 0

    @property
    def sample_rate(self) -> int:
        return self._resampler.in_rate

    def append(self, frame: InputAudioFrame) -> None:
        chunk = np.frombuffer(self._resampler.process(frame.pcm), dtype="<i2")
        if chunk.size:
            self._chunks.append(chunk)
            self._size += chunk.size
            while self._size - self._chunks[0].size >= smart_turn.WINDOW_SAMPLES:
                self._size -= self._chunks.popleft().size
        # The resampler holds back its look-ahead (about 2 ms), which is not flushed: at a
        # decision it is silence, and flushing would restart the stream mid-call.
        delay_ns = round(self._resampler.delay_s * 1e9)
        self.end_pts = frame.pts_ns + frame.duration_ns - delay_ns

    def since(self, pts_ns: int) -> npt.NDArray[np.float32]:
        """The audio from ``pts_ns`` (audio clock) to the end, 8 s at most, as floats."""
        wanted = (self.end_pts - pts_ns) * smart_turn.SAMPLE_RATE // 1_000_000_000
        n = max(0, min(self._size, wanted))
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        whole = np.concatenate(self._chunks)
        return whole[whole.size - n :].astype(np.float32) / 32768.0


class VoiceActivity(Processor):
    """Base of VAD processors: forwards audio, runs turn-taking on :meth:`classify`'s windows."""

    def __init__(self, params: TurnParams) -> None:
        super().__init__(params)
        self.turn_params = params
        self.speaking = False
        self._run_start: int | None = None
        self._silence_ns = 0
        self._speech_end: int | None = None  # where the last voiced window's speech ended
        self._last_voiced: Window | None = None
        self._interrupted = False
        self._recent: _RecentAudio | None = None
        self._asked = False  # the model has judged the current pause
        self._heard_from = 0  # audio-clock start of what the model hears
        self._last_end_pts: int | None = None  # end of the last ended turn's speech
        self.decisions: list[TurnDecision] = []
        """Every smart-turn decision of this call, in order."""

    async def classify(self, frame: InputAudioFrame) -> list[Window]:
        """The windows of caller audio this frame completes (possibly none)."""
        raise NotImplementedError

    async def process(self, frame: Frame) -> None:
        await self.emit(frame)
        if isinstance(frame, InputAudioFrame):
            if self.turn_params.end_of_turn == "smart_turn":
                self._keep(frame)
            for window in await self.classify(frame):
                await self._decide(window)

    def _keep(self, frame: InputAudioFrame) -> None:
        recent = self._recent
        if recent is None or recent.sample_rate != frame.sample_rate:
            smart_turn.shared_model()  # load it with the call's first audio, not at a pause
            recent = self._recent = _RecentAudio(frame.sample_rate)
        recent.append(frame)

    async def _decide(self, w: Window) -> None:
        p = self.turn_params
        ctx = self.ctx
        if w.voiced:
            self._last_voiced = w
            self._silence_ns = 0
            self._speech_end = None
            self._asked = False
            if self._run_start is None:
                self._run_start = w.onset_pts
        elif self.speaking:
            # silence counts from the sample where the speech ended, not from the window's end
            if self._speech_end is None:
                assert self._last_voiced is not None
                self._speech_end = self._last_voiced.offset_pts
                await self.emit(
                    SpeechPausedFrame(
                        call_id=ctx.call_id,
                        turn_id=ctx.turn_id,
                        ts_ns=ctx.now_ns(),
                        pts_ns=self._speech_end,
                    )
                )
            self._silence_ns = w.end_pts - self._speech_end
        else:
            self._run_start = None
        run = self._run_start
        if not self.speaking and run is not None and w.end_pts - run >= p.start_ms * _MS:
            self.speaking, self._interrupted = True, False
            turn = ctx.begin_turn()
            ended = self._last_end_pts
            if ended is None or run - ended >= p.max_stop_ms * _MS:
                self._heard_from = run
            await self.emit(
                SpeechStartedFrame(
                    call_id=ctx.call_id, turn_id=turn, ts_ns=ctx.now_ns(), pts_ns=run
                )
            )
        if not self.speaking:
            return
        last = self._last_voiced
        assert last is not None and run is not None
        if p.barge_in and not self._interrupted and last.end_pts - run >= p.interrupt_min_ms * 1e6:
            self._interrupted = True
            ctx.interrupt(ctx.turn_id)
        if self._silence_ns >= p.stop_ms * _MS and await self._turn_is_over(last):
            self.speaking, self._run_start, self._silence_ns = False, None, 0
            self._asked, self._last_end_pts = False, last.offset_pts
            now, turn = ctx.now_ns(), ctx.turn_id
            ctx.mark(turn, Stage.SPEECH_END, last.offset_arrival_ns)
            ctx.mark(turn, Stage.ENDPOINT, now)
            await self.emit(
                SpeechStoppedFrame(
                    call_id=ctx.call_id,
                    turn_id=turn,
                    ts_ns=now,
                    pts_ns=last.offset_pts,
                    speech_end_ns=last.offset_arrival_ns,
                )
            )
            await self.emit(
                EndOfTurnFrame(
                    call_id=ctx.call_id,
                    turn_id=turn,
                    ts_ns=now,
                    speech_end_ns=last.offset_arrival_ns,
                )
            )

    async def _turn_is_over(self, last: Window) -> bool:
        """At a pause of at least ``stop_ms``: does it end the turn?"""
        p = self.turn_params
        if p.end_of_turn == "silence" or self._silence_ns >= p.max_stop_ms * _MS:
            return True
        if self._asked or self._recent is None:
            return False
        self._asked = True
        audio = self._recent.since(self._heard_from - _PREROLL_NS)
        started = time.perf_counter()  # compute time, not call time: the real clock
        probability = await smart_turn.shared_model().probability(audio)
        wall_ms = (time.perf_counter() - started) * 1000
        complete = probability >= p.smart_turn_threshold
        ctx = self.ctx
        self.decisions.append(
            TurnDecision(
                ctx.turn_id,
                last.end_pts,
                probability,
                complete,
                self._silence_ns / _MS,
                audio.size * 1000 / smart_turn.SAMPLE_RATE,
                wall_ms,
            )
        )
        for name, value in (("smart_turn_ms", wall_ms), ("smart_turn_probability", probability)):
            await self.emit_metric(name, value)
        return complete
