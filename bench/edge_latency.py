"""Voice-to-voice at the transport edge: the file transport, Twilio Media Streams and WebRTC.

The offline agent of ``configs/local.yaml`` answers the same flite questions through three
transports, one turn per call, rotating their order so that machine noise hits all of them:

- ``file``: a real-time paced :class:`FileIO`, the way ``callweaver simulate`` runs a call;
  voice-to-voice is the call report's ``speech_end -> first_audio_out``.
- ``twilio``: uvicorn on 127.0.0.1 serving ``create_app`` and a WebSocket peer playing Twilio
  (20 ms mu-law messages at real pace, marks echoed when played). Three figures: the call
  report's, the server's edge (first outbound ``media`` sent, as the server logs it), and the
  peer's own: when it sent the message holding the question's last voiced sample (known from
  the script) to when it received the reply's first ``media`` message.
- ``webrtc``: the same server's ``POST /webrtc/offer`` and a Python caller
  (:class:`~callweaver.transports.webrtc.caller.WebRTCCaller`: aiortc, opus, loopback ICE)
  speaking at real pace. The server's edge is the reply track releasing its first audio frame;
  the peer's, the send of the frame holding the question's last sample to the arrival of the
  first decoded reply frame that is not silence.

``python -m bench.edge_latency [--turns N]`` writes its section of docs/benchmarks.md and
bench/results/edge_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import uvicorn
import yaml
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bench.docs import write_section
from bench.offline_agent.questions import QUESTIONS, RATE, VOICES, Voices
from callweaver.audio.mulaw import pcm16_to_ulaw
from callweaver.audio.resample import resample
from callweaver.pipelines.call import Call, CallReport
from callweaver.pipelines.config import Deployment, load_config
from callweaver.runtime.clock import MonotonicClock
from callweaver.runtime.latency import Stage, percentile
from callweaver.server.app import Server, create_app
from callweaver.transports.file import FileIO
from callweaver.transports.twilio import wire
from callweaver.transports.wav import Pcm
from callweaver.transports.webrtc.caller import WebRTCCaller

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- edge-latency:begin -->", "<!-- edge-latency:end -->"
LEAD_S = 0.5  # silence before the question
TAIL_S = 2.0  # file transport: silence after it, while the reply starts
AFTER_REPLY_S = 0.5  # twilio peer: hang up this long after the first reply audio
CALL_TIMEOUT_S = 20.0
CHUNK = 160  # 20 ms of 8 kHz mu-law
SILENCE = b"\xff" * CHUNK
GOAL_MS = 10.0
REPLY_RMS = 30.0  # a decoded WebRTC frame louder than this is reply audio, not silence
TRANSPORTS = ("file", "twilio", "webrtc")


def _ms(a_ns: int | None, b_ns: int | None) -> float | None:
    return None if a_ns is None or b_ns is None else (b_ns - a_ns) / 1e6


def _v2v(report: CallReport) -> tuple[int | None, int | None, float | None]:
    """(turn id, speech_end ns, voice-to-voice ms) of the call's first answered turn."""
    for t in report.turns:
        if t.voice_to_voice_ms is not None:
            return t.turn_id, t.marks.get(Stage.SPEECH_END), t.voice_to_voice_ms
    return None, None, None


# -- the file transport ------------------------------------------------------------------------


async def file_turn(dep: Deployment, speech: np.ndarray) -> dict[str, Any]:
    pcm = np.concatenate([np.zeros(round(LEAD_S * RATE), np.int16), speech]).tobytes()
    clock = MonotonicClock()
    io = FileIO(Pcm(pcm, RATE), clock, realtime=True, tail_ms=round(TAIL_S * 1000))
    report = await Call(dep.graph, clock=clock).run(io)
    _, _, v2v = _v2v(report)
    return {"v2v_ms": v2v, "turns": len(report.turns)}


# -- the Twilio peer ---------------------------------------------------------------------------


