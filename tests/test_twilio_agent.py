"""The offline agent behind Twilio Media Streams: webhook, signatures, paced calls answered out
loud while bad peers come and go, barge-in, proxies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import yaml
from fastapi import FastAPI
from twilio.request_validator import RequestValidator
from twilio_peer import (
    AUDIO,
    ROOT,
    SILENCE,
    TOKEN,
    FakeTwilio,
    eventually,
    serving,
    transcribe,
    twilio_stream,
    ulaw_of,
    within,
)
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from callweaver.errors import ConfigError
from callweaver.pipelines.config import load_config, parse_config
from callweaver.server.app import create_app
from callweaver.transports.twilio import wire

pytestmark = pytest.mark.asyncio(loop_scope="module")


# -- the offline agent behind create_app -------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def agent(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, FastAPI]]:
    data = yaml.safe_load((ROOT / "configs" / "local.yaml").read_text())
    data["transports"] = {
        "twilio": {"validate_signature": True, "auth_token": TOKEN,
                   "parameters": {"clinic": "harbour"}},
    }  # fmt: skip
    config = tmp_path_factory.mktemp("twilio") / "twilio.yaml"
    config.write_text(yaml.safe_dump(data))
    app = create_app(load_config(config))
    async with serving(app) as host:
        yield host, app


async def metrics(host: str) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"http://{host}/metrics")).text


def counted(text: str, kind: str) -> float:
    line = f'callweaver_transport_errors_total{{kind="{kind}",transport="twilio"}} '
    for row in text.splitlines():
        if row.startswith(line):
            return float(row[len(line) :])
    return 0.0


async def test_the_webhook_answers_stream_twiml_and_forged_requests_are_refused(
    agent: tuple[str, FastAPI],
) -> None:
    host, _ = agent
    url = f"http://{host}/twilio/voice"
    form = {"CallSid": "CA123", "From": "+15550001", "To": "+15550002", "Direction": "inbound"}
    sign = RequestValidator(TOKEN).compute_signature
    before = counted(await metrics(host), "bad_signature")
    async with httpx.AsyncClient() as client:
        ok = await client.post(url, data=form, headers={"X-Twilio-Signature": sign(url, form)})
        forged = await client.post(url, data=form, headers={"X-Twilio-Signature": "Zm9yZ2Vk"})
        unsigned = await client.post(url, data=form)
        tampered = await client.post(
            url, data={**form, "From": "+15559999"}, headers={"X-Twilio-Signature": sign(url, form)}
        )
    assert ok.status_code == 200, ok.text
    assert ok.headers["content-type"].startswith("application/xml")
    assert ok.text == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
        f'<Stream url="wss://{host}/twilio/stream">'
        '<Parameter name="clinic" value="harbour" />'
        '<Parameter name="From" value="+15550001" />'
        '<Parameter name="To" value="+15550002" />'
        '<Parameter name="CallSid" value="CA123" />'
        "</Stream></Connect></Response>"
    )
    assert [forged.status_code, unsigned.status_code, tampered.status_code] == [403, 403, 403]
    assert counted(await metrics(host), "bad_signature") == before + 3

    # the stream's handshake is signed over its URL alone; a forged one never becomes a socket
    for headers in ({"X-Twilio-Signature": "Zm9yZ2Vk"}, {}):
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"ws://{host}/twilio/stream", additional_headers=headers):
                pass
        assert info.value.response.status_code == 403
    assert counted(await metrics(host), "bad_signature") == before + 5


async def test_a_paced_call_is_answered_out_loud_while_bad_peers_come_and_go(
    agent: tuple[str, FastAPI],
) -> None:
    host, app = agent
    url = f"ws://{host}/twilio/stream"
    question = ulaw_of(AUDIO / "question-hours.wav")
    kinds = ("before_start", "bad_json", "unknown_event", "wrong_stream", "oversized",
             "bad_payload")  # fmt: skip
    before = {kind: counted(await metrics(host), kind) for kind in kinds}

    async def good_call() -> str:
        async with twilio_stream(url) as peer:
            await peer.start(clinic="harbour", From="+15550001")
            # the stream's <Parameter>s reach the graph: on the call's context
            await eventually(lambda: peer.call_sid in app.state.server.calls, within_s=5)
            params = app.state.server.calls[peer.call_sid][1].ctx.parameters
            assert params["clinic"] == "harbour" and params["From"] == "+15550001"
            assert params["CallSid"] == peer.call_sid
            await peer.ws.send(wire.Dtmf(stream_sid=peer.stream_sid, digit="1").to_json())
            await peer.say(question)
            await peer.quiet(1.0, within_s=25)
            # the budget, plus what a busy event loop (this one runs server, peers and
            # models) adds by reading the socket late
            assert peer.max_ahead_ms <= 300 + 80, peer.max_ahead_ms
            assert not peer.clears
            return await transcribe(bytes(peer.heard))

    async def junk_call() -> str:
        async with twilio_stream(url) as peer:
            ws = peer.ws
            await ws.send(peer.media(SILENCE))  # before start
            await peer.start()
            await ws.send("{oops")
            await ws.send(json.dumps({"event": "hangup", "streamSid": peer.stream_sid}))
            await ws.send(peer.media(SILENCE, stream_sid="MZ" + "f" * 32))
            await ws.send(json.dumps({"event": "media", "pad": "x" * 70_000}))
            await ws.send(peer.media(SILENCE).replace('"payload":"', '"payload":"!'))
            await peer.say(question)
            await within(peer.replied.wait(), 15)
            await asyncio.sleep(2.5)  # hear the start of the answer, then hang up
            return await transcribe(bytes(peer.heard))

    async def vanishing_call() -> None:
        async with twilio_stream(url) as peer:
            await peer.start()
            await peer.say(question)
            await within(peer.replied.wait(), 15)
            await asyncio.sleep(0.3)
            peer.ws.transport.abort()  # gone mid-sentence, without a word

    good, junk, _ = await asyncio.gather(good_call(), junk_call(), vanishing_call())
    assert "saturday" in good and "sunday" in good, good
    assert "open" in junk, junk

    server = app.state.server
    # every call ends; nothing is left over from the broken ones
    await eventually(lambda: not server.calls, within_s=10)
    text = await metrics(host)
    for kind in kinds:
        assert counted(text, kind) >= before[kind] + 1, kind
    assert 'callweaver_calls_total{reason="hangup",transport="twilio"}' in text
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"http://{host}/health")).status_code == 200


async def test_caller_speech_over_the_reply_clears_twilios_buffer(
    agent: tuple[str, FastAPI],
) -> None:
    host, _ = agent
    async with twilio_stream(f"ws://{host}/twilio/stream") as peer:
        await peer.start()
        await peer.say(ulaw_of(AUDIO / "question-hours.wav"))
        await within(peer.replied.wait(), 15)
        await asyncio.sleep(0.5)
        barge_in = asyncio.ensure_future(peer.say(ulaw_of(AUDIO / "question-address.wav")))
        await within(peer.cleared.wait(), 4)
        barge_in.cancel()
        first_reply_at = peer.first_media_at
    assert first_reply_at is not None and peer.clears[0] > first_reply_at
    assert peer.marks_echoed  # pending marks were echoed on the clear


async def test_behind_a_proxy_public_url_is_what_is_signed_and_where_the_stream_points(
    tmp_path: Path,
) -> None:
    data = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    public = "https://voice.example.com/agent"  # the proxy strips /agent
    data["transports"] = {"twilio": {"auth_token": TOKEN, "public_url": public, "path": "/tw"}}
    config = tmp_path / "proxied.yaml"
    config.write_text(yaml.safe_dump(data))
    sign = RequestValidator(TOKEN).compute_signature
    form = {"CallSid": "CA9", "From": "+15550001", "To": "+15550002"}
    async with serving(create_app(load_config(config))) as host:
        local = f"http://{host}/tw/voice"
        async with httpx.AsyncClient() as client:
            ok = await client.post(
                local, data=form, headers={"X-Twilio-Signature": sign(f"{public}/tw/voice", form)}
            )
            signed_locally = await client.post(
                local, data=form, headers={"X-Twilio-Signature": sign(local, form)}
            )
        assert ok.status_code == 200, ok.text
        assert '<Stream url="wss://voice.example.com/agent/tw/stream">' in ok.text
        assert signed_locally.status_code == 403

        stream = f"ws://{host}/tw/stream"
        with pytest.raises(InvalidStatus):  # signed for the URL this server sees: refused
            headers = {"X-Twilio-Signature": sign(f"wss://{host}/tw/stream", {})}
            async with connect(stream, additional_headers=headers):
                pass
        headers = {"X-Twilio-Signature": sign("wss://voice.example.com/agent/tw/stream", {})}
        async with connect(stream, additional_headers=headers) as ws:
            peer = FakeTwilio(ws)
            await peer.start(line=False)
            await ws.send(wire.Stop(stream_sid=peer.stream_sid).to_json())
            # the stop ends the call, and the app closes the socket (Twilio moves on)
            await within(ws.wait_closed(), 5)


async def test_the_twilio_config_needs_a_token_to_check_signatures() -> None:
    def twilio(section: str) -> str:
        pipeline = "pipeline: {nodes: [{name: bot, type: echo}]}"
        return f"name: t\ntransports:\n  twilio: {section}\n{pipeline}\n"

    with pytest.raises(ConfigError) as info:
        parse_config(twilio("{}"), "t.yaml", env={})
    assert "validate_signature needs auth_token" in str(info.value)
    with pytest.raises(ConfigError) as info:
        parse_config(twilio("{auth_token: '${TWILIO_AUTH_TOKEN:-}'}"), "t.yaml", env={})
    assert "validate_signature needs auth_token" in str(info.value)
    for bad in ("{validate_signature: false, max_buffer_ms: 5}",
                "{validate_signature: false, public_url: 'example.com'}",
                "{validate_signature: false, path: 'twilio'}",
                "{validate_signature: false, typo: 1}"):  # fmt: skip
        with pytest.raises(ConfigError):
            parse_config(twilio(bad), "t.yaml", env={})
    dep = parse_config(
        twilio("{auth_token: '${TWILIO_AUTH_TOKEN}'}"), "t.yaml", env={"TWILIO_AUTH_TOKEN": "s3"}
    )
    twilio_config = dep.config.transports.twilio
    assert twilio_config is not None and twilio_config.auth_token is not None
    assert twilio_config.auth_token.get_secret_value() == "s3"
    assert "s3" not in repr(twilio_config)  # a secret is never printed
    assert (twilio_config.path, twilio_config.max_buffer_ms) == ("/twilio", 300)
