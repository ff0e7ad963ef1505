"""The offline agent over WebRTC, against a Python browser-side peer (aiortc offerer) on
loopback: a paced call answered out loud, the data channel's transcript and replies, call
parameters, hang-ups of every kind, and bad offers and messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio
import yaml
from fastapi import FastAPI
from twilio_peer import AUDIO, ROOT, eventually, serving

from callweaver.pipelines.config import load_config
from callweaver.resources import whisper
from callweaver.server.app import Server, create_app
from callweaver.transports.webrtc.caller import WebRTCCaller, webrtc_call

pytestmark = pytest.mark.asyncio(loop_scope="module")

LOOPBACK = ["127.0.0.1"]


async def transcribe16k(pcm: np.ndarray[Any, np.dtype[np.int16]]) -> str:
    heard = await whisper.shared_model("tiny.en").transcribe(
        pcm.astype(np.float32) / 32768, window="full"
    )
    return heard.text.lower()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def agent(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[str, FastAPI]]:
    data = yaml.safe_load((ROOT / "configs" / "local.yaml").read_text())
    data["transports"] = {"webrtc": {"ice_addresses": ["127.0.0.1"], "connect_timeout_s": 3}}
    config = tmp_path_factory.mktemp("webrtc") / "webrtc.yaml"
    config.write_text(yaml.safe_dump(data))
    app = create_app(load_config(config))
    async with serving(app) as host:
        yield host, app


def server_of(app: FastAPI) -> Server:
    server = app.state.server
    assert isinstance(server, Server)
    return server


async def counted(host: str, kind: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://{host}/metrics")).text
    line = f'callweaver_transport_errors_total{{kind="{kind}",transport="webrtc"}} '
    for row in text.splitlines():
        if row.startswith(line):
            return float(row[len(line) :])
    return 0.0


async def test_a_paced_call_is_answered_out_loud_with_transcript_and_replies_on_the_channel(
    agent: tuple[str, FastAPI],
) -> None:
    host, app = agent
    async with webrtc_call(host, addresses=LOOPBACK) as peer:
        assert peer.call_id is not None and peer.call_id in server_of(app).calls
        await eventually(lambda: bool(peer.event("call")), within_s=5)
        assert peer.event("call")[0]["call_id"] == peer.call_id
        peer.mic.say_wav(AUDIO / "question-hours.wav")
        await eventually(lambda: bool(peer.event("reply_end")), within_s=20)
        assert peer.mic.spoken_end_ns is not None
        spoken_end = peer.mic.spoken_end_ns
        await eventually(
            lambda: (
                (time.monotonic_ns() - spoken_end) > 8e9
                or peer.received.voiced_since(spoken_end) is not None
            ),
            within_s=10,
        )
        await asyncio.sleep(7)  # the reply (about 7 s) plays out in real time
        heard = await transcribe16k(peer.received.pcm(spoken_end))
    final = [e for e in peer.event("transcript") if e["final"]]
    assert final and "open" in final[0]["text"].lower()
    replies = " ".join(e["text"] for e in peer.event("reply"))
    assert "Saturday" in replies
    assert "saturday" in heard and "sunday" in heard, heard
    first = peer.received.voiced_since(spoken_end)
    assert first is not None
    # the page is told each turn's voice-to-voice time, measured at the server's edge
    latency = peer.event("latency")
    assert latency and 0 < latency[0]["voice_to_voice_ms"] < 5000


async def test_speaking_over_the_bot_interrupts_its_reply(agent: tuple[str, FastAPI]) -> None:
    host, _ = agent
    async with webrtc_call(host, addresses=LOOPBACK) as peer:
        peer.mic.say_wav(AUDIO / "question-hours.wav")
        await eventually(lambda: bool(peer.event("latency")), within_s=20)  # the reply plays
        await asyncio.sleep(1.0)
        peer.mic.say_wav(AUDIO / "question-address.wav")  # over the bot
        await eventually(lambda: bool(peer.event("interrupted")), within_s=10)
        await eventually(lambda: len(peer.event("latency")) >= 2, within_s=20)
        replies = [e for e in peer.event("reply") if e["turn"] == peer.event("latency")[1]["turn"]]
    assert "Harbour Street" in " ".join(e["text"] for e in replies)
    # the hours reply was cut: its last sentence never reached the page
    assert not any("Sunday" in e["text"] for e in peer.event("reply"))


async def test_the_page_hanging_up_or_vanishing_ends_the_call(agent: tuple[str, FastAPI]) -> None:
    host, app = agent
    server = server_of(app)
    peer = WebRTCCaller(host, addresses=LOOPBACK)
    await peer.call()
    assert peer.call_id in server.calls
    await peer.hangup()  # a hangup message, then the connection closes
    await eventually(lambda: peer.call_id not in server.calls, within_s=5)

    vanishing = WebRTCCaller(host, addresses=LOOPBACK)
    await vanishing.call()
    assert vanishing.call_id in server.calls
    await vanishing.pc.close()  # a closed tab: no message, the connection just ends
    await eventually(lambda: vanishing.call_id not in server.calls, within_s=5)


async def test_an_answered_offer_that_never_connects_ends_after_the_timeout(
    agent: tuple[str, FastAPI],
) -> None:
    host, app = agent
    server = server_of(app)
    peer = WebRTCCaller(host, addresses=LOOPBACK)
    before = await counted(host, "no_connection")
    response = await peer.offer()  # answered, but the answer is never applied
    assert response.status_code == 200
    call_id = response.json()["call_id"]
    assert call_id in server.calls
    await eventually(lambda: call_id not in server.calls, within_s=8)  # timeout: 3 s
    assert await counted(host, "no_connection") == before + 1
    await peer.pc.close()


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"not json", "bad_json"),
        (b'{"type": "answer", "sdp": "v=0"}', "bad_field"),
        (b'{"type": "offer", "sdp": 42}', "bad_sdp"),
        (b'{"type": "offer", "sdp": "v=0\\r\\nm=video 9 UDP/TLS/RTP/SAVPF 96\\r\\n"}', "no_audio"),
        (b'{"type": "offer", "sdp": "v=0\\r\\nm=audio 9 nonsense\\r\\n"}', "bad_sdp"),
        (b'{"type": "offer", "sdp": "v=0\\r\\nm=audio 9 x", "parameters": [1]}', "bad_field"),
        (b'{"type": "offer", "sdp": "' + b"v" * 70_000 + b'"}', "oversized"),
    ],
)
async def test_bad_offers_get_a_clear_400_and_are_counted(
    agent: tuple[str, FastAPI], body: bytes, kind: str
) -> None:
    host, app = agent
    before = await counted(host, kind)
    calls = len(server_of(app).calls)
    async with httpx.AsyncClient() as client:
        response = await client.post(f"http://{host}/webrtc/offer", content=body)
    assert response.status_code == 400
    assert response.json()["error"] == kind
    assert await counted(host, kind) == before + 1
    assert len(server_of(app).calls) == calls


async def test_bad_channel_messages_are_counted_and_the_call_goes_on(
    agent: tuple[str, FastAPI],
) -> None:
    host, _ = agent
    before = await counted(host, "unknown_event"), await counted(host, "bad_json")
    async with webrtc_call(host, addresses=LOOPBACK) as peer:
        await eventually(lambda: bool(peer.event("call")), within_s=5)
        peer.channel.send("{{not json")
        peer.send({"type": "teleport"})
        peer.send({"type": "dtmf", "digit": "Z"})
        await eventually(lambda: peer.channel.bufferedAmount == 0, within_s=2)
        await asyncio.sleep(0.2)
        peer.mic.say_wav(AUDIO / "question-hours.wav")
        await eventually(lambda: bool(peer.event("reply")), within_s=20)
    assert await counted(host, "unknown_event") == before[0] + 1
    assert await counted(host, "bad_json") == before[1] + 1


async def test_the_page_and_its_script_are_served(agent: tuple[str, FastAPI]) -> None:
    host, _ = agent
    async with httpx.AsyncClient(base_url=f"http://{host}") as client:
        bare = await client.get("/webrtc?clinic=harbour")
        page = await client.get("/webrtc/")
        script = await client.get("/webrtc/webrtc.js")
    # the page's links are relative to /webrtc/; the query survives the redirect
    assert bare.status_code == 307 and bare.headers["location"] == "/webrtc/?clinic=harbour"
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="call"' in page.text and "webrtc.js" in page.text
    assert script.status_code == 200 and "createDataChannel" in script.text
