"""Reply nodes: a final transcript in, the bot's reply out as sentences for speech.

Both node types hold an :class:`~callweaver.services.llm.LLM` and keep the call's
conversation:

- ``llm``: any OpenAI-compatible chat model, with providers in failover order
  (:class:`~callweaver.services.failover.FailoverLLM`: a timeout on the first token, an
  error, or an empty reply moves the turn to the next one), a system prompt and a bounded
  history;
- ``answers``: the offline default, the deployment's declared answers matched by meaning
  (:class:`~callweaver.services.answers.AnswersLLM`).

The streamed pieces are cut into sentences (:class:`~callweaver.text.sentences.
SentenceSplitter`) and each goes out as a :class:`ReplyTextFrame` as soon as it is complete,
so that speech starts with the first sentence; :class:`ReplyEndFrame` closes the reply. The
first piece marks ``first_token`` in the turn's latency. With ``stream_tokens`` (``llm``) the
pieces go out as they come instead (``ReplyTextFrame(sentence=False)``), for a ``tts`` node
with ``stream_text`` that feeds them to its provider as they are written; that node passes
the text on as sentences, so transports still show each sentence once. Turn it on only with
a ``tts`` node after this one (a ConversationRelay call, which runs no ``tts`` node, would be
sent the tokens).

When the model fails (every provider, or one mid-reply), the caller hears ``fallback_reply``
and the call goes on. Barge-in cancels the reply in flight; the conversation keeps what the
caller heard of it, cut at the word where the audio stopped (the call's spoken log,
:mod:`callweaver.runtime.spoken`), ending in "...". Every frame passes through, transcripts
included (a transport may show them), and so does reply text from an earlier stage's fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import zoneinfo
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from callweaver.errors import ProviderError
from callweaver.frames.base import Frame
from callweaver.frames.control import InterruptFrame, StartFrame
from callweaver.frames.text import PrefetchFrame, ReplyEndFrame, ReplyTextFrame, TranscriptFrame
from callweaver.processors.switches import report_switches
from callweaver.runtime.latency import Stage
from callweaver.runtime.processor import Processor
from callweaver.runtime.replies import CompletedReply
from callweaver.runtime.zones import ZoneName, zone
from callweaver.services.answers import AnswersLLM, AnswersParams
from callweaver.services.cache.guard import personal
from callweaver.services.cache.keys import prompt_version
from callweaver.services.catalog import LLMProviders
from callweaver.services.failover import FailoverLLM, Switch
from callweaver.services.llm import LLM, Message
from callweaver.services.locales import LocalizedText, default_table
from callweaver.text import say
from callweaver.text.chinese import to_script
from callweaver.text.languages import pick
from callweaver.text.sentences import SentenceSplitter

_FALLBACK = "Sorry, I'm having trouble answering right now. Please try again in a moment."


class Reply(Processor):
    """The conversation and the sentence streaming both node types share."""

    replies_cacheable = False  # the same words for every caller: their audio may be kept
    source = "llm"  # where replies come from, for a cache that keeps them

    def __init__(
        self, params: Any, *, system_prompt: str, fallback_reply: str | dict[str, str]
    ) -> None:
        super().__init__(params)
        self.llm: LLM | None = None
        self.system_prompt = system_prompt
        self.fallback_reply = fallback_reply
        self.history: list[Message] = []
        self.max_history = 20
        self.stream_tokens = False
        self._replied: tuple[int, int] | None = None  # (turn, its history index)
        self._stale_before = 0  # replies to older turns cannot be played (a barge-in)
        self._switches: list[Switch] = []
        self.today: Literal["date_time", "date", "off"] = "off"
        self.timezone: zoneinfo.ZoneInfo | None = None

    def build(self) -> LLM:
        raise NotImplementedError

    def version(self) -> str:
        """What the replies depend on (a response cache keys what it learns with it)."""
        return prompt_version(type(self).__name__, self.system_prompt)

    def reusable(self) -> bool:
        """May the reply just given be given to another caller asking the same?"""
        return self.replies_cacheable

    def attached(self) -> None:
        self.ctx.replies.version = self.version()  # a cache's lookups need it from the start

    async def start(self, frame: StartFrame) -> None:
        # building may load a model or embed the answers: off the event loop
        self.llm = await asyncio.to_thread(self.build)
        warm = getattr(self.llm, "warm", None)
        if warm is not None:
            await warm()  # the endpoint's connection opens now, not on the first turn

    async def process(self, frame: Frame) -> None:
        await self.emit(frame)  # transcripts too: a transport may show them
        if isinstance(frame, TranscriptFrame) and frame.final and frame.text.strip():
            if frame.answer is not None:  # answered upstream (a cache hit): remembered only
                self._keep_what_was_heard()
                self.history.append(Message("user", frame.text))
                self.history.append(Message("assistant", frame.answer))
                self._replied = (frame.turn_id, len(self.history) - 1)
                return
            if frame.turn_id < self._stale_before:
                # the caller spoke again before this turn's transcript came: its reply could
                # not be played; the words join the conversation, the newer turn is answered
                self._keep_what_was_heard()
                self.history.append(Message("user", frame.text))
                return
            await self._reply(frame)

    async def on_interrupt(self, frame: InterruptFrame) -> None:
        self._stale_before = max(self._stale_before, frame.turn_id)

    def messages(self, language: str = "") -> list[Message]:
        """The request: the system prompt, then, for a locale the table has, how it says
        dates and times (``today``) and its line (the language and its form of address), then
        the history."""
        prompt = self.system_prompt
        locale = default_table().get(language) if language and prompt else None
        if locale is not None:
            lines = [prompt, self._today(locale.code, locale.clock), locale.prompt]
            prompt = "\n\n".join(line for line in lines if line)
        head = [Message("system", prompt)] if prompt else []
        return head + self.history[-self.max_history :]

    def _today(self, locale: str, clock: str) -> str:
        """The date line of ``today`` (see :class:`LLMParams`) in ``locale``'s words."""
        if self.today == "off":
            return ""
        now = datetime.datetime.now(self.timezone) if self.timezone else datetime.datetime.now()
        try:
            if self.today == "date_time":
                return say.prompt_line(locale, now, clock)
            example = say.say_time(datetime.time(15, 30), locale, clock)
            hours = "12" if clock == "12h" else "24"
            return (
                f"Today is {say.say_date(now.date(), locale)} (say dates like that); say times "
                f"the {hours}-hour way, like {example}."
            )
        except ValueError:  # a locale CLDR does not know (one a config added): no line
            return ""

    async def _reply(self, transcript: TranscriptFrame) -> None:
        assert self.llm is not None
        ctx = self.ctx
        turn = transcript.turn_id
        language = transcript.language
        self._keep_what_was_heard()
        self.history.append(Message("user", transcript.text))
        splitter = SentenceSplitter()
        said: list[str] = []
        failed = False
        try:
            async for piece in self.llm.stream(self.messages(language)):
                if not said:
                    ctx.mark(turn, Stage.FIRST_TOKEN)
                said.append(piece)
                if self.stream_tokens:
                    await self._say(turn, piece, language, sentence=False)
                    continue
                for sentence in splitter.push(piece):
                    await self._say(turn, sentence, language)
            for sentence in splitter.flush():
                await self._say(turn, sentence, language)
        except ProviderError as exc:
            failed = True
            ctx.record_error(self.name, exc, "fallback")
            said.append(" " + pick(self.fallback_reply, language))
        finally:
            # the conversation keeps what the caller was told (the fallback too), so that
            # the next request alternates user and assistant as chat models expect
            if said:
                self.history.append(Message("assistant", "".join(said).strip()))
                self._replied = (turn, len(self.history) - 1)
        await self.report(turn)
        if failed:
            ctx.mark(turn, Stage.FIRST_TOKEN)
            await self._say(turn, pick(self.fallback_reply, language), language)
        await self.emit(ReplyEndFrame(call_id=ctx.call_id, turn_id=turn, ts_ns=ctx.now_ns()))
        if said and not failed:  # once the reply is out: a cache may learn it
            done = "".join(said).strip()
            reusable = self.reusable()
            await ctx.replies.add(
                CompletedReply(
                    turn, transcript.text, done, language, reusable, self.source,
                    ctx.replies.version,
                )
            )  # fmt: skip

    def _keep_what_was_heard(self) -> None:
        """A barge-in cut the last reply: the conversation keeps what the caller heard of it
        (the call's spoken log), ending in an ellipsis, so that the model knows where it was
        stopped; "..." alone when nothing was heard."""
        if self._replied is None:
            return
        (turn, index), self._replied = self._replied, None
        heard = self.ctx.spoken.heard(turn)
        if heard is None or index >= len(self.history):
            return
        said = self.history[index].content
        if heard.strip() != said.strip():
            self.history[index] = Message("assistant", f"{heard.rstrip(' .,;:!?')}...")

    async def _say(self, turn: int, text: str, language: str, *, sentence: bool = True) -> None:
        ctx = self.ctx
        locale = default_table().get(language) if language else None
        if locale is not None and locale.script:  # zh-HK replies in HK Traditional, ...
            text = to_script(text, locale.script)
        await self.emit(
            ReplyTextFrame(
                call_id=ctx.call_id,
                turn_id=turn,
                ts_ns=ctx.now_ns(),
                text=text,
                sentence=sentence,
                language=language,
                cacheable=self.replies_cacheable and not personal(text),
            )
        )

    async def report(self, turn: int) -> None:
        """Metrics of the turn's reply: failover switches (and what a subclass adds)."""
        await report_switches(self, self._switches, turn)

    async def close(self) -> None:
        if self.llm is not None:
            with contextlib.suppress(Exception):
                await self.llm.aclose()


class LLMParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: LLMProviders = Field(
        description="LLM providers in failover order, e.g. [{type: openai, base_url: ..., "
        "model: ...}]"
    )
    system_prompt: str = Field("", description="the system message of every request")
    first_token_timeout_s: float = Field(
        3.0, gt=0, description="per provider: no first token by then moves to the next one"
    )
    max_history: int = Field(20, ge=0, description="past messages sent with each request")
    fallback_reply: LocalizedText = Field(
        _FALLBACK,
        description="said when every provider failed; or one per language: {en: ..., es: ...}",
    )
    stream_tokens: bool = Field(
        False,
        description="send the model's pieces as they come, not sentences: for a tts node with "
        "stream_text (not for ConversationRelay, which runs no tts node)",
    )
    cacheable: bool = Field(
        False,
        description="its replies may be given to other callers asking the same (no personal "
        "data, no tool results): a cache node keeps them, past its own guard",
    )
    today: Literal["date_time", "date", "off"] = Field(
        "date",
        description="with a language node: tell the model today's date in the caller's "
        "locale's words and which clock to say times with (date_time: the time too, which "
        "changes the prompt every minute and so defeats the provider's prompt caching)",
    )
    timezone: ZoneName = Field(
        "", description="IANA zone of the callers (Asia/Hong_Kong); default: the server's"
    )


