"""The language node in a call: transcripts stamped with the call's locale, a switch told
downstream and upstream, the LLM prompted in the caller's language, ConversationRelay told to
switch, bad params refused."""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
import websockets
import yaml
from fake_openai import FakeOpenAI, Reply
from pydantic import ValidationError
from test_relay import ROOT, reply, serving

from callweaver.errors import ConfigError
from callweaver.frames.base import Frame
from callweaver.frames.text import LanguageFrame, ReplyTextFrame, TranscriptFrame
from callweaver.pipelines.call import Call
from callweaver.pipelines.config import parse_config
from callweaver.pipelines.graph import Graph, Node
from callweaver.processors.language import LanguageNode, LanguageParams
from callweaver.processors.reply import LLMReply
from callweaver.runtime.clock import MonotonicClock
from callweaver.runtime.processor import Processor
from callweaver.services import health
from callweaver.services.locales import default_table
from callweaver.testing import ListIO
from callweaver.text import say


@pytest.fixture(autouse=True)
def own_breakers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_process_health", None)


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(Reply("Claro.")) as fake:
        yield fake


class Upstream(Processor):
    """Stands where the stt node stands: notes the language frames sent up to it."""

    heard: ClassVar[list[str]] = []

    async def process(self, frame: Frame) -> None:
        if isinstance(frame, LanguageFrame):
            Upstream.heard.append(frame.locale)
            return
        await self.emit(frame)


def said(text: str, turn: int, language: str = "en") -> TranscriptFrame:
    return TranscriptFrame(call_id="c", turn_id=turn, text=text, language=language)


async def test_a_switch_reaches_the_llm_the_reply_and_the_stt(server: FakeOpenAI) -> None:
    Upstream.heard = []
    params = LanguageParams(default="en-US", allowed=["en-US", "es-MX"])
    llm = LLMReply.Params(
        providers=[{"type": "openai", "base_url": server.base_url, "model": "gpt-fake"}],
        system_prompt="You are a clinic's receptionist.",
    )
    graph = Graph([Node.of("stt", Upstream), Node.of("language", LanguageNode, params),
                   Node.of("bot", LLMReply, llm)])  # fmt: skip
    io = ListIO([said("what time do you open", 1), said("can we speak Spanish please", 2),
                 said("a qué hora abren mañana", 3, "es")], interval_s=0.3)  # fmt: skip
    await Call(graph, clock=MonotonicClock()).run(io)

    switches = [f for f in io.written if isinstance(f, LanguageFrame)]
    assert [(f.locale, f.reason) for f in switches] == [("en-US", "start"), ("es-MX", "explicit")]
    assert Upstream.heard == ["en-US", "es-MX"]  # the stt node hears the next turns in Spanish
    transcripts = [f for f in io.written if isinstance(f, TranscriptFrame)]
    assert [f.language for f in transcripts] == ["en-US", "es-MX", "es-MX"]
    replies = [f for f in io.written if isinstance(f, ReplyTextFrame)]
    assert {f.turn_id: f.language for f in replies} == {1: "en-US", 2: "es-MX", 3: "es-MX"}
    systems = [r.body["messages"][0]["content"] for r in server.chats]
    assert "usted" not in systems[0]
    assert systems[2].endswith("Responda en español y trate a la persona que llama de usted.")
    # how the locale says dates and times, from CLDR: today's date, the clock of the table
    today = say.say_date(datetime.date.today(), "es-MX")
    assert f"Today is {today} (say dates like that)" in systems[2]
    assert "say times the 12-hour way, like 3:30 p.m." in systems[2]
    assert "Today is" in systems[0] and "like 3:30 PM" in systems[0]


