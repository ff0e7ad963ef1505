"""Twilio ConversationRelay end to end: uvicorn on 127.0.0.1, a WebSocket client that speaks
the relay protocol as Twilio does, the offline agent's answers node behind it."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import websockets
import yaml
from twilio.request_validator import RequestValidator
from twilio_peer import eventually
from twilio_peer import serving as serving_app

from callweaver.errors import WireError
from callweaver.pipelines.config import load_config
from callweaver.server.app import create_app
from callweaver.transports.relay import wire

ROOT = Path(__file__).parent.parent
TOKEN = "test-auth-token"


@asynccontextmanager
async def serving(config: Path) -> AsyncIterator[str]:
    """uvicorn serving the config's app on a free 127.0.0.1 port, until the block ends."""
    async with serving_app(create_app(load_config(config))) as url:
        yield url


@pytest.fixture
async def base_url(tmp_path: Path) -> AsyncIterator[str]:
    data = yaml.safe_load((ROOT / "configs" / "local.yaml").read_text())
    data["transports"] = {
        "relay": {"nodes": ["bot"], "auth_token": TOKEN, "welcome_greeting": "Hello!",
                  "languages": [{"code": "es-ES", "voice": "es-ES-Standard-A"}],
                  "parameters": {"clinic": "harbour"}},
    }  # fmt: skip
    config = tmp_path / "relay.yaml"
    config.write_text(yaml.safe_dump(data))
    async with serving(config) as url:
        yield url


def signature(url: str, params: dict[str, str]) -> str:
    return RequestValidator(TOKEN).compute_signature(url, params)


async def test_twiml_webhook_connects_a_relay_with_the_configured_voice(base_url: str) -> None:
    url = f"http://{base_url}/relay/twiml"
    form = {"CallSid": "CA123", "From": "+15550001", "To": "+15550002"}
    async with httpx.AsyncClient() as client:
        ok = await client.post(url, data=form, headers={"X-Twilio-Signature": signature(url, form)})
        forged = await client.post(url, data=form, headers={"X-Twilio-Signature": "forged"})
        metrics = (await client.get(f"http://{base_url}/metrics")).text
    assert ok.status_code == 200, ok.text
    xml = ok.text
    assert f'url="wss://{base_url}/relay/ws"' in xml and 'welcomeGreeting="Hello!"' in xml
    assert '<Language code="es-ES" voice="es-ES-Standard-A" />' in xml
    assert '<Parameter name="clinic" value="harbour" />' in xml
    assert '<Parameter name="CallSid" value="CA123" />' in xml
    assert forged.status_code == 403
    assert (
        'callweaver_transport_errors_total{kind="bad_signature",transport="relay"} 1.0' in metrics
    )


async def session(base_url: str) -> websockets.ClientConnection:
    url = f"ws://{base_url}/relay/ws"
    return await websockets.connect(
        url, additional_headers={"X-Twilio-Signature": signature(url, {})}
    )


async def reply(ws: websockets.ClientConnection) -> str:
    """The bot's tokens until the one marked last."""
    tokens = []
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert msg["type"] == "text"
        if msg["last"]:
            return "".join(tokens).strip()
        tokens.append(msg["token"])


async def test_prompts_get_answers_and_bad_messages_are_counted_not_fatal(base_url: str) -> None:
    async with await session(base_url) as ws:
        setup = {"type": "setup", "sessionId": "VX1", "callSid": "CA1", "from": "+1555",
                 "to": "+1666", "customParameters": {}}  # fmt: skip
        await ws.send(json.dumps(setup))
        await ws.send(json.dumps({"type": "prompt", "voicePrompt": "What time are",
                                  "lang": "en-US", "last": False}))  # fmt: skip
        for bad in ("{not json", json.dumps({"type": "telepathy"}), json.dumps({"type": "dtmf"})):
            await ws.send(bad)
        await ws.send(json.dumps({"type": "prompt", "voicePrompt": "What time are you open on "
                                  "Saturday?", "lang": "en-US", "last": True}))  # fmt: skip
        first = await reply(ws)
        assert "Saturday from 9 to 1" in first
        await ws.send(json.dumps({"type": "dtmf", "digit": "5"}))
        await ws.send(json.dumps({"type": "prompt", "voicePrompt": "Where is the clinic?",
                                  "lang": "en-US", "last": True}))  # fmt: skip
        assert "Harbour Street" in await reply(ws)
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"http://{base_url}/metrics")).text
        health = (await client.get(f"http://{base_url}/health")).json()
    for kind in ("bad_json", "unknown_event", "missing_field"):
        assert (
            f'callweaver_transport_errors_total{{kind="{kind}",transport="relay"}} 1.0' in metrics
        )
    assert health["status"] == "ready"


async def test_the_setup_parameters_reach_the_graph(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "configs" / "local.yaml").read_text())
    data["transports"] = {"relay": {"nodes": ["bot"], "validate_signature": False}}
    config = tmp_path / "relay.yaml"
    config.write_text(yaml.safe_dump(data))
    app = create_app(load_config(config))
    async with serving_app(app) as url, websockets.connect(f"ws://{url}/relay/ws") as ws:
        await ws.send(json.dumps({"type": "setup", "sessionId": "VX9", "callSid": "CA9",
                                  "from": "+1555", "to": "+1666",
                                  "customParameters": {"clinic": "harbour"}}))  # fmt: skip
        server = app.state.server
        await eventually(lambda: "CA9" in server.calls, within_s=5)  # the call id is the callSid
        params = server.calls["CA9"][1].ctx.parameters
        assert params == {"CallSid": "CA9", "From": "+1555", "To": "+1666", "clinic": "harbour"}