class LLMReply(Reply):
    """The ``llm`` node."""

    Params = LLMParams

    def __init__(self, params: LLMParams) -> None:
        super().__init__(
            params, system_prompt=params.system_prompt, fallback_reply=params.fallback_reply
        )
        self.p = params
        self.max_history = params.max_history
        self.stream_tokens = params.stream_tokens
        self.replies_cacheable = params.cacheable
        self.today = params.today
        self.timezone = zone(params.timezone)

    def version(self) -> str:
        models = [(spec.type_name, spec.name, repr(spec.params)) for spec in self.p.providers]
        return prompt_version("llm", self.system_prompt, models)

    def build(self) -> LLM:
        return FailoverLLM(
            [spec.build() for spec in self.p.providers],
            first_timeout_s=self.p.first_token_timeout_s,
            on_switch=self._switches.append,
        )


class AnswersReply(Reply):
    """The ``answers`` node: replies from the declared answers, offline."""

    replies_cacheable = True  # declared answers (and the no-match reply) are fixed text
    source = "declared"

    Params = AnswersLLM.Params

    def __init__(self, params: AnswersParams) -> None:
        super().__init__(params, system_prompt="", fallback_reply=params.no_match_reply)
        self.answers: AnswersLLM | None = None
        self.p = params

    def version(self) -> str:
        p = self.p
        answers = [(a.id, a.questions, a.reply) for a in p.all_answers]
        return prompt_version("answers", answers, p.threshold, p.no_match_reply)

    def reusable(self) -> bool:
        match = getattr(self.answers, "last_match", None)
        return bool(match is not None and match.accepted)  # not the no-match reply

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        # a tts node's audio cache prepares every reply (a downstream inbox holds its start
        # frame before anything emitted here)
        ctx = self.ctx
        replies = [a.reply for a in self.p.all_answers] + [self.p.no_match_reply]
        await self.emit(
            PrefetchFrame(call_id=ctx.call_id, turn_id=0, ts_ns=ctx.now_ns(),
                          texts=tuple(dict.fromkeys(replies)), preload=True)
        )  # fmt: skip

    def build(self) -> LLM:
        self.answers = AnswersLLM(self.params, name="answers")
        return self.answers

    async def report(self, turn: int) -> None:
        match = getattr(self.answers, "last_match", None)
        score = getattr(match, "score", None)
        if score is not None:
            await self.emit_metric("answers_score", float(score), turn)
        await super().report(turn)
