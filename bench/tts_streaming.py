"""Reply text into TTS sentence by sentence, or token by token: which speaks sooner?

The reply and speech stages of a cloud agent (an OpenAI-compatible LLM -> the TTS node), every
provider through its real adapter and wire protocol against the test fakes
(``tests/fake_openai.py``, ``fake_elevenlabs.py``, ``fake_azure.py``) in a separate process
pinned to the other core. The LLM sends its first token ``LLM_DELAY_S`` after the request,
then one word every ``1 / TOKENS_PER_S`` seconds; the TTS fakes send their first audio
``TTS_DELAY_S`` after they have something to speak. The replies mix a long first sentence
with short ones (:data:`REPLIES`).

Measured: first TTS audio after the first LLM token (``first_tts_audio - first_token``), per
mode:

- **sentence**: the reply node sends sentences, the TTS node synthesizes each one
  (``lead_clause`` on), ElevenLabs over HTTP and Azure with SSML (today's default);
- **stream**: the reply node sends its tokens (``stream_tokens``), the TTS node feeds them
  into one provider stream (``stream_text``): ElevenLabs' ``stream-input`` WebSocket
  (``chunk_length_schedule`` [50], the first sentence flushed at its end) and Azure's text
  stream (the fake speaks each sentence as soon as it is complete, or 80 characters without
  one: a model of the service, whose buffering is not documented).

What the fakes cannot show: a real service's synthesis time, which grows with the text it is
asked to speak at once, and its prosody across chunks. ``python -m bench.tts_streaming
[--quick]`` writes its section of docs/benchmarks.md and bench/results/tts_streaming.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from bench.docs import write_section
from bench.fakes import FakesProcess
from callweaver.frames.text import ReplyEndFrame, TranscriptFrame
from callweaver.pipelines.call import Call
from callweaver.pipelines.config import Deployment, parse_config
from callweaver.runtime.latency import Stage, percentile
from callweaver.testing import ListIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the fakes

BEGIN, END = "<!-- tts-streaming:begin -->", "<!-- tts-streaming:end -->"
LLM_DELAY_S = 0.20
TOKENS_PER_S = 40.0
TTS_DELAY_S = 0.15
KEY = "bench-key-0123456789"
VOICE = "AAAAAAAAAAAAAAAAAAAA"
REPLIES = (
    # a long first sentence
    "Thank you for calling Harbour Street Clinic, we are open from eight in the morning "
    "to six in the evening on weekdays. Is there anything else?",
    "Our clinic is at forty two Harbour Street on the second floor next to the pharmacy, "
    "with free parking behind the building. Do you need directions?",
    # short first sentences
    "Sure. I can book you in with Doctor Patel on Tuesday at ten in the morning, or on "
    "Thursday afternoon if that suits you better.",
    "Yes, we do. We accept most major insurance plans. Please bring your card with you.",
)
MODES = ("sentence", "stream")
PROVIDERS = ("elevenlabs", "azure")


# -- the providers' process --------------------------------------------------------------------


async def serve_fakes() -> None:
    """Run the fakes until stdin closes; print their addresses as one JSON line."""
    from fake_azure import FakeAzure
    from fake_azure import Script as AzureScript
    from fake_elevenlabs import FakeElevenLabs
    from fake_elevenlabs import Reply as SpeechReply
    from fake_openai import FakeOpenAI
    from fake_openai import Reply as LLMReply

    llm = FakeOpenAI(LLMReply(REPLIES[0], first_delay=LLM_DELAY_S, delay=1 / TOKENS_PER_S))
    for i, reply in enumerate(REPLIES):
        llm.by_model[f"reply-{i}"] = LLMReply(
            reply, first_delay=LLM_DELAY_S, delay=1 / TOKENS_PER_S
        )
    eleven = FakeElevenLabs(api_key=KEY, default=SpeechReply(first_delay=TTS_DELAY_S))
    azure = FakeAzure(key=KEY, default=AzureScript(first_delay=TTS_DELAY_S))
    servers = (llm, eleven, azure)
    for server in servers:
        await server.start()
    print(json.dumps({"llm": llm.base_url, "elevenlabs": eleven.base_url,
                      "azure": azure.host}), flush=True)  # fmt: skip
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for server in servers:
        await server.stop()


def deployment(addresses: dict[str, str], provider: str, mode: str, reply: int) -> Deployment:
    stream = mode == "stream"
    if provider == "elevenlabs":
        tts: dict[str, Any] = {
            "type": "elevenlabs", "api_key": KEY, "voice_id": VOICE,
            "base_url": addresses["elevenlabs"], "output_format": "pcm_16000",
            "transport": "websocket" if stream else "http",
        }  # fmt: skip
    else:
        tts = {"type": "azure", "key": KEY, "host": addresses["azure"],
               "output_format": "raw-16khz-16bit-mono-pcm"}  # fmt: skip
    config = {
        "name": f"tts-{provider}-{mode}",
        "pipeline": {"nodes": [
            {"name": "llm", "type": "llm", "params": {"stream_tokens": stream, "providers": [
                {"type": "openai", "base_url": addresses["llm"], "model": f"reply-{reply}",
                 "api_key": KEY}]}},
            {"name": "tts", "type": "tts", "params": {
                "providers": [tts], "stream_text": stream, "first_audio_timeout_s": 3.0}},
        ]},
    }  # fmt: skip
    return parse_config(json.dumps(config), f"{config['name']}.yaml")


async def one_turn(dep: Deployment) -> float | None:
    """A call of one turn: the caller's transcript in, the reply spoken; first TTS audio
    after the first token, in ms."""
    ended = asyncio.Event()
    io = ListIO(
        [TranscriptFrame(call_id="bench", turn_id=1, text="When are you open?", final=True)],
        hold_open=ended,
    )
    io.on_write = lambda f: ended.set() if isinstance(f, ReplyEndFrame) else None
    async with asyncio.timeout(30):
        report = await Call(dep.graph).run(io)
    if report.errors:
        print(f"errors: {report.errors}", file=sys.stderr)
    (turn,) = report.turns
    token, audio = turn.marks.get(Stage.FIRST_TOKEN), turn.marks.get(Stage.FIRST_TTS_AUDIO)
    if token is None or audio is None:
        return None
    return (audio - token) / 1e6


def stats(values: Sequence[float | None]) -> dict[str, float | None]:
    got = [v for v in values if v is not None]
    if not got:
        return {"n": 0, "p50": None, "p95": None}
    return {"n": len(got), "p50": percentile(got, 50), "p95": percentile(got, 95)}


async def measure(addresses: dict[str, str], rounds: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for provider in PROVIDERS:
        for mode in MODES:
            deps = [deployment(addresses, provider, mode, i) for i in range(len(REPLIES))]
            for dep in deps:  # warm: the fakes' synthesized text, connections, fallback audio
                await one_turn(dep)
            rows: dict[str, list[float | None]] = {"long": [], "short": []}
            for _ in range(rounds):
                for i, dep in enumerate(deps):
                    rows["long" if i < 2 else "short"].append(await one_turn(dep))
            out[f"{provider}/{mode}"] = {
                "all": stats(rows["long"] + rows["short"]),
                "long": stats(rows["long"]),
                "short": stats(rows["short"]),
            }
            s = out[f"{provider}/{mode}"]["all"]
            print(f"[{provider} {mode}] first audio after first token p50 {s['p50']:.0f} ms, "
                  f"p95 {s['p95']:.0f} ms", file=sys.stderr, flush=True)  # fmt: skip
    return out


# -- report ------------------------------------------------------------------------------------


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def render(r: dict[str, Any]) -> str:
    lines = [
        BEGIN,
        "## Reply text into TTS: sentence by sentence or token by token",
        "",
        f"`python -m bench.tts_streaming` on {r['date']}, {r['cores']} cores. An "
        f"OpenAI-compatible LLM (first token after {LLM_DELAY_S * 1000:.0f} ms, then "
        f"{TOKENS_PER_S:.0f} words a second) -> the TTS node, against the wire fakes in another "
        f"process (first audio {TTS_DELAY_S * 1000:.0f} ms after they have text to speak). "
        f"{len(REPLIES)} replies, two with a long first sentence (about 110 characters), two "
        f"with a short one; {r['rounds']} rounds of each. First TTS audio after the first "
        "token, ms:",
        "",
        "| provider | mode | p50 | p95 | long first sentence p50 | short first sentence p50 |",
        "|---|---|---|---|---|---|",
    ]
    for key, m in r["modes"].items():
        provider, mode = key.split("/")
        how = {"sentence": "sentences (today)", "stream": "tokens into one stream"}[mode]
        lines.append(
            f"| {provider} | {how} | {fmt(m['all']['p50'])} | {fmt(m['all']['p95'])} | "
            f"{fmt(m['long']['p50'])} | {fmt(m['short']['p50'])} |"
        )
    verdicts, short = [], []
    for provider in PROVIDERS:
        a, b = r["modes"][f"{provider}/sentence"], r["modes"][f"{provider}/stream"]
        if a["all"]["p50"] is not None and b["all"]["p50"] is not None:
            verdicts.append(f"{provider} {a['all']['p50'] - b['all']['p50']:+.0f} ms at p50")
        if a["short"]["p50"] is not None and b["short"]["p50"] is not None:
            short.append(f"{provider} {a['short']['p50'] - b['short']['p50']:+.0f} ms")
    lines += [
        "",
        f"Streaming saves (sentence p50 - stream p50): {', '.join(verdicts)}. The gain is the "
        "time the LLM takes to write a long first sentence past the point where the provider "
        "can start (ElevenLabs: 50 characters or the sentence's end). A short first sentence "
        f"is spoken at its end in both modes ({', '.join(short)}: one stream costs a few "
        "milliseconds more than a sentence request on a warm connection). `stream_text` is "
        "on by default in the `tts` node (it changes nothing for piper, flite or espeak); the "
        "`llm` node sends tokens "
        "only with `stream_tokens: true`. These are the fakes' delays, not the services': "
        "where a real service's time to first audio grows with the text it is given at once "
        "(the reason for `lead_clause`), streaming gains more; its prosody across chunks is "
        "not measured.",
        END,
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fakes", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="1 round, no writes")
    args = parser.parse_args(argv)
    if args.fakes:
        asyncio.run(serve_fakes())
        return
    if args.quick:
        args.rounds = 1
    started = time.perf_counter()
    cores = os.sched_getaffinity(0)
    fakes = FakesProcess("bench.tts_streaming", max(cores) if len(cores) > 1 else None)
    try:
        if len(cores) > 1:
            os.sched_setaffinity(0, {min(cores)})
        try:
            modes = asyncio.run(measure(fakes.addresses, args.rounds))
        finally:
            os.sched_setaffinity(0, cores)
    finally:
        fakes.close()
    results = {
        "modes": modes, "rounds": args.rounds, "date": date.today().isoformat(),
        "cores": os.cpu_count(), "python": platform.python_version(),
        "seconds": time.perf_counter() - started,
    }  # fmt: skip
    section = render(results)
    print(section)
    if not args.quick:
        write_section(args.out, BEGIN, END, section)
        (ROOT / "bench" / "results" / "tts_streaming.json").write_text(
            json.dumps(results, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
