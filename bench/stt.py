"""Local speech recognition: what the short encoder window and speculative decoding buy.

    python -m bench.stt [--out docs/benchmarks.md] [--quick]

1. Window. Whisper tiny.en decodes each utterance twice, side by side in one process: with
   whisper's fixed 30 s encoder window (``window: full``) and with the utterance plus 1 s
   (``window: short``, the default). Utterances: caller questions spoken by four flite voices
   (word error rate against the text), and the human recordings of the moonshine-voice wheel
   cut at their pauses into utterances of at most 12 s (no reference text ships with them:
   the full window's transcript is the reference, so the figure is the *change* the short
   window makes).
2. Speculation. The VAD and STT nodes of ``configs/local.yaml`` run as a real call, paced in
   real time, on caller questions; the final transcript's time after the end of speech is
   compared with ``speculative`` on and off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from bench import vad_accuracy as va
from bench.corpus import edit_distance, words
from bench.docs import write_section
from callweaver.audio.resample import resample
from callweaver.pipelines.call import Call
from callweaver.pipelines.config import parse_config
from callweaver.resources import whisper
from callweaver.runtime.clock import MonotonicClock
from callweaver.runtime.latency import Stage, percentile
from callweaver.transports.file import FileIO
from callweaver.transports.wav import read_wav

ROOT = Path(__file__).parent.parent
BEGIN, END = "<!-- stt:begin -->", "<!-- stt:end -->"
VOICES = ("rms", "awb", "kal16", "slt")
QUESTIONS = (
    "What time are you open on Saturday?",
    "Where is the clinic located?",
    "Is there parking near the building?",
    "I would like to book an appointment with a doctor.",
    "I need to cancel my appointment for tomorrow.",
    "Can I talk to a real person please?",
    "Do you accept my health insurance?",
    "How much does a regular check-up cost?",
    "Are you open on Sunday afternoons?",
    "My name is Margaret Thompson and I was born in nineteen eighty two.",
    "Could you move my appointment to Thursday at three in the afternoon?",
    "Hello, I think I left my umbrella in the waiting room yesterday.",
)


def flite(text: str, voice: str, folder: Path) -> Path:
    path = folder / f"{abs(hash((text, voice)))}.wav"
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True)
    return path


def pcm16k(path: Path) -> bytes:
    audio = read_wav(path)
    return (
        audio.data if audio.sample_rate == 16000 else resample(audio.data, audio.sample_rate, 16000)
    )


def floats(pcm: bytes) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768


def human_utterances(max_s: float = 12.0) -> list[tuple[str, bytes]]:
    out = []
    for name, path in va.recordings().items():
        if not name.startswith("human"):
            continue
        pcm = pcm16k(path)
        samples = np.frombuffer(pcm, dtype="<i2")
        segments = va.reference_segments(samples, 16000, stop_s=0.5, start_s=0.06)
        start, end = None, None
        for a, b in segments:
            if start is None:
                start = a
            elif b - start > max_s:
                out.append((name, samples[int(start * 16000) : int(end * 16000)].tobytes()))
                start = a
            end = b + 0.2
        if start is not None and end is not None:
            out.append((name, samples[int(start * 16000) : int(end * 16000)].tobytes()))
    return out


async def window(quick: bool) -> dict[str, Any]:
    model = whisper.shared_model("tiny.en")
    rows: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = [
            (q, pcm16k(flite(q, VOICES[i % len(VOICES)], Path(tmp))))
            for i, q in enumerate(QUESTIONS[: 6 if quick else None])
        ]
    human = human_utterances()[: 4 if quick else None]
    for kind, items in (("synthetic", synthetic), ("human", human)):
        stats: dict[str, list[float]] = {
            k: [] for k in ("full_ms", "short_ms", "full_err", "short_err", "change", "n")
        }
        for ref, pcm in items:
            audio = floats(pcm)
            full = await model.transcribe(audio, window="full")
            short = await model.transcribe(audio, window="short")
            stats["full_ms"].append(full.compute_s * 1000)
            stats["short_ms"].append(short.compute_s * 1000)
            if kind == "synthetic":
                stats["full_err"].append(edit_distance(words(ref), words(full.text)))
                stats["short_err"].append(edit_distance(words(ref), words(short.text)))
                stats["n"].append(len(words(ref)))
            else:
                stats["change"].append(edit_distance(words(full.text), words(short.text)))
                stats["n"].append(len(words(full.text)))
        rows[kind] = stats
    return {
        kind: {
            "utterances": len(s["full_ms"]),
            "full_ms_p50": percentile(s["full_ms"], 50),
            "short_ms_p50": percentile(s["short_ms"], 50),
            "full_ms_p95": percentile(s["full_ms"], 95),
            "short_ms_p95": percentile(s["short_ms"], 95),
            "full_wer": sum(s["full_err"]) / sum(s["n"]) if s["full_err"] else None,
            "short_wer": sum(s["short_err"]) / sum(s["n"]) if s["short_err"] else None,
            "change_vs_full": sum(s["change"]) / sum(s["n"]) if s["change"] else None,
        }
        for kind, s in rows.items()
    }


async def speculation(quick: bool) -> dict[str, Any]:
    """final_transcript - speech_end per turn, speculative on and off, one call per question
    and mode (alternating, so that machine noise hits both alike)."""
    results: dict[str, list[float]] = {"on": [], "off": []}
    questions = QUESTIONS[: 4 if quick else 10]
    graphs = {mode: vad_and_stt(speculative=mode == "on") for mode in results}
    with tempfile.TemporaryDirectory() as tmp:
        files = [flite(q, VOICES[i % len(VOICES)], Path(tmp)) for i, q in enumerate(questions)]
        for path in files:
            for mode, graph in graphs.items():
                clock = MonotonicClock()
                io = FileIO.from_wav(path, clock, realtime=True, tail_ms=600)
                report = await Call(graph, clock=clock).run(io)
                for turn in report.turns:
                    v = turn.since_speech_end_ms(Stage.FINAL_TRANSCRIPT)
                    if v is not None:
                        results[mode].append(v)
    return {
        mode: {"turns": len(v), "p50": percentile(v, 50), "p95": percentile(v, 95)}
        for mode, v in results.items()
        if v
    }


def vad_and_stt(*, speculative: bool) -> Any:
    """The graph of ``configs/local.yaml`` cut after its STT node."""
    data = yaml.safe_load((ROOT / "configs" / "local.yaml").read_text())
    nodes = [n for n in data["pipeline"]["nodes"] if n["name"] in ("vad", "stt")]
    for node in nodes:
        if node["name"] == "stt":
            node["params"]["speculative"] = speculative
    data["pipeline"]["nodes"] = nodes
    return parse_config(yaml.safe_dump(data), "configs/local.yaml (vad + stt)").graph


def render(results: dict[str, Any]) -> str:
    w, s = results["window"], results["speculation"]
    lines = [
        BEGIN,
        "## Local STT: short encoder window and speculative decoding",
        "",
        f"`python -m bench.stt` on {results['date']}, {results['cores']} cores, whisper tiny.en "
        "(int8, 2 threads).",
        "",
        "| utterances | n | full window p50 / p95 ms | short window p50 / p95 ms | WER full "
        "| WER short | words changed vs full |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind, r in w.items():
        fmt = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731
        lines.append(
            f"| {kind} | {r['utterances']} | {r['full_ms_p50']:.0f} / {r['full_ms_p95']:.0f} | "
            f"{r['short_ms_p50']:.0f} / {r['short_ms_p95']:.0f} | {fmt(r['full_wer'])} | "
            f"{fmt(r['short_wer'])} | {fmt(r['change_vs_full'])} |"
        )
    lines += [
        "",
        "Final transcript after the end of caller speech (VAD `stop_ms` 200 included), real-time "
        "paced calls of the VAD and STT nodes of `configs/local.yaml`:",
        "",
        "| speculative | turns | p50 ms | p95 ms |",
        "|---|---|---|---|",
    ]
    for mode, r in s.items():
        lines.append(f"| {mode} | {r['turns']} | {r['p50']:.0f} | {r['p95']:.0f} |")
    lines.append(END)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "date": date.today().isoformat(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    started = time.perf_counter()
    results["window"] = asyncio.run(window(args.quick))
    results["speculation"] = asyncio.run(speculation(args.quick))
    results["seconds"] = time.perf_counter() - started
    section = render(results)
    print(section)
    if not args.quick:
        write_section(args.out, BEGIN, END, section)
        out = ROOT / "bench" / "results" / "stt.json"
        out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
