"""Memory of one process holding every offline model, measured in a fresh interpreter.

The child loads each model in turn (psutil RSS after each; a library two models share counts
for the first), then runs two calls of the first question, and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench.offline_agent import ROOT, Json
from bench.offline_agent.calls import LEAD_S
from bench.offline_agent.questions import QUESTIONS, VOICES, Voices, script
from callweaver.transports.wav import write_wav

MEMORY_CHILD = r"""
import json, sys, time
import psutil

proc, steps = psutil.Process(), []

def step(name, load):
    t = time.perf_counter()
    result = load()
    steps.append({"step": name, "seconds": time.perf_counter() - t, "rss": proc.memory_info().rss})
    return result

step("interpreter", lambda: None)

def config():
    from callweaver.pipelines.config import load_config
    return load_config(sys.argv[1])

def silero():
    from callweaver.resources.silero import shared_model
    shared_model()

def whisper():
    from callweaver.resources.whisper import shared_model
    shared_model("tiny.en")

def embeddings():
    from callweaver.processors.reply import AnswersReply
    from callweaver.services.answers import AnswerMatcher
    nodes = dep.graph.nodes.values()
    p = next(n for n in nodes if getattr(n.factory, "func", None) is AnswersReply).factory.args[0]
    AnswerMatcher(p.all_answers, threshold=p.threshold)

def piper():
    from callweaver.resources.piper import shared_voice
    shared_voice()

def call():
    from callweaver.cli import run_async
    from callweaver.pipelines.call import Call
    from callweaver.runtime.clock import MonotonicClock
    from callweaver.transports.file import FileIO

    async def run():
        clock = MonotonicClock()
        io = FileIO.from_wav(sys.argv[2], clock, realtime=True, tail_ms=1500)
        return await Call(dep.graph, clock=clock).run(io), io

    report, io = run_async(run())
    calls.append({"v2v_ms": [t.voice_to_voice_ms for t in report.turns], "said": io.conversation})

dep = step("callweaver imports, config validated", config)
step("silero VAD (onnxruntime)", silero)
step("whisper tiny.en (CTranslate2)", whisper)
step("MiniLM embeddings + the answers' examples", embeddings)
step("piper joe voice", piper)
calls = []
step("one call (the models' first real inputs)", call)
step("a second call", call)
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({"steps": steps, "peak_rss": peak, "calls": calls}))
"""


def memory(args: argparse.Namespace, workdir: Path) -> Json:
    """Every model loaded in turn in a fresh interpreter, then one call."""
    voices = Voices(workdir)
    s = script(voices, VOICES[0], QUESTIONS[:1], LEAD_S, [0.0])
    wav = workdir / "memory-call.wav"
    write_wav(wav, s.pcm)
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(args.config), str(wav)],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        return {"error": done.stderr[-2000:]}
    result: Json = json.loads(done.stdout.strip().splitlines()[-1])
    return result
