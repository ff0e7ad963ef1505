"""The ``cache`` node: the response cache on the transcript, before the reply node.

Its ``hit`` port skips the reply node: a caller's words that match a declared answer or a
reply learned earlier (by meaning, safely: :mod:`callweaver.services.matcher`) go out on
``hit`` as the reply's sentences, marked ``cacheable``, so that a ``tts`` node with an
``audio_cache`` plays them from the store without synthesis. The transcript still goes on
``out``, carrying the reply (``TranscriptFrame.answer``): the reply node adds the exchange to
its conversation and does not answer it. A miss goes on ``out`` unchanged::

    edges:
      - stt -> cache
      - cache -> bot          # misses, and every other frame
      - cache.hit -> tts      # the cached replies
      - bot -> tts

What it learns: the reply node logs each reply it completes (:mod:`callweaver.runtime.
replies`); for a turn the cache missed, a reply the node marks reusable (an ``llm`` node with
``cacheable: true``) is kept unless the guard finds personal data or a back-reference
(:mod:`callweaver.services.cache.guard`). Keys carry the deployment, language, flow state
(the call parameter ``state_parameter`` names) and the reply node's version (system prompt,
model), so a new prompt never serves old replies.

Wrong hits: when the caller's next words say the cached reply missed ("no, I asked about
Sunday"), the hit is reported (:meth:`ResponseCache.report_wrong`) and the turn goes to the
reply node. Prediction: after each answered turn, the replies most often heard next in this
deployment go to the ``tts`` node as a :class:`PrefetchFrame`, for their audio to be ready;
at the call's start, the declared answers' replies do (``preload``).
"""

from __future__ import annotations

import dataclasses
import time

from pydantic import Field

from callweaver.frames.base import Frame
from callweaver.frames.control import StartFrame
from callweaver.frames.text import PrefetchFrame, ReplyEndFrame, ReplyTextFrame, TranscriptFrame
from callweaver.runtime.latency import Stage
from callweaver.runtime.processor import Processor
from callweaver.runtime.replies import CompletedReply
from callweaver.runtime.zones import ZoneName, zone
from callweaver.services.answers import DeclaredAnswers
from callweaver.services.cache.entry import CacheEntry, EntrySource
from callweaver.services.cache.guard import is_correction
from callweaver.services.cache.response import (
    DeclaredAnswer,
    Hit,
    ResponseCache,
    shared_response_cache,
)
from callweaver.services.cache.store import CacheStoreParams
from callweaver.text.sentences import split_sentences

_KEEP_PENDING = 4  # missed turns remembered while their replies are being written


class CacheParams(DeclaredAnswers):
    """Parameters of the ``cache`` node."""

    store: CacheStoreParams = Field(
        default_factory=CacheStoreParams,
        description="where replies live: {type: memory} (this process) or {type: redis, url: "
        "...} (every worker); max_entries, max_audio_mb, ttl_s",
    )
    language: str = Field(
        "en", description="language of the declared answers, and of transcripts without one"
    )
    learn: bool = Field(
        True, description="keep the reply node's reusable replies to the turns it answered"
    )
    state_parameter: str | None = Field(
        None,
        description="the call parameter holding the conversation's flow state (a key part): "
        "the same words may need another reply at another step",
    )
    sync_s: float = Field(
        1.0, gt=0, le=60, description="how often other workers' new entries are read"
    )
    predict: int = Field(
        2, ge=0, le=10, description="likely next replies whose audio is prepared after a turn"
    )
    corrections: bool = Field(
        True, description="a caller saying the cached reply missed reports a wrong hit"
    )
    timezone: ZoneName = Field(
        "",
        description="IANA zone of the callers (Asia/Hong_Kong): a learned reply about today "
        '("are you open today") is kept until midnight there; default: the server\'s',
    )


