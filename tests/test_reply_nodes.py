"""The reply nodes: ``llm`` against a real HTTP server speaking the chat-completions wire
format (tests/fake_openai.py), ``answers`` on the real MiniLM model, and configs/llm.yaml's
whole graph on a recorded caller.

A final transcript in; the reply out as sentences, each as soon as it is complete, then the
end of the reply. The conversation goes with every request. When the model fails the caller
hears the fallback reply, the failure is in the call's report, and the next turn is answered
again once the server is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fake_openai import FakeOpenAI, Reply
from ports import free_port

from callweaver.frames.base import Frame
from callweaver.frames.metrics import MetricsFrame
from callweaver.frames.text import ReplyEndFrame, ReplyTextFrame, TranscriptFrame
from callweaver.pipelines.call import Call, CallReport
from callweaver.pipelines.config import load_config
from callweaver.pipelines.graph import Graph, Node
from callweaver.processors.reply import AnswersReply, LLMReply
from callweaver.runtime.clock import MonotonicClock
from callweaver.runtime.latency import Stage
from callweaver.services import health
from callweaver.testing import ListIO, run_processor
from callweaver.transports.file import FileIO

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "You are a clinic's receptionist. Answer in one short sentence."
FALLBACK = "Sorry, I can't answer that right now."


@pytest.fixture(autouse=True)
def own_breakers(monkeypatch: pytest.MonkeyPatch) -> None:
    """The nodes use the process's breakers: each test gets its own, so that the failures a
    test provokes do not open a breaker that another test's provider goes by."""
    monkeypatch.setattr(health, "_process_health", None)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


def openai(url: str, name: str = "primary", **params: Any) -> dict[str, Any]:
    return {"type": "openai", "name": name, "base_url": url, "model": "gpt-fake", **params}


def llm_node(*providers: dict[str, Any], **params: Any) -> LLMReply:
    params = {
        "system_prompt": PROMPT,
        "first_token_timeout_s": 2.0,
        "fallback_reply": FALLBACK,
        **params,
    }
    return LLMReply(LLMReply.Params(providers=list(providers), **params))


def said(text: str, turn: int = 1, *, final: bool = True) -> TranscriptFrame:
    return TranscriptFrame(call_id="test-call", turn_id=turn, text=text, final=final, language="en")


def replies(frames: Sequence[Frame], turn: int | None = None) -> list[str]:
    """The reply sentences, with "END" for each end of reply."""
    out = []
    for f in frames:
        if turn is not None and f.turn_id != turn:
            continue
        if isinstance(f, ReplyTextFrame):
            assert f.sentence
            out.append(f.text)
        elif isinstance(f, ReplyEndFrame):
            out.append("END")
    return out


def messages(server: FakeOpenAI, i: int) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in server.chats[i].body["messages"]]


# -- the llm node -----------------------------------------------------------------------------


async def test_a_final_transcript_gets_the_reply_in_sentences_then_the_end(
    server: FakeOpenAI,
) -> None:
    server.default = Reply("We open at eight. We close at six! Anything else?")
    question = said("When are you open?")
    run = await run_processor(llm_node(openai(server.base_url)), [question])

    assert run.downstream[0] == question  # the transcript goes on too
    assert replies(run.downstream) == [
        "We open at eight.",
        "We close at six!",
        "Anything else?",
        "END",
    ]
    texts = [f for f in run.downstream if isinstance(f, ReplyTextFrame)]
    assert {(f.turn_id, f.language) for f in texts} == {(1, "en")}
    assert messages(server, 0) == [("system", PROMPT), ("user", "When are you open?")]
    assert run.ctx is not None and run.ctx.errors == []
    (turn,) = run.ctx.latency.turns
    assert Stage.FIRST_TOKEN in turn.marks


async def test_the_endpoint_connection_is_opened_at_call_start(server: FakeOpenAI) -> None:
    server.default = Reply("We open at eight.")
    await run_processor(llm_node(openai(server.base_url)), [said("When are you open?")])
    # the warm-up at start, then the turn: on the connection the warm-up opened
    assert [r.path for r in server.requests] == ["/v1/models", "/v1/chat/completions"]
    assert [r.connection for r in server.requests] == [1, 1]


