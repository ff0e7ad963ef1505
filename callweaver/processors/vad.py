"""Turn-taking on top of voice activity: the part every VAD shares.

A VAD processor forwards the caller's audio untouched and classifies it into windows, voiced
or not (:meth:`VoiceActivity.classify`). From those decisions this module runs the turn logic:

- speech for ``start_ms`` opens a turn: a new turn id, :class:`SpeechStartedFrame` stamped with
  the audio-clock time of the first voiced sample of the run;
- speech for ``interrupt_min_ms`` (counted from that first sample) interrupts the bot's reply,
  when ``barge_in`` is on: a cough or a click shorter than that never cuts the bot off;
- silence for ``stop_ms`` after the last voiced sample closes the turn (the endpoint):
  :class:`SpeechStoppedFrame` and :class:`EndOfTurnFrame`, with the latency marks
  ``speech_end`` (arrival of the last voiced sample) and ``endpoint`` (now).
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

from callweaver.frames.audio import InputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.speech import EndOfTurnFrame, SpeechStartedFrame, SpeechStoppedFrame
from callweaver.runtime.latency import Stage
from callweaver.runtime.processor import Processor


class TurnParams(BaseModel):
    """The turn-taking params every VAD node takes."""

    model_config = ConfigDict(extra="forbid")

    start_ms: int = Field(64, ge=0, description="speech needed to open a turn")
    stop_ms: int = Field(200, ge=20, description="silence that ends a turn (the endpoint)")
    barge_in: bool = Field(True, description="caller speech interrupts the bot's reply")
    interrupt_min_ms: int = Field(
        200, ge=0, description="speech needed before it interrupts the bot (guards coughs)"
    )

    @model_validator(mode="after")
    def _interrupt_after_start(self) -> TurnParams:
        if self.interrupt_min_ms < self.start_ms:
            raise ValueError("interrupt_min_ms must be at least start_ms")
        return self


@dataclass(frozen=True, slots=True)
class Window:
    """One classified stretch of caller audio. Times are audio-clock ns; ``end_arrival_ns`` is
    when its last sample arrived, on the call's monotonic clock."""

    voiced: bool
    start_pts: int
    end_pts: int
    end_arrival_ns: int


class VoiceActivity(Processor):
    """Base of VAD processors: forwards audio, runs turn-taking on :meth:`classify`'s windows."""

    def __init__(self, params: TurnParams) -> None:
        super().__init__(params)
        self.turn_params = params
        self.speaking = False
        self._run_start: int | None = None
        self._silence_ns = 0
        self._last_voiced: Window | None = None
        self._interrupted = False

    async def classify(self, frame: InputAudioFrame) -> list[Window]:
        """The windows of caller audio this frame completes (possibly none)."""
        raise NotImplementedError

    async def process(self, frame: Frame) -> None:
        await self.emit(frame)
        if isinstance(frame, InputAudioFrame):
            for window in await self.classify(frame):
                await self._decide(window)

    async def _decide(self, w: Window) -> None:
        p = self.turn_params
        ctx = self.ctx
        if w.voiced:
            self._last_voiced = w
            self._silence_ns = 0
            if self._run_start is None:
                self._run_start = w.start_pts
        elif self.speaking:
            self._silence_ns += w.end_pts - w.start_pts
        else:
            self._run_start = None
        run = self._run_start
        if not self.speaking and run is not None and w.end_pts - run >= p.start_ms * 1_000_000:
            self.speaking, self._interrupted = True, False
            turn = ctx.begin_turn()
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
        if self._silence_ns >= p.stop_ms * 1_000_000:
            self.speaking, self._run_start, self._silence_ns = False, None, 0
            now, turn = ctx.now_ns(), ctx.turn_id
            ctx.mark(turn, Stage.SPEECH_END, last.end_arrival_ns)
            ctx.mark(turn, Stage.ENDPOINT, now)
            await self.emit(
                SpeechStoppedFrame(
                    call_id=ctx.call_id,
                    turn_id=turn,
                    ts_ns=now,
                    pts_ns=last.end_pts,
                    speech_end_ns=last.end_arrival_ns,
                )
            )
            await self.emit(
                EndOfTurnFrame(
                    call_id=ctx.call_id, turn_id=turn, ts_ns=now, speech_end_ns=last.end_arrival_ns
                )
            )