def test_the_date_line_can_be_off_and_a_bad_time_zone_is_refused() -> None:
    llm = {"providers": [{"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}],
           "system_prompt": "Be brief."}  # fmt: skip
    off = LLMReply(LLMReply.Params(**llm, today="off"))
    assert off.messages("de-DE")[0].content == "Be brief.\n\n" + default_table().get("de-DE").prompt  # type: ignore[union-attr]
    with_time = LLMReply(LLMReply.Params(**llm, today="date_time", timezone="Asia/Hong_Kong"))
    line = with_time.messages("zh-HK")[0].content
    assert "(say times the 12-hour way)" in line and ("上午" in line or "下午" in line)
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        LLMReply.Params(**llm, timezone="Mars/Olympus")


def test_unknown_locales_are_refused_with_the_key() -> None:
    text = """
name: bad
pipeline:
  nodes:
    - {name: language, type: language, params: {default: en-US, allowed: [en-US, xx-XX]}}
"""
    with pytest.raises(ConfigError, match="unknown locale 'xx-XX'"):
        parse_config(text)
    with pytest.raises(ConfigError, match="unknown locale 'eu-ES'"):
        parse_config(text.replace("xx-XX", "eu-ES"))  # not in the table: add it under locales
    extended = text.replace(
        "allowed: [en-US, xx-XX]}",
        "allowed: [en-US, eu-ES], locales: {eu-ES: {name: Basque, stt: {azure: eu-ES}, "
        "tts: {azure: [Ainhoa]}}}}",
    )
    with pytest.raises(ConfigError, match="'Ainhoa' is not an Azure voice name"):
        parse_config(extended)


async def test_conversation_relay_is_told_to_switch(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "configs" / "local.yaml").read_text())
    nodes = data["pipeline"]["nodes"]
    language = {"name": "language", "type": "language",
                "params": {"default": "en-US", "allowed": ["en-US", "es-ES"]}}  # fmt: skip
    nodes.insert([n["name"] for n in nodes].index("bot"), language)
    data["transports"] = {"relay": {"nodes": ["language", "bot"], "validate_signature": False}}
    config = tmp_path / "relay.yaml"
    config.write_text(yaml.safe_dump(data))
    async with serving(config) as url:
        async with websockets.connect(f"ws://{url}/relay/ws") as ws:
            setup = {"type": "setup", "sessionId": "VX8", "callSid": "CA8", "from": "+1555",
                     "to": "+1666", "customParameters": {}}  # fmt: skip
            await ws.send(json.dumps(setup))
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": "Can we speak Spanish?",
                                      "lang": "en-US", "last": True}))  # fmt: skip
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert msg == {"type": "language", "ttsLanguage": "es-ES",
                           "transcriptionLanguage": "es-ES"}  # fmt: skip
            assert await reply(ws)  # and the turn is answered
        # once the call has ended, /metrics counts its turns by locale and its switch
        async with httpx.AsyncClient(base_url=f"http://{url}") as client:
            for _ in range(50):
                metrics = (await client.get("/metrics")).text
                if "callweaver_language_switches_total" in metrics:
                    break
                await asyncio.sleep(0.1)
    assert 'callweaver_language_switches_total{reason="explicit"} 1.0' in metrics
    assert 'callweaver_language_turns_total{locale="es-ES"} 1.0' in metrics


async def test_a_hong_kong_caller_is_answered_in_hong_kong_characters(server: FakeOpenAI) -> None:
    server.default = Reply("我们这里没有停车场。请问你什么时候来？")  # the model wrote Simplified
    params = LanguageParams(default="en-US", allowed=["en-US", "zh-HK"])
    llm = LLMReply.Params(
        providers=[{"type": "openai", "base_url": server.base_url, "model": "gpt-fake"}],
        system_prompt="You are a clinic's receptionist.",
    )
    graph = Graph([Node.of("language", LanguageNode, params), Node.of("bot", LLMReply, llm)])
    io = ListIO([said("唔該，你哋附近有冇地方泊車呀？", 1, "zh")])
    io.parameters = {"To": "+85223456789"}  # type: ignore[attr-defined]
    await Call(graph, clock=MonotonicClock()).run(io)
    replies = [f.text for f in io.written if isinstance(f, ReplyTextFrame)]
    assert replies == ["我們這裏沒有停車場。", "請問你什麼時候來？"]
    system = server.chats[0].body["messages"][0]["content"]
    assert "香港粵語" in system  # the zh-HK prompt line: Cantonese, HK characters, politeness