async def test_each_sentence_goes_out_while_the_model_is_still_writing(
    server: FakeOpenAI,
) -> None:
    held = asyncio.Event()  # the server holds the stream after the first sentence
    server.default = Reply("We open at eight. We close at six.", gate=held, gate_after=4)
    heard_first: list[str] = []
    reply_over = asyncio.Event()

    def on_write(frame: Frame) -> None:
        if isinstance(frame, ReplyTextFrame) and not held.is_set():
            heard_first.append(frame.text)
            held.set()  # only now does the model write the rest
        if isinstance(frame, ReplyEndFrame):
            reply_over.set()

    io = ListIO([said("When are you open?")], hold_open=reply_over)
    io.on_write = on_write
    node = llm_node(openai(server.base_url))
    async with asyncio.timeout(10):  # a node that waited for the whole reply would hang here
        await Call(Graph([Node("bot", lambda: node)])).run(io)

    assert heard_first == ["We open at eight."]
    assert replies(io.written) == ["We open at eight.", "We close at six.", "END"]


async def test_the_conversation_goes_with_every_request(server: FakeOpenAI) -> None:
    server.queue.extend([Reply("We open at eight."), Reply("Yes, from nine to one.")])
    run = await run_processor(
        llm_node(openai(server.base_url)),
        [said("When are you open?", 1), said("And on Saturday?", 2)],
    )
    assert replies(run.downstream, 2) == ["Yes, from nine to one.", "END"]
    assert messages(server, 1) == [
        ("system", PROMPT),
        ("user", "When are you open?"),
        ("assistant", "We open at eight."),
        ("user", "And on Saturday?"),
    ]


async def test_history_is_bounded_by_max_history(server: FakeOpenAI) -> None:
    server.default = Reply("Sure.")
    lines = ["One?", "Two?", "Three?"]
    await run_processor(
        llm_node(openai(server.base_url), max_history=2),
        [said(text, turn) for turn, text in enumerate(lines, 1)],
    )
    assert messages(server, 2) == [("system", PROMPT), ("assistant", "Sure."), ("user", "Three?")]


class Caller:
    """A transport that says each line only once the bot has finished replying to the one
    before (``between`` runs first: the test changes the world between two turns)."""

    def __init__(self, lines: Sequence[str], between: Callable[[], Awaitable[None]]) -> None:
        self.lines = lines
        self.between = between
        self.written: list[Frame] = []
        self._replied = asyncio.Event()

    async def frames(self) -> AsyncIterator[Frame]:
        for turn, text in enumerate(self.lines, 1):
            if turn > 1:
                await self.between()
            yield said(text, turn)
            await self._replied.wait()
            self._replied.clear()

    async def write(self, frame: Frame) -> None:
        self.written.append(frame)
        if isinstance(frame, ReplyEndFrame):
            self._replied.set()

    async def flush(self) -> None:
        pass


async def converse(node: LLMReply, caller: Caller) -> CallReport:
    async with asyncio.timeout(15):
        return await Call(Graph([Node("bot", lambda: node)])).run(caller)


async def test_every_provider_failing_says_the_fallback_and_the_next_turn_recovers(
    server: FakeOpenAI,
) -> None:
    server.default = Reply.error(500)

    async def recover() -> None:
        server.default = Reply("We open at eight.")

    node = llm_node(openai(server.base_url), openai(server.base_url, name="backup"))
    caller = Caller(["When are you open?", "When are you open?"], recover)
    report = await converse(node, caller)

    assert replies(caller.written, 1) == [FALLBACK, "END"]
    assert replies(caller.written, 2) == ["We open at eight.", "END"]
    assert len(server.chats) == 3  # both providers on turn 1, the first on turn 2
    metrics = [f.name for f in caller.written if isinstance(f, MetricsFrame) and f.turn_id == 1]
    assert metrics == ["failover.llm.primary", "failover.llm.backup"]
    (error,) = report.errors
    assert error.node == "bot" and error.policy == "fallback"
    assert "every provider failed" in error.message and "HTTP 500" in error.message
    assert all(Stage.FIRST_TOKEN in t.marks for t in report.turns)
    # the failed turn's fallback is in the conversation: user and assistant alternate
    assert messages(server, 2)[1:] == [
        ("user", "When are you open?"),
        ("assistant", FALLBACK),
        ("user", "When are you open?"),
    ]


async def test_a_refused_connection_says_the_fallback_and_the_next_turn_recovers() -> None:
    port = free_port()
    started: list[FakeOpenAI] = []

    async def server_comes_up() -> None:
        fake = FakeOpenAI(Reply("We open at eight."), port=port)
        await fake.start()
        started.append(fake)

    node = llm_node(openai(f"http://127.0.0.1:{port}/v1"))
    caller = Caller(["When are you open?", "When are you open?"], server_comes_up)
    try:
        report = await converse(node, caller)
    finally:
        for fake in started:
            await fake.stop()

    assert replies(caller.written, 1) == [FALLBACK, "END"]
    assert replies(caller.written, 2) == ["We open at eight.", "END"]
    (error,) = report.errors
    assert "cannot connect" in error.message
    assert len(started[0].requests) == 1