@dataclass
class Peer:
    """Twilio's side of one stream, compact: the line at real pace, reply audio "played" on
    the wall clock and its marks echoed once played."""

    ws: Any
    n: int
    sent_at: dict[int, float] = field(default_factory=dict)  # chunk index -> perf_counter
    first_media_at: float | None = None
    play_end: float = 0.0
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def sid(self) -> str:
        return f"MZ{self.n:032x}"

    @property
    def call_sid(self) -> str:
        return f"CA{self.n:032x}"

    async def _echo(self, name: str, at: float) -> None:
        await asyncio.sleep(max(at - time.perf_counter(), 0))
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(
                wire.Mark(stream_sid=self.sid, name=name, sequence=next(self.seq)).to_json()
            )

    async def read(self) -> None:
        echoes: set[asyncio.Task[None]] = set()
        with contextlib.suppress(ConnectionClosed):
            async for text in self.ws:
                now = time.perf_counter()
                frame = wire.parse_outbound(text)
                if isinstance(frame, wire.OutboundMedia):
                    self.first_media_at = self.first_media_at or now
                    self.play_end = max(self.play_end, now) + len(frame.payload) / 8000
                elif isinstance(frame, wire.OutboundMark):
                    task = asyncio.create_task(self._echo(frame.name, self.play_end))
                    echoes.add(task)
                    task.add_done_callback(echoes.discard)
                elif isinstance(frame, wire.Clear):
                    self.play_end = now
        for task in list(echoes):
            task.cancel()

    async def line(self, ulaw: bytes) -> None:
        """The caller's line: ``ulaw`` then silence, one message every 20 ms (each sent once
        its 20 ms have been "spoken"), until the reply has played for a while."""
        chunks = [ulaw[i : i + CHUNK].ljust(CHUNK, b"\xff") for i in range(0, len(ulaw), CHUNK)]
        t0 = time.perf_counter()
        for i in itertools.count():
            await asyncio.sleep(max(t0 + (i + 1) * 0.02 - time.perf_counter(), 0))
            payload = chunks[i] if i < len(chunks) else SILENCE
            media = wire.Media(stream_sid=self.sid, chunk=i + 1, timestamp_ms=i * 20,
                               payload=payload, sequence=next(self.seq))  # fmt: skip
            self.sent_at[i] = time.perf_counter()
            await self.ws.send(media.to_json())
            first = self.first_media_at
            if first is not None and time.perf_counter() - first > AFTER_REPLY_S:
                return
            if time.perf_counter() - t0 > CALL_TIMEOUT_S:
                return


async def twilio_turn(
    host: str, n: int, speech: np.ndarray, captured: dict[str, Any]
) -> dict[str, Any]:
    lead = np.zeros(round(LEAD_S * RATE), np.int16)
    pcm8k = resample(np.concatenate([lead, speech]).tobytes(), RATE, 8000)
    ulaw = pcm16_to_ulaw(pcm8k)
    speech_end = len(pcm8k) // 2  # samples at 8 kHz: the speech is trimmed to its last voiced one
    last_voiced = (speech_end - 1) // CHUNK
    async with connect(f"ws://{host}/twilio/stream") as ws:
        peer = Peer(ws, n)
        ended = captured[peer.call_sid] = asyncio.get_running_loop().create_future()
        reader = asyncio.create_task(peer.read())
        await ws.send(wire.Connected().to_json())
        start = wire.Start(stream_sid=peer.sid, call_sid=peer.call_sid, account_sid="AC" + "0" * 32,
                           sequence=next(peer.seq))  # fmt: skip
        await ws.send(start.to_json())
        await peer.line(ulaw)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(wire.Stop(stream_sid=peer.sid, call_sid=peer.call_sid).to_json())
        try:
            report, io = await asyncio.wait_for(ended, 15)
        finally:
            captured.pop(peer.call_sid, None)
            await ws.close()
            await reader
    turn, speech_end_ns, v2v = _v2v(report)
    out_ns = io.edge.first_media_out_ns.get(turn) if turn is not None else None
    first = peer.first_media_at
    sent = peer.sent_at.get(last_voiced)
    return {
        "v2v_ms": v2v,
        "server_edge_ms": _ms(speech_end_ns, out_ns),
        "peer_edge_ms": None if first is None or sent is None else (first - sent) * 1000,
        "turns": len(report.turns),
    }


# -- the WebRTC caller ---------------------------------------------------------------------------


