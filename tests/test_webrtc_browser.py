"""The call page in a real browser: headless Chromium (Debian's package) with a WAV as its
microphone calls the offline agent over WebRTC on loopback. The page must show the caller's
transcript and the bot's reply, and the bot's voice must arrive in the page (its energy and
duration, measured by the page, and its words, transcribed here). Hanging up and closing the
tab end the call on the server.

.ci/run installs chromium and sets CALLWEAVER_REQUIRE_BROWSER, so there the test cannot skip.
"""

from __future__ import annotations

import base64
import os
import shutil
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
import yaml
from fastapi import FastAPI
from test_webrtc import transcribe16k
from twilio_peer import AUDIO, ROOT, eventually, serving

from callweaver.audio.resample import resample
from callweaver.pipelines.config import load_config
from callweaver.server.app import Server, create_app
from callweaver.transports.wav import read_wav

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("CALLWEAVER_REQUIRE_BROWSER"):
    raise RuntimeError("CALLWEAVER_REQUIRE_BROWSER is set but chromium is not installed")
pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
    ),
]

FLAGS = [  # ../shared/PROTOCOLS.md: what works on loopback in a closed network
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip


def microphone(path: Path) -> Path:
    """The question, then 12 s of silence: Chromium loops its fake capture file, and the
    caller should not ask again while the bot answers."""
    question = read_wav(AUDIO / "question-hours.wav")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(question.sample_rate)
        w.writeframes(question.data + bytes(question.sample_rate * 2 * 12))
    return path


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser_and_agent(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[Any, str, Server]]:
    from playwright.async_api import async_playwright

    tmp = tmp_path_factory.mktemp("browser")
    data = yaml.safe_load((ROOT / "configs" / "local.yaml").read_text())
    data["transports"] = {"webrtc": {"ice_addresses": ["127.0.0.1"]}}
    (tmp / "webrtc.yaml").write_text(yaml.safe_dump(data))
    app: FastAPI = create_app(load_config(tmp / "webrtc.yaml"))
    mic = microphone(tmp / "mic.wav")
    async with serving(app) as host, async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[*FLAGS, f"--use-file-for-fake-audio-capture={mic}"],
        )
        try:
            yield browser, host, app.state.server
        finally:
            await browser.close()


async def page_state(page: Any) -> dict[str, Any]:
    state = await page.evaluate("window.callweaver.state")
    assert isinstance(state, dict)
    return state


async def call_from_page(browser: Any, url: str, server: Server) -> tuple[Any, str]:
    """A new tab at ``url`` presses Call; (the page, the server's call id) once connected."""
    page = await browser.new_page()
    await page.goto(url)
    await page.click("#call")
    await page.wait_for_function("window.callweaver.state.status === 'connected'", timeout=10_000)
    call_id = (await page_state(page))["callId"]
    assert call_id in server.calls
    return page, call_id


async def test_the_page_calls_the_bot_and_its_reply_arrives_in_the_browser(
    browser_and_agent: tuple[Any, str, Server],
) -> None:
    browser, host, server = browser_and_agent
    page, call_id = await call_from_page(
        browser, f"http://{host}/webrtc?raw=1&clinic=harbour", server
    )
    # the page's query became the call's parameters
    assert server.calls[call_id][1].ctx.parameters["clinic"] == "harbour"

    # the whole reply (about 7 s of speech) plays in real time after the question
    await page.wait_for_function(
        "window.callweaver.state.events.some(e => e.type === 'reply_end')", timeout=30_000
    )
    await page.wait_for_function(
        "window.callweaver.state.received.voicedSeconds > 5", timeout=10_000
    )
    state = await page_state(page)
    transcripts = [e["text"] for e in state["events"] if e["type"] == "transcript" and e["final"]]
    replies = " ".join(e["text"] for e in state["events"] if e["type"] == "reply")
    assert transcripts and "open" in transcripts[0].lower()
    assert "Saturday" in replies and "Sunday" in replies
    assert state["latencies"] and 0 < state["latencies"][0] < 5000
    shown = await page.inner_text("#log")
    assert transcripts[0] in shown and "Saturday" in shown

    received = state["received"]
    rms = await page.evaluate("window.callweaver.receivedRms()")
    assert received["voicedSeconds"] > 5 and received["peak"] > 0.1 and rms > 0.01, received
    raw = base64.b64decode(await page.evaluate("window.callweaver.receivedAudio()"))
    heard = np.frombuffer(raw, dtype="<f4")
    pcm16 = (np.clip(heard, -1, 1) * 32767).astype("<i2").tobytes()
    rate = int(received["sampleRate"])
    words = await transcribe16k(np.frombuffer(resample(pcm16, rate, 16000), dtype="<i2"))
    assert "saturday" in words and "sunday" in words, words

    # the call button hangs up, and the server ends the call
    await page.click("#call")
    assert (await page_state(page))["status"] == "hung up"
    await eventually(lambda: call_id not in server.calls, within_s=5)
    await page.close()


async def test_closing_the_tab_ends_the_call(browser_and_agent: tuple[Any, str, Server]) -> None:
    browser, host, server = browser_and_agent
    page, call_id = await call_from_page(browser, f"http://{host}/webrtc/?raw=1", server)
    await page.close()
    await eventually(lambda: call_id not in server.calls, within_s=5)