async def test_a_forged_handshake_is_refused(base_url: str) -> None:
    with pytest.raises(websockets.InvalidStatus):
        async with websockets.connect(
            f"ws://{base_url}/relay/ws", additional_headers={"X-Twilio-Signature": "forged"}
        ):
            pass


async def test_a_session_that_vanishes_mid_call_ends_only_itself(base_url: str) -> None:
    ws = await session(base_url)
    await ws.send(json.dumps({"type": "prompt", "voicePrompt": "Is there parking?",
                              "lang": "en-US", "last": True}))  # fmt: skip
    await ws.close()  # gone before the reply
    async with await session(base_url) as other:
        await other.send(json.dumps({"type": "prompt", "voicePrompt": "Is there parking?",
                                     "lang": "en-US", "last": True}))  # fmt: skip
        assert "parking" in (await reply(other)).lower()


def test_wire_builders_speak_the_relay_protocol() -> None:
    assert json.loads(wire.text("Hi", last=False, lang="es-ES")) == {
        "type": "text", "token": "Hi", "last": False, "lang": "es-ES"}  # fmt: skip
    assert json.loads(wire.language(tts="es-ES", transcription="es-ES")) == {
        "type": "language", "ttsLanguage": "es-ES", "transcriptionLanguage": "es-ES"}  # fmt: skip
    assert json.loads(wire.end({"reason": "human"}))["handoffData"] == '{"reason": "human"}'
    assert json.loads(wire.send_digits("1w2")) == {"type": "sendDigits", "digits": "1w2"}
    with pytest.raises(WireError) as err:
        wire.parse("x" * (wire.MAX_MESSAGE_BYTES + 1))
    assert err.value.kind == "oversized"
    assert wire.parse(json.dumps({"type": "interrupt", "utteranceUntilInterrupt": "We open",
                                  "durationUntilInterruptMs": 420})) == wire.Interrupt(
        "We open", 420)  # fmt: skip


async def test_an_interrupt_stops_the_reply_in_flight(tmp_path: Path) -> None:
    from fake_openai import FakeOpenAI, Reply

    gate = asyncio.Event()
    llm = FakeOpenAI(Reply("We open at eight. Then we see patients all day long.", gate=gate,
                           gate_after=4))  # fmt: skip
    await llm.start()
    config = tmp_path / "relay-llm.yaml"
    config.write_text(yaml.safe_dump({
        "name": "relay-llm",
        "transports": {"relay": {"nodes": ["bot"], "validate_signature": False}},
        "pipeline": {"nodes": [{"name": "bot", "type": "llm", "params": {
            "providers": [{"type": "openai", "base_url": llm.base_url, "model": "gpt-fake"}]}}]},
    }))  # fmt: skip
    try:
        async with serving(config) as url, websockets.connect(f"ws://{url}/relay/ws") as ws:
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": "When do you open?",
                                      "lang": "en-US", "last": True}))  # fmt: skip
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert first["token"].strip() == "We open at eight."  # the rest is held back
            await ws.send(json.dumps({"type": "interrupt", "utteranceUntilInterrupt": "We open",
                                      "durationUntilInterruptMs": 300}))  # fmt: skip
            await asyncio.sleep(0.2)
            gate.set()  # the model would go on: nothing more of that reply may reach Twilio
            llm.default = Reply("Sure.")
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": "Thanks", "lang": "en-US",
                                      "last": True}))  # fmt: skip
            assert await reply(ws) == "Sure."  # the interrupted reply never said more
        # the conversation keeps what Twilio says the caller heard of the cut reply
        messages = llm.chats[-1].body["messages"]
        assert [m["content"] for m in messages if m["role"] == "assistant"] == ["We open..."]
    finally:
        await llm.stop()


async def test_a_response_cache_answers_relay_prompts_before_the_bot(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "configs" / "local.yaml").read_text())
    nodes = data["pipeline"]["nodes"]
    cache = {
        "name": "cache",
        "type": "cache",
        "params": {
            "store": {"type": "memory", "prefix": f"relay-{tmp_path.name}:"},
            "answers": [{"questions": ["Is there parking?"], "reply": "Parking is free out back."}],
        },
    }
    nodes.insert([n["name"] for n in nodes].index("bot"), cache)
    data["pipeline"]["edges"] = [
        "input -> vad",
        "vad -> stt",
        "stt -> cache",
        "cache -> bot",
        "cache.hit -> tts",
        "bot -> tts",
        "tts -> output",
    ]
    data["transports"] = {"relay": {"nodes": ["cache", "bot"], "validate_signature": False}}
    config = tmp_path / "relay.yaml"
    config.write_text(yaml.safe_dump(data))  # fmt: skip
    async with serving(config) as url, websockets.connect(f"ws://{url}/relay/ws") as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "setup",
                    "sessionId": "VX7",
                    "callSid": "CA7",
                    "from": "+1555",
                    "to": "+1666",
                    "customParameters": {},
                }
            )
        )
        for text in ("Is there parking?", "Where is the clinic?"):
            await ws.send(json.dumps({"type": "prompt", "voicePrompt": text, "lang": "en-US",
                                      "last": True}))  # fmt: skip
        assert await reply(ws) == "Parking is free out back."  # the cache's hit port
        assert "Harbour Street" in await reply(ws)  # the bot, for the miss