async def test_a_stream_cut_midway_keeps_what_was_said_then_the_fallback(
    server: FakeOpenAI,
) -> None:
    server.default = Reply("We open at eight. And we close at six.", cut_after=5)
    node = llm_node(openai(server.base_url), openai(server.base_url, name="backup"))
    run = await run_processor(node, [said("When are you open?")])

    assert replies(run.downstream) == ["We open at eight.", FALLBACK, "END"]
    assert len(server.chats) == 1  # words were out: the reply stays with the primary
    assert run.ctx is not None
    (error,) = run.ctx.errors
    assert "stream cut" in error.message and error.policy == "fallback"


@pytest.mark.parametrize(
    "transcript",
    [said("When are", final=False), said(""), said("   "), said("\n")],
    ids=["interim", "empty", "spaces", "newline"],
)
async def test_interim_or_empty_transcripts_get_no_reply(
    server: FakeOpenAI, transcript: TranscriptFrame
) -> None:
    run = await run_processor(llm_node(openai(server.base_url)), [transcript])
    assert run.downstream == [transcript]
    assert server.chats == []


# -- the answers node -------------------------------------------------------------------------

NO_MATCH = "Sorry, I can only help with our hours and parking."
ANSWERS = [
    {
        "id": "hours",
        "questions": [
            "What are your opening hours?",
            "When are you open?",
            "What time do you close?",
        ],
        "reply": "We're open from eight to six. We're closed on Sunday.",
    },
    {
        "id": "parking",
        "questions": ["Is there parking?", "Where can I park my car?"],
        "reply": "There's free parking behind the building.",
    },
]


async def test_answers_node_replies_to_a_paraphrase_and_says_no_match_otherwise() -> None:
    node = AnswersReply(
        AnswersReply.Params(answers=ANSWERS, threshold=0.6, no_match_reply=NO_MATCH)
    )
    run = await run_processor(
        node,
        [said("what time do you shut in the evening", 1), said("Who won the match last night?", 2)],
    )
    assert replies(run.downstream, 1) == [
        "We're open from eight to six.",
        "We're closed on Sunday.",
        "END",
    ]
    assert replies(run.downstream, 2) == [NO_MATCH, "END"]
    scores = {
        f.turn_id: f.value
        for f in run.downstream
        if isinstance(f, MetricsFrame) and f.name == "answers_score"
    }
    assert scores.keys() == {1, 2}
    assert scores[1] >= 0.6 > scores[2]
    assert run.ctx is not None and run.ctx.errors == []


# -- configs/llm.yaml, the whole graph -------------------------------------------------------

CONFIG_REPLY = "We're open on Saturday from nine to one. Can I help with anything else?"


async def test_llm_config_answers_a_recorded_caller(
    server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.default = Reply(CONFIG_REPLY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_MODEL", "gpt-fake")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-llm-config")
    dep = load_config(ROOT / "configs" / "llm.yaml")

    clock = MonotonicClock()  # as `callweaver simulate --fast` runs it
    io = FileIO.from_wav(
        ROOT / "examples" / "audio" / "question-hours.wav",
        clock,
        realtime=False,
        tail_ms=dep.config.transports.file.tail_ms,
    )
    async with asyncio.timeout(30):
        report = await Call(dep.graph, clock=clock, lossless=True).run(io)

    assert report.errors == []
    caller = [text for _, who, text in io.conversation if who == "caller"]
    bot = [text for _, who, text in io.conversation if who == "bot"]
    assert len(caller) == 1 and "saturday" in caller[0].lower()
    assert " ".join(bot) == CONFIG_REPLY
    (request,) = server.chats
    assert request.model == "gpt-fake"
    assert request.headers["authorization"] == "Bearer sk-test-llm-config"
    sent = request.body["messages"]
    assert sent[0]["role"] == "system" and "receptionist" in sent[0]["content"]
    assert sent[1:] == [{"role": "user", "content": caller[0]}]
    # the reply was spoken: seconds of audio on the bot's side of the recording
    audio = np.frombuffer(io.recording().data, dtype="<i2").astype(np.int32)
    assert np.count_nonzero(np.abs(audio) > 1000) > io.audio.sample_rate // 2
