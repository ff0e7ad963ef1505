"""The serving process: warm-up, /health, /metrics, graceful shutdown, `callweaver serve`."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from ports import free_port

from callweaver.pipelines.config import load_config
from callweaver.server.app import Server, ServerClosing, create_app
from callweaver.testing import ListIO, tone

ROOT = Path(__file__).parent.parent
PARROT = ROOT / "configs" / "default.yaml"


def speech_frames(seconds: float = 1.0) -> list:  # type: ignore[type-arg]
    """Tone bursts the energy of which a VAD takes for speech, as 20 ms input frames."""
    from callweaver.frames import InputAudioFrame

    pcm = tone(seconds, dbfs=-12) + bytes(16000)  # then half a second of silence
    step = 640
    return [
        InputAudioFrame(pcm=pcm[i : i + step], sample_rate=16000, pts_ns=i // 2 * 62_500)
        for i in range(0, len(pcm), step)
    ]


async def test_health_says_starting_then_ready_and_metrics_count_calls() -> None:
    server = Server(load_config(PARROT))
    healthy, details = server.health()
    assert not healthy and details["status"] == "starting"
    await server.warm()
    healthy, details = server.health()
    assert healthy and details["status"] == "ready" and details["active_calls"] == 0
    report = await server.run_call(ListIO(speech_frames()), "test")
    assert report.reason in ("completed", "hangup")
    text = server.metrics.exposition().decode()
    ended = f'callweaver_calls_total{{reason="{report.reason}",transport="test"}} 1.0'
    assert ended in text
    assert 'callweaver_calls_active{transport="test"} 0.0' in text


async def test_shutdown_lets_live_calls_finish_then_ends_them() -> None:
    server = Server(load_config(PARROT), drain_s=0.3)
    await server.warm()
    forever = asyncio.Event()  # the caller never hangs up
    live = asyncio.ensure_future(server.run_call(ListIO(hold_open=forever), "test"))
    await asyncio.sleep(0.05)
    assert server.health()[1]["active_calls"] == 1
    started = time.perf_counter()
    await server.shutdown()
    report = await live
    assert report.reason == "shutdown"
    assert 0.25 < time.perf_counter() - started < 5
    with pytest.raises(ServerClosing):
        await server.run_call(ListIO(), "test")
    healthy, details = server.health()
    assert not healthy and details["status"] == "stopped"


async def test_a_broken_graph_still_serves_health_with_the_reason(tmp_path: Path) -> None:
    config = tmp_path / "broken.yaml"
    config.write_text(
        "name: broken\npipeline:\n  nodes:\n"
        "    - {name: vad, type: energy_vad}\n"
        "    - {name: bot, type: helpers_processors:BrokenModel}\n"
    )
    server = Server(load_config(config))
    await server.warm()  # the warm call starts every node: the missing model shows now
    healthy, details = server.health()
    assert not healthy and details["status"] == "degraded"
    assert "model file missing" in details["warm_up_error"]


def test_callweaver_serve_runs_uvicorn_and_drains_on_sigterm() -> None:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "callweaver", "-v", "serve", str(PARROT), "--port", str(port),
         "--drain-s", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        health = None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                if health.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert health is not None and health.status_code == 200, health
        assert health.json()["deployment"] == "parrot"
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)
        assert metrics.status_code == 200 and "callweaver_stage_latency_seconds" in metrics.text
        proc.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status says it
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
        assert proc.stdout is not None
        log = proc.stdout.read().decode()
        assert "Application shutdown complete" in log, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_the_app_has_health_and_metrics_routes() -> None:
    app = create_app(load_config(PARROT))
    paths = {getattr(r, "path", None) for r in app.routes}
    assert {"/health", "/metrics"} <= paths