async def webrtc_turn(host: str, speech: np.ndarray, captured: dict[str, Any]) -> dict[str, Any]:
    caller = WebRTCCaller(host, addresses=["127.0.0.1"])
    await caller.call()
    assert caller.call_id is not None
    ended = captured[caller.call_id] = asyncio.get_running_loop().create_future()
    try:
        lead = np.zeros(round(LEAD_S * RATE), np.int16)
        caller.mic.say(np.concatenate([lead, speech]).tobytes(), RATE)
        t0 = time.perf_counter()
        first: int | None = None
        while time.perf_counter() - t0 < CALL_TIMEOUT_S:
            await asyncio.sleep(0.02)
            spoken = caller.mic.spoken_end_ns
            if spoken is not None and first is None:
                first = caller.received.voiced_since(spoken, rms=REPLY_RMS)
            if first is not None and time.monotonic_ns() - first > AFTER_REPLY_S * 1e9:
                break
    finally:
        await caller.hangup()
    try:
        report, io = await asyncio.wait_for(ended, 15)
    finally:
        captured.pop(caller.call_id, None)
    turn, speech_end_ns, v2v = _v2v(report)
    out_ns = io.edge.first_media_out_ns.get(turn) if turn is not None else None
    return {
        "v2v_ms": v2v,
        "server_edge_ms": _ms(speech_end_ns, out_ns),
        "peer_edge_ms": _ms(caller.mic.spoken_end_ns, first),
        "turns": len(report.turns),
    }


@contextlib.asynccontextmanager
async def serving(dep: Deployment) -> Any:
    """uvicorn serving the deployment's app on a free port; yields (host, captured reports)."""
    app = create_app(dep)
    server: Server = app.state.server
    captured: dict[str, Any] = {}

    def ended(transport: str, io: Any, report: CallReport) -> None:
        waiting = captured.get(report.call_id)
        if waiting is not None and not waiting.done():
            waiting.set_result((report, io))

    server.on_call_end.append(ended)
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(uv.serve())
    async with asyncio.timeout(120):
        while not uv.started:
            if task.done():
                raise RuntimeError("uvicorn did not start")
            await asyncio.sleep(0.05)
    port = uv.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}", captured
    finally:
        uv.should_exit = True
        await asyncio.wait_for(task, 30)


def deployment(workdir: Path) -> Deployment:
    data = yaml.safe_load((ROOT / "configs" / "local.yaml").read_text())
    data.setdefault("transports", {})["twilio"] = {"validate_signature": False}
    data["transports"]["webrtc"] = {"ice_addresses": ["127.0.0.1"]}
    path = workdir / "edge-latency.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


# -- the run -----------------------------------------------------------------------------------


def stats(values: list[float | None]) -> dict[str, Any]:
    got = [v for v in values if v is not None]
    if not got:
        return {"n": 0, "p50": None, "p95": None}
    return {"n": len(got), "p50": percentile(got, 50), "p95": percentile(got, 95)}


