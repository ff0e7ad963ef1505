"""The speech-to-text node: caller audio and turn edges in, a final transcript per turn out.

It keeps the caller's recent audio; at :class:`SpeechStartedFrame` the turn's utterance starts
(``preroll_ms`` before the first voiced sample, so that a soft first consonant is not cut);
at :class:`EndOfTurnFrame` the utterance (up to the last voiced sample plus ``tail_ms``) goes
to the provider and the transcript comes out as a final :class:`TranscriptFrame`, marked
``final_transcript`` in the turn's latency.

Streaming (``stream``, on): when the first provider can hear the caller as they speak
(:class:`~callweaver.services.stt.StreamingSTT`: Azure), the node opens a stream at
:class:`SpeechStartedFrame`, pushes it the preroll it kept and then each caller frame as it
arrives, and sends the provider's interim transcripts on as they come
(``TranscriptFrame(final=False)``, for a page to show; the reply nodes wait for the final
one). At :class:`EndOfTurnFrame` the stream is finished: the final transcript comes out as
above, sooner, since the service has already heard the utterance. If the stream fails, the
utterance the node kept goes to the next provider (:class:`~callweaver.services.failover.
FailoverSTT`). A pause that does not end the turn keeps the stream open; the next turn opens
a new one.

Speculative decoding (``speculative``, for providers that do not stream): at
:class:`SpeechPausedFrame`, the first silent window after speech, the node starts
transcribing the utterance as it stands, while the VAD is still waiting to decide whether
the pause ends the turn. If the turn ends at that same pause, the transcript is already
done or under way: it lands up to ``stop_ms`` sooner. If the caller goes on, the result is
dropped. It runs only when the model has a free slot, so that a
speculation never delays another call's real transcription.

Providers fail over (:class:`~callweaver.services.failover.FailoverSTT`). When every one has
failed, the caller hears ``fallback_reply`` (sent on as reply text) and the call goes on.
Caller audio is not passed on (``forward_audio`` to keep it); every other frame is. A
:class:`LanguageFrame` (sent upstream by a ``language`` node) sets the language the next turns
are heard in; with ``follow_language: false`` the providers go on detecting it themselves
(a multilingual whisper with no ``language``), which lets a caller who starts in another
language than the line's default be heard in it, at some accuracy on short turns.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

from pydantic import BaseModel, ConfigDict, Field

from callweaver.errors import ProviderError
from callweaver.frames.audio import InputAudioFrame
from callweaver.frames.base import Frame
from callweaver.frames.control import InterruptFrame, StartFrame
from callweaver.frames.speech import (
    EndOfTurnFrame,
    SpeechPausedFrame,
    SpeechStartedFrame,
    SpeechStoppedFrame,
)
from callweaver.frames.text import LanguageFrame, ReplyEndFrame, ReplyTextFrame, TranscriptFrame
from callweaver.processors.switches import report_switches
from callweaver.runtime.latency import Stage
from callweaver.runtime.processor import Processor
from callweaver.services.catalog import STTProviders
from callweaver.services.failover import FailoverSTT, FailoverSTTStream, Switch
from callweaver.services.locales import LocalizedText
from callweaver.services.stt import STT, Transcript, Utterance, streaming
from callweaver.text.languages import pick

_MS = 1_000_000
_DETECTION_LAG_MS = 1000  # how late a VAD may announce a start, at most


class STTParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: STTProviders = Field(
        ["whisper"],
        validate_default=True,
        description="STT providers in failover order: a type name or {type: ..., params}",
    )
    language: str = Field("", description="the call's language (BCP-47); empty: provider's")
    follow_language: bool = Field(
        True,
        description="hear the next turns in the language a language node decides; false: "
        "keep `language` (empty: the provider detects each turn's)",
    )
    timeout_s: float = Field(4.0, gt=0, description="per provider, for a whole transcript")
    stream: bool = Field(
        True,
        description="stream the caller's audio to the first provider while they speak, if it "
        "can: interim transcripts, and the final one sooner",
    )
    speculative: bool = Field(True, description="start decoding at the first pause")
    preroll_ms: int = Field(150, ge=0, description="audio kept from before speech start")
    tail_ms: int = Field(100, ge=0, description="audio kept after the last voiced sample")
    max_utterance_s: float = Field(30.0, gt=0, description="longer turns keep their end")
    forward_audio: bool = Field(False, description="pass caller audio on downstream")
    fallback_reply: LocalizedText = Field(
        "Sorry, I couldn't hear that. Could you say it again?",
        description="said when every provider failed; or one per language: {en: ..., es: ...}",
    )


class _Speculation:
    """A transcription started at a pause: which pause, and the work."""

    __slots__ = ("pts_ns", "task")

    def __init__(self, pts_ns: int, task: asyncio.Task[Transcript]) -> None:
        self.pts_ns = pts_ns
        self.task = task


class SpeechToText(Processor):
    """See the module docstring."""

    Params = STTParams
    caller_side = True  # a barge-in never cancels the transcription of the caller's last turn

    def __init__(self, params: STTParams | None = None) -> None:
        super().__init__(params)
        self.p = params or STTParams()
        self.stt: FailoverSTT | None = None
        self._recent: deque[InputAudioFrame] = deque()
        self._turn: list[InputAudioFrame] | None = None
        self._speech_end_pts: int | None = None
        self._speculation: _Speculation | None = None
        self._streaming = False  # the first provider streams, and stream is on
        self._stream: FailoverSTTStream | None = None
        self._stream_pending: int | None = None  # a turn with no audio kept yet: its id
        self._partials: asyncio.Task[None] | None = None
        self._switches: list[Switch] = []
        self.speculations_used = 0
        self.language = self.p.language  # the call's: a language node upstream may change it
        self.call_language = ""  # the language node's, when there is one
        self.speculations_dropped = 0

    def providers(self) -> list[STT]:
        """The providers in failover order, built from the params."""
        return [spec.build() for spec in self.p.providers]

    async def start(self, frame: StartFrame) -> None:
        # building a provider may load a model: off the event loop, other calls keep going
        providers = await asyncio.to_thread(self.providers)
        self.stt = FailoverSTT(
            providers, first_timeout_s=self.p.timeout_s, on_switch=self._switches.append
        )
        self._streaming = self.p.stream and streaming(providers[0]) is not None
        await self.stt.warm()  # cloud providers connect now, not on the first turn

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, LanguageFrame):  # from the language node: the next turns' language
            self.call_language = frame.locale  # what its fallback is said in, either way
            if self.p.follow_language:
                self.language = frame.locale
            return
        if isinstance(frame, InputAudioFrame):
            self._keep(frame)
            if self._stream is not None:
                if frame.sample_rate == self._stream.sample_rate:
                    self._stream.push(frame.pcm)
            elif self._stream_pending is not None:
                await self._open_stream(self._stream_pending)
            if self.p.forward_audio:
                await self.emit(frame)
            return
        if isinstance(frame, SpeechStartedFrame):
            start = frame.pts_ns - self.p.preroll_ms * _MS
            self._turn = [f for f in self._recent if f.pts_ns + f.duration_ns > start]
            self._speech_end_pts = None
            self._drop_speculation()
            await self._drop_stream()
            if self._streaming:
                self._stream_pending = frame.turn_id
                if self._turn:
                    await self._open_stream(frame.turn_id)
        elif isinstance(frame, SpeechPausedFrame):
            self._speculate(frame)
        elif isinstance(frame, SpeechStoppedFrame):
            self._speech_end_pts = frame.pts_ns
        elif isinstance(frame, EndOfTurnFrame):
            await self.emit(frame)
            await self._final(frame)
            return
        await self.emit(frame)

    def _keep(self, frame: InputAudioFrame) -> None:
        recent = self._recent
        recent.append(frame)
        keep_ns = (self.p.preroll_ms + _DETECTION_LAG_MS) * _MS
        while recent and frame.pts_ns - recent[0].pts_ns > keep_ns:
            recent.popleft()
        turn = self._turn
        if turn is not None:
            turn.append(frame)
            limit = self.p.max_utterance_s * 1e9
            while turn and frame.pts_ns - turn[0].pts_ns > limit:
                turn.pop(0)

    def _utterance(self, end_pts: int | None) -> Utterance | None:
        turn = self._turn
        if not turn:
            return None
        rate = turn[-1].sample_rate
        stop = None if end_pts is None else end_pts + self.p.tail_ms * _MS
        pcm = b"".join(
            f.pcm for f in turn if f.sample_rate == rate and (stop is None or f.pts_ns < stop)
        )
        return Utterance(pcm, rate, self.language)

    async def _open_stream(self, turn_id: int) -> None:
        """Stream the turn from here: the audio kept so far, then each frame as it comes."""
        turn = self._turn
        if not turn or self.stt is None:
            return
        self._stream_pending = None
        rate = turn[-1].sample_rate
        stream = self.stt.open(self.language, rate)
        if not stream.live:  # the provider to try first now does not stream
            await stream.cancel()
            return
        self._stream = stream
        for f in turn:
            if f.sample_rate == rate:
                stream.push(f.pcm)
        self._partials = asyncio.ensure_future(self._send_partials(stream, turn_id))

    async def _send_partials(self, stream: FailoverSTTStream, turn_id: int) -> None:
        ctx = self.ctx
        last = ""
        async for partial in stream.partials():
            if partial.text and partial.text != last:
                last = partial.text
                await self.emit(
                    TranscriptFrame(
                        call_id=ctx.call_id,
                        turn_id=turn_id,
                        ts_ns=ctx.now_ns(),
                        text=partial.text,
                        final=False,
                        language=partial.language or self.language,
                    )
                )

    async def _drop_stream(self) -> None:
        """Abandon the turn's stream, if any, and its interim transcripts."""
        self._stream_pending = None
        stream, self._stream = self._stream, None
        partials, self._partials = self._partials, None
        if partials is not None:
            partials.cancel()
            await asyncio.wait([partials])
        if stream is not None:
            await stream.cancel()

    async def _finish(self, stream: FailoverSTTStream, end: int | None) -> Transcript:
        """The streamed turn's final transcript, after its last interim one."""
        utterance = self._utterance(end)
        self._turn = None
        partials, self._partials = self._partials, None
        try:
            result = await stream.finish(utterance)
        except BaseException:
            if partials is not None:
                partials.cancel()
                await asyncio.wait([partials])
            raise
        if partials is not None:
            await partials  # ends with the stream
        return result

    def _speculate(self, frame: SpeechPausedFrame) -> None:
        if not self.p.speculative or self.stt is None or self._turn is None:
            return
        if self._stream is not None:
            return  # the provider hears the turn as it goes: nothing to start early
        if any(getattr(p, "busy", False) for p in self.stt.providers):
            return  # never take a slot another call's final transcript may need
        self._drop_speculation()
        # the tail after the pause has not arrived yet: decode what there is
        utterance = self._utterance(None)
        if utterance is None:
            return
        task = asyncio.ensure_future(self.stt.transcribe(utterance))
        self._speculation = _Speculation(frame.pts_ns, task)

    def _drop_speculation(self) -> None:
        spec, self._speculation = self._speculation, None
        if spec is not None:
            self.speculations_dropped += 1
            spec.task.cancel()

    async def _final(self, frame: EndOfTurnFrame) -> None:
        ctx = self.ctx
        turn_id = frame.turn_id
        spec, self._speculation = self._speculation, None
        stream, self._stream = self._stream, None
        self._stream_pending = None
        end = self._speech_end_pts
        try:
            if stream is not None:
                result = await self._finish(stream, end)
            elif spec is not None and end is not None and spec.pts_ns == end:
                self.speculations_used += 1
                result = await spec.task
            else:
                if spec is not None:
                    self.speculations_dropped += 1
                    spec.task.cancel()
                utterance = self._utterance(end)
                self._turn = None
                if utterance is None:
                    return
                assert self.stt is not None
                result = await self.stt.transcribe(utterance)
        except ProviderError as exc:
            ctx.record_error(self.name, exc, "fallback")
            await report_switches(self, self._switches, turn_id)
            await self._fallback(turn_id)
            return
        self._turn = None
        await report_switches(self, self._switches, turn_id)
        now = ctx.now_ns()
        ctx.mark(turn_id, Stage.FINAL_TRANSCRIPT, now)
        if not result.text:
            await self.emit_metric("stt_empty", 1.0, turn_id)
            return
        await self.emit(
            TranscriptFrame(
                call_id=ctx.call_id,
                turn_id=turn_id,
                ts_ns=now,
                text=result.text,
                final=True,
                language=result.language or self.language,
                confidence=result.confidence,
            )
        )

    async def _fallback(self, turn_id: int) -> None:
        ctx = self.ctx
        await self.emit(
            ReplyTextFrame(
                call_id=ctx.call_id,
                turn_id=turn_id,
                ts_ns=ctx.now_ns(),
                text=pick(self.p.fallback_reply, self.call_language or self.language),
                sentence=True,
                language=self.call_language or self.language,
            )
        )
        await self.emit(ReplyEndFrame(call_id=ctx.call_id, turn_id=turn_id, ts_ns=ctx.now_ns()))

    async def on_interrupt(self, frame: InterruptFrame) -> None:
        """Barge-in cancels reply work, not the caller's turn: keep the utterance."""

    async def close(self) -> None:
        self._drop_speculation()
        await self._drop_stream()
        if self.stt is not None:
            with contextlib.suppress(Exception):
                await self.stt.aclose()