class ResponseCacheNode(Processor):
    """See the module docstring."""

    Params = CacheParams
    ports = ("out", "hit")

    def __init__(self, params: CacheParams | None = None) -> None:
        super().__init__(params)
        self.p = params or CacheParams()
        self._zone = zone(self.p.timezone)
        self.cache: ResponseCache | None = None
        self._declared = ""  # the declared answers' version ("" : none)
        self._pending: dict[int, TranscriptFrame] = {}
        self._last_hit: tuple[str, str] | None = None  # (entry id, caller's words)
        self._previous: str | None = None  # the entry that answered the last turn

    async def start(self, frame: StartFrame) -> None:
        self.cache = shared_response_cache(self.p.store, sync_s=self.p.sync_s)
        if self.p.learn:
            self.ctx.replies.listen(self._learn)
        answers = self.p.all_answers
        if answers:
            self._declared = await self.cache.declare(
                [DeclaredAnswer(a.id, tuple(a.questions), a.reply) for a in answers],
                deployment=self.ctx.deployment,
                language=self.p.language,
                flow_state=self._state(),
            )
            # the tts node makes their audio ready before calls need it (a downstream inbox
            # holds its start frame before anything emitted here)
            replies = tuple(dict.fromkeys(a.reply for a in answers))
            await self.emit(self._prefetch(replies, self.p.language, preload=True), "hit")

    def _state(self) -> str:
        name = self.p.state_parameter
        return self.ctx.parameters.get(name, "") if name else ""

    async def process(self, frame: Frame) -> None:
        if (
            isinstance(frame, TranscriptFrame)
            and frame.final
            and frame.answer is None
            and frame.text.strip()
        ):
            await self._transcript(frame)
            return
        await self.emit(frame)

    async def _transcript(self, frame: TranscriptFrame) -> None:
        assert self.cache is not None
        ctx, turn = self.ctx, frame.turn_id
        language = frame.language or self.p.language
        last, self._last_hit = self._last_hit, None
        if last is not None and self.p.corrections and is_correction(frame.text, language):
            await self.cache.report_wrong(*last)
            await self.emit_metric("cache.wrong_report", 1.0, turn)
            self._previous = None
            await self.emit(frame)  # the reply node answers, knowing what was said
            return
        versions = [v for v in (self._declared, ctx.replies.version) if v]
        started = time.perf_counter()
        hit = await self.cache.lookup(
            frame.text,
            deployment=ctx.deployment,
            language=language,
            versions=versions,
            flow_state=self._state(),
        )
        lookup_ms = (time.perf_counter() - started) * 1000
        if hit is None:
            self._previous = None
            if self.p.learn:
                self._pending[turn] = frame
                for old in [t for t in self._pending if t <= turn - _KEEP_PENDING]:
                    del self._pending[old]
            await self.emit_metric("cache.miss", 1.0, turn)
            await self.emit_metric("cache.lookup_ms", lookup_ms, turn)
            await self.emit(frame)
            return
        await self._answer(frame, hit, language)
        await self.emit_metric("cache.lookup_ms", lookup_ms, turn)

    async def _answer(self, frame: TranscriptFrame, hit: Hit, language: str) -> None:
        assert self.cache is not None
        ctx, turn, entry = self.ctx, frame.turn_id, hit.entry
        ctx.mark(turn, Stage.FIRST_TOKEN)
        await self.emit(dataclasses.replace(frame, answer=entry.reply))
        for sentence in split_sentences(entry.reply):
            await self.emit(
                ReplyTextFrame(
                    call_id=ctx.call_id,
                    turn_id=turn,
                    ts_ns=ctx.now_ns(),
                    text=sentence,
                    sentence=True,
                    language=language,
                    cacheable=True,
                ),
                "hit",
            )
        await self.emit(ReplyEndFrame(call_id=ctx.call_id, turn_id=turn, ts_ns=ctx.now_ns()), "hit")
        await self.emit_metric("cache.hit", hit.score, turn)
        self._last_hit = (entry.id, frame.text)
        await self._followed(entry, language)

    async def _followed(self, entry: CacheEntry, language: str) -> None:
        """``entry`` answered this turn: count the transition, prepare what may come next."""
        assert self.cache is not None
        self.cache.observe(self._previous, entry.id)
        self._previous = entry.id
        likely = self.cache.predict(entry.id, self.p.predict)
        if likely:
            replies = tuple(dict.fromkeys(e.reply for e in likely))
            await self.emit(self._prefetch(replies, language, preload=False), "hit")

    async def _learn(self, done: CompletedReply) -> None:
        """The reply node completed ``done``: keep it if the cache missed that turn and the
        node marks it reusable. This runs in the reply node's task (see
        :mod:`callweaver.runtime.replies`), possibly after this node saw the end of the call:
        it emits nothing."""
        frame = self._pending.pop(done.turn, None)
        if frame is None or self.cache is None or not done.reusable or not done.reply.strip():
            return
        source = EntrySource.DECLARED if done.source == "declared" else EntrySource.LLM
        kept = await self.cache.learn(
            frame.text,
            done.reply,
            deployment=self.ctx.deployment,
            language=done.language or frame.language or self.p.language,
            version=done.version,
            flow_state=self._state(),
            source=source,
            zone=self._zone,
        )
        if isinstance(kept, CacheEntry):  # counted by the cache; nothing is emitted from
            self.cache.observe(self._previous, kept.id)  # another node's task
            self._previous = kept.id

    def _prefetch(self, texts: tuple[str, ...], language: str, *, preload: bool) -> PrefetchFrame:
        ctx = self.ctx
        return PrefetchFrame(
            call_id=ctx.call_id,
            turn_id=0,
            ts_ns=ctx.now_ns(),
            texts=texts,
            language=language,
            preload=preload,
        )