async def measure(turns: int, *, log: bool = True) -> dict[str, Any]:
    """``turns`` questions through each transport, alternating which goes first."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        dep = deployment(Path(tmp))
        voices = Voices(Path(tmp))
        async with serving(dep) as (host, captured):
            warm = voices.say(QUESTIONS[0].text, VOICES[0])  # load what the warm call did not
            await file_turn(dep, warm)
            await twilio_turn(host, 10_000, warm, captured)
            await webrtc_turn(host, warm, captured)
            for i in range(turns):
                q = QUESTIONS[i % len(QUESTIONS)]
                speech = voices.say(q.text, VOICES[i % len(VOICES)])
                order = TRANSPORTS[i % 3 :] + TRANSPORTS[: i % 3]
                row: dict[str, Any] = {"question": q.text, "voice": VOICES[i % len(VOICES)]}
                for kind in order:
                    if kind == "file":
                        row["file"] = await file_turn(dep, speech)
                    elif kind == "twilio":
                        row["twilio"] = await twilio_turn(host, i + 1, speech, captured)
                    else:
                        row["webrtc"] = await webrtc_turn(host, speech, captured)
                rows.append(row)
                if log:
                    f, t, w = row["file"], row["twilio"], row["webrtc"]
                    print(f"[{i + 1}/{turns}] {q.text!r}: file {fmt(f['v2v_ms'])}, twilio "
                          f"{fmt(t['v2v_ms'])} / server edge {fmt(t['server_edge_ms'])} / peer "
                          f"edge {fmt(t['peer_edge_ms'])} ms, webrtc {fmt(w['v2v_ms'])} / "
                          f"{fmt(w['server_edge_ms'])} / {fmt(w['peer_edge_ms'])} ms",
                          flush=True)  # fmt: skip
    file_v2v = stats([r["file"]["v2v_ms"] for r in rows])
    summary: dict[str, Any] = {"file_v2v": file_v2v}
    for transport in ("twilio", "webrtc"):
        for figure in ("v2v", "server_edge", "peer_edge"):
            key = f"{transport}_{figure}"
            summary[key] = stats([r[transport][f"{figure}_ms"] for r in rows])
            for p in ("p50", "p95"):
                a, b = summary[key][p], file_v2v[p]
                summary[key][f"minus_file_{p}"] = None if a is None or b is None else a - b
        pairs: list[float | None] = []
        for r in rows:
            edge, file = r[transport]["peer_edge_ms"], r["file"]["v2v_ms"]
            pairs.append(None if edge is None or file is None else edge - file)
        summary[f"paired_{transport}_peer_edge_minus_file"] = stats(pairs)
    return {"turns": rows, "summary": summary}


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def render(results: dict[str, Any]) -> str:
    s = results["summary"]
    head = "| transport | figure | turns | p50 ms | p95 ms | minus file p50 / p95 ms |"
    lines = [
        BEGIN,
        "## Voice-to-voice at the transport edge: file vs Twilio Media Streams vs WebRTC",
        "",
        f"`python -m bench.edge_latency` on {results['date']}, {results['cores']} cores: the "
        f"offline agent of `configs/local.yaml`, {results['n']} flite questions per transport, "
        "one turn per call, transports in rotating order. Twilio: uvicorn on 127.0.0.1 and a "
        "WebSocket peer sending 20 ms mu-law messages at real pace and echoing marks once "
        "played. WebRTC: the same server's offer endpoint and a Python caller (aiortc, opus, "
        "loopback ICE) speaking at real pace. Server, peers and models share one process and "
        "event loop.",
        "",
        head,
        "|---|---|---|---|---|---|",
    ]
    figures = [("file", "call report (speech_end -> first_audio_out)", "file_v2v")]
    for transport, sent, received in (
        ("twilio", "first media sent", "last voiced media sent -> first media received"),
        ("webrtc", "first reply frame released", "last voiced frame sent -> first voiced "
         "frame decoded"),
    ):  # fmt: skip
        figures += [
            (transport, "call report (speech_end -> first_audio_out)", f"{transport}_v2v"),
            (transport, f"server edge (speech_end -> {sent})", f"{transport}_server_edge"),
            (transport, f"peer edge ({received})", f"{transport}_peer_edge"),
        ]
    for transport, figure, key in figures:
        r = s[key]
        diff = (
            "" if key == "file_v2v" else f"{fmt(r['minus_file_p50'])} / {fmt(r['minus_file_p95'])}"
        )
        lines.append(
            f"| {transport} | {figure} | {r['n']} | {fmt(r['p50'])} | {fmt(r['p95'])} | {diff} |"
        )
    paired = s["paired_twilio_peer_edge_minus_file"]
    paired_webrtc = s["paired_webrtc_peer_edge_minus_file"]
    d = s["twilio_peer_edge"]["minus_file_p50"]
    verdict = "met" if d is not None and d <= GOAL_MS else "not met"
    lines += [
        "",
        f"Goal: the Twilio path adds at most {GOAL_MS:.0f} ms over the file path at p50 (peer "
        f"edge minus file): **{fmt(d)} ms, {verdict}**. Per question (same question, all "
        f"transports) the difference has p50 {fmt(paired['p50'])} ms, p95 "
        f"{fmt(paired['p95'])} ms; for WebRTC p50 {fmt(paired_webrtc['p50'])} ms, p95 "
        f"{fmt(paired_webrtc['p95'])} ms.",
        "The peers' figures start at the send of the 20 ms chunk holding the question's "
        "last sample above the trim threshold (|x| > 100 of 32768), sent once its 20 ms have "
        "been spoken; the server's `speech_end` is where silero's voiced probability ends, "
        "often earlier in the quiet tail of the last word, so the two edges differ by that, "
        "not only by the transport. WebRTC's peer edge also holds opus encoding and decoding "
        "and aiortc's jitter buffer on the way in and out; the first reply frame counted is "
        f"the first decoded one with RMS above {REPLY_RMS:.0f} (of 32768).",
        END,
    ]
    return "\n".join(lines)


def run(turns: int, *, log: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    results = asyncio.run(measure(turns, log=log))
    results.update(
        date=date.today().isoformat(),
        cores=os.cpu_count(),
        n=turns,
        python=platform.python_version(),
        seconds=time.perf_counter() - started,
    )
    return results


def quick() -> dict[str, Any]:
    """One turn per transport (the smoke test's)."""
    summary: dict[str, Any] = run(1, log=False)["summary"]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="one turn per transport, no writes")
    args = parser.parse_args()
    results = run(1 if args.quick else args.turns)
    section = render(results)
    print(section)
    if not args.quick:
        write_section(args.out, BEGIN, END, section)
        out = ROOT / "bench" / "results" / "edge_latency.json"
        out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
