"""What the smart end of turn costs and what it saves, against plain silence endpoints.

    python -m bench.turn_endpoint [--out docs/benchmarks.md] [--max-seconds 110]

Cost: the smart-turn model's load time and memory (in a fresh child process), and its time per
decision (feature extraction + inference) on this machine, alone and with several calls
deciding at once (they queue on the model's one worker thread).

Savings: utterances with mid-sentence pauses and known true ends, run through the silero VAD as
a real actor (``run_processor``) under each endpointing setting:

- espeak: sentences synthesized whole by espeak-ng (three voices), then cut at a word boundary
  inside the sentence and a pause of 400-1200 ms inserted there, so the words before the pause
  keep their mid-sentence prosody; plus ``examples/audio/caller.wav`` (two complete sentences);
- human: the moonshine-voice wheel's ``two_cities.wav``, a reading of the first sentence of
  *A Tale of Two Cities* (one 119-word sentence: every pause inside it is mid-sentence, the end
  is the true end), and ``beckett.wav`` ("Ever tried. Ever failed. No matter. ..."): six short
  complete sentences, whose pauses are not errors to end at; reported apart.

An endpoint whose speech ended at a mid-sentence pause is *premature*. Endpoint latency at a
true end is counted from the end of the last voiced window (what the VAD heard as the end of
speech) to the endpoint: the audio time at which the VAD decided, plus the decision's wall
time when the model ran (silero's own compute is well under a millisecond per window).
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench import vad_accuracy as va
from bench.docs import write_section
from callweaver.audio.resample import resample
from callweaver.frames import EndOfTurnFrame, InputAudioFrame, MetricsFrame, SpeechStoppedFrame
from callweaver.processors.silero_vad import SileroVAD, SileroVADParams
from callweaver.processors.vad import Window
from callweaver.runtime.latency import percentile
from callweaver.testing import run_processor
from callweaver.transports.wav import read_wav

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
I16 = npt.NDArray[np.int16]
BEGIN, END = "<!-- turn-endpoint:begin -->", "<!-- turn-endpoint:end -->"

# (words before the pause, words after it): every split is mid-sentence
SPLITS = [
    ("I need to change my reservation because", "my flight is delayed."),
    ("My phone number is five five five", "one two three four."),
    ("Hello, I would like to book a table for", "two people tonight."),
    ("I would like to", "cancel my order."),
    ("Could you check whether the", "kitchen is still open?"),
    ("We are going to arrive at around", "eight o'clock."),
    ("The problem is that my", "card was declined."),
    ("Can you send it to", "my office instead?"),
    ("I think the best option would be", "the later train."),
    ("Actually, make that", "seven thirty, please."),
    ("I was wondering if you could", "help me with my bill."),
    ("The package was supposed to arrive on", "Monday morning."),
    ("Can I pay with", "a credit card?"),
    ("My account number is", "four two seven nine."),
    ("I'd like a large pizza with", "mushrooms and olives."),
    ("So what I really need is", "a room with two beds."),
    ("Please tell the doctor that", "I will be late."),
    ("We want to move the meeting to", "next Thursday."),
    ("Is it possible to", "get a refund?"),
    ("I called yesterday about", "the broken heater."),
    ("The address is twelve", "Baker Street."),
    ("Could you repeat the", "last part, please?"),
    ("I'm not sure if", "that is right."),
    ("My daughter and", "I will both come."),
]
VOICES = ("en-us", "en-us+f3", "en-gb")
PAUSES_MS = (400, 600, 800, 1000, 1200)
LEAD_S, TAIL_S = 0.5, 3.5


@dataclass
class Utterance:
    name: str
    samples: I16
    pauses: list[tuple[float, float]]  # mid-sentence (for beckett.wav: between sentences)
    ends: list[float]  # true ends of turns (s)


# -- the utterances -------------------------------------------------------------------------


def espeak(text: str, voice: str, workdir: Path) -> I16:
    out = workdir / "say.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), text], check=True)
    pcm = read_wav(out)
    x = np.frombuffer(resample(pcm.data, pcm.sample_rate, RATE), dtype="<i2")
    loud = np.flatnonzero(np.abs(x) > 100)
    return x[loud[0] : loud[-1] + 1]


def levels_db(x: I16, hop: int = 160) -> npt.NDArray[np.float64]:
    n = x.size // hop
    f = x[: n * hop].astype(np.float64).reshape(n, hop)
    return np.asarray(10 * np.log10(np.mean(f * f, axis=1) + 1.0))


def word_boundary(whole: I16, prefix: I16) -> int:
    """Where the prefix's words end inside the whole sentence: the quietest 10 ms near the
    prefix's own length (spoken alone its last word is a little longer: final lengthening)."""
    levels = levels_db(whole)
    guess = prefix.size // 160
    lo, hi = max(1, guess - 15), min(levels.size - 1, guess + 5)
    return (lo + int(np.argmin(levels[lo:hi]))) * 160 + 80


def espeak_set(workdir: Path) -> list[Utterance]:
    out = []
    for i, (before, after) in enumerate(SPLITS):
        voice = VOICES[i % len(VOICES)]
        pause_ms = PAUSES_MS[i % len(PAUSES_MS)]
        whole = espeak(f"{before} {after}", voice, workdir)
        cut = word_boundary(whole, espeak(before, voice, workdir))
        lead, pause = np.zeros(int(LEAD_S * RATE), np.int16), np.zeros(pause_ms * 16, np.int16)
        samples = np.concatenate([lead, whole[:cut], pause, whole[cut:]])
        start = (lead.size + cut) / RATE
        end = (lead.size + whole.size + pause.size) / RATE
        tail = np.zeros(int(TAIL_S * RATE), np.int16)
        out.append(
            Utterance(
                f"{voice}: {before} / {after}",
                np.concatenate([samples, tail]),
                [(start, start + pause_ms / 1000)],
                [end],
            )
        )
    caller = np.frombuffer(read_wav(ROOT / "examples" / "audio" / "caller.wav").data, "<i2")
    segments = va.reference_segments(caller, RATE, stop_s=0.3, start_s=0.06)
    out.append(
        Utterance(
            "caller.wav",
            np.concatenate([caller, np.zeros(int(TAIL_S * RATE), np.int16)]),
            [],
            [b for _, b in segments],
        )
    )
    return out


async def human_set() -> list[Utterance]:
    """Pauses and ends from silero itself (segments of speech apart by 100 ms or more), so
    that they are the pauses every setting hears; only pauses of 200 ms or more count, the
    shortest that can end a turn here."""
    out = []
    found = va.recordings()
    for key in ("human (two_cities.wav)", "human (beckett.wav)"):
        if key not in found:
            continue
        pcm = read_wav(found[key])
        data = pcm.data if pcm.sample_rate == RATE else resample(pcm.data, pcm.sample_rate, RATE)
        x = np.frombuffer(data, dtype="<i2")
        segments = await va.detect(SileroVAD(params(stop_ms=100)), x, RATE)
        pauses = [(a[1], b[0]) for a, b in itertools.pairwise(segments)]
        tail = np.zeros(int(TAIL_S * RATE), np.int16)
        out.append(
            Utterance(
                key,
                np.concatenate([x, tail]),
                [(a, b) for a, b in pauses if b - a >= 0.2],
                [segments[-1][1]],
            )
        )
    return out


# -- running the endpointers ----------------------------------------------------------------


class TurnOnlyVAD(SileroVAD):
    """Pipecat's choice, for comparison: the model hears the current turn only, even when it
    starts right after a turn that was just ended."""

    async def _turn_is_over(self, last: Window) -> bool:
        assert self._run_start is not None
        self._heard_from = self._run_start
        return await super()._turn_is_over(last)


class RecheckingVAD(SileroVAD):
    """The design not taken, for comparison: ask the model again after every further
    ``stop_ms`` of the same pause."""

    _next_ask_ns = 0

    async def _turn_is_over(self, last: Window) -> bool:
        if self._asked and self._silence_ns >= self._next_ask_ns:
            self._asked = False
        if not self._asked:
            self._next_ask_ns = self._silence_ns + self.turn_params.stop_ms * 1_000_000
        return await super()._turn_is_over(last)


def params(**kw: object) -> SileroVADParams:
    return SileroVADParams(start_ms=64, barge_in=False, **kw)  # type: ignore[arg-type]


SMART = "smart_turn, stop 200 ms"
SETTINGS: dict[str, Callable[[], SileroVAD]] = {
    "silence 200 ms": lambda: SileroVAD(params(stop_ms=200)),
    "silence 500 ms": lambda: SileroVAD(params(stop_ms=500)),
    "silence 800 ms": lambda: SileroVAD(params(stop_ms=800)),
    SMART: lambda: SileroVAD(params(stop_ms=200, end_of_turn="smart_turn")),
    "smart_turn, model hears the turn only": lambda: TurnOnlyVAD(
        params(stop_ms=200, end_of_turn="smart_turn")
    ),
    "smart_turn, asked again every 200 ms": lambda: RecheckingVAD(
        params(stop_ms=200, end_of_turn="smart_turn")
    ),
}


@dataclass
class Outcome:
    """One setting on one set of utterances."""

    pauses: int = 0  # mid-sentence pauses offered
    premature: int = 0  # endpoints at one of them
    ends: int = 0  # true ends offered
    latencies: list[float] = field(default_factory=list)  # ms, at the true ends found
    fallback: int = 0  # true ends reached only through max_stop_ms
    decisions: list[float] = field(default_factory=list)  # wall ms of each model decision
    p_mid: list[float] = field(default_factory=list)  # model's first answer at each pause
    p_end: list[float] = field(default_factory=list)  # ... and at each true end


def near_end(u: Utterance, pts_ns: int) -> int | None:
    return next((i for i, e in enumerate(u.ends) if abs(pts_ns / 1e9 - e) < 0.3), None)


def in_pause(u: Utterance, pts_ns: int) -> bool:
    return any(a - 0.15 <= pts_ns / 1e9 <= b for a, b in u.pauses)


async def run_one(make: Callable[[], SileroVAD], u: Utterance, out: Outcome) -> None:
    vad = make()
    run = await run_processor(vad, va.chunks(u.samples, RATE))
    heard_ns, wall_ms, stopped_pts = 0, 0.0, 0
    found: set[int] = set()
    for f in run.downstream:
        if isinstance(f, InputAudioFrame):
            heard_ns, wall_ms = f.pts_ns + f.duration_ns, 0.0
        elif isinstance(f, MetricsFrame) and f.name == "smart_turn_ms":
            wall_ms += f.value
        elif isinstance(f, SpeechStoppedFrame):
            stopped_pts = f.pts_ns
        elif isinstance(f, EndOfTurnFrame):
            end = near_end(u, stopped_pts)
            if end is not None and end not in found:
                found.add(end)
                latency = (heard_ns - stopped_pts) / 1e6 + wall_ms
                out.latencies.append(latency)
                tp = vad.turn_params
                if tp.end_of_turn == "smart_turn" and latency >= tp.max_stop_ms:
                    out.fallback += 1
            elif in_pause(u, stopped_pts):
                out.premature += 1
    out.pauses += len(u.pauses)
    out.ends += len(u.ends)
    out.decisions.extend(d.wall_ms for d in vad.decisions)
    first: dict[int, float] = {}
    for d in vad.decisions:
        first.setdefault(d.pause_pts, d.probability)
    for pts, prob in first.items():
        if near_end(u, pts) is not None:
            out.p_end.append(prob)
        elif in_pause(u, pts):
            out.p_mid.append(prob)


async def savings(sets: dict[str, list[Utterance]]) -> dict[str, dict[str, Outcome]]:
    results: dict[str, dict[str, Outcome]] = {}
    for set_name, utterances in sets.items():
        results[set_name] = {}
        for setting, make in SETTINGS.items():
            outcome = results[set_name][setting] = Outcome()
            for u in utterances:
                await run_one(make, u, outcome)
    return results


# -- cost -----------------------------------------------------------------------------------

LOAD_CHILD = """
import json, time
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) * 1024
import numpy as np
import onnxruntime
before = rss()
t = time.perf_counter()
from callweaver.resources.smart_turn import SmartTurnModel
m = SmartTurnModel()
loaded_s = time.perf_counter() - t
m.probability_now(np.zeros(16000, np.float32))
print(json.dumps({"load_s": loaded_s, "session_s": m.load_s, "rss_bytes": rss() - before}))
"""


def load_cost() -> dict[str, float]:
    """Model load time and the memory it adds, in a fresh interpreter (onnxruntime and numpy
    already imported: the core install has them for silero anyway)."""
    done = subprocess.run(
        [sys.executable, "-c", LOAD_CHILD],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def stats(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{percentile(values, 50):.0f} / {percentile(values, 95):.0f}"


async def decision_cost(audio: list[npt.NDArray[np.float32]]) -> dict[str, float]:
    """Per decision: features and inference apart, then N calls asking at the same moment."""
    from callweaver.resources.smart_turn import log_mel, shared_model

    model = shared_model()
    feature_ms, infer_ms = [], []
    for x in audio:
        t0 = time.perf_counter()
        features = log_mel(x)[None]
        t1 = time.perf_counter()
        model.infer(features)
        t2 = time.perf_counter()
        feature_ms.append((t1 - t0) * 1000)
        infer_ms.append((t2 - t1) * 1000)
    out = {
        "features_p50": percentile(feature_ms, 50),
        "features_p95": percentile(feature_ms, 95),
        "inference_p50": percentile(infer_ms, 50),
        "inference_p95": percentile(infer_ms, 95),
    }
    for n in (4, 10):
        t0 = time.perf_counter()
        await asyncio.gather(*(model.probability(audio[i % len(audio)]) for i in range(n)))
        out[f"last_of_{n}_ms"] = (time.perf_counter() - t0) * 1000
    return out


# -- report ---------------------------------------------------------------------------------


def section(load: dict[str, float], cost: dict[str, float],
            results: dict[str, dict[str, Outcome]], seconds: float) -> str:  # fmt: skip
    smart = [ms for r in results.values() for ms in r[SMART].decisions]
    lines = [
        BEGIN,
        "\n## End of turn: silence vs. the smart-turn model\n",
        "`python -m bench.turn_endpoint` (this run: "
        f"{seconds:.0f} s). Silero VAD (`start_ms` 64) as a real actor on each utterance; "
        "`smart_turn` asks pipecat's smart-turn v3.2 model (from the `pipecat-ai` wheel) at "
        "each pause of `stop_ms`, keeps the turn open when it hears an unfinished one, and "
        "ends it after `max_stop_ms` (3000) of silence regardless.\n",
        "### What it costs\n",
        "| | value |\n|---|---|",
        f"| model load (fresh process, onnxruntime already imported) | {load['load_s'] * 1000:.0f}"
        f" ms, of which the ONNX session {load['session_s'] * 1000:.0f} ms |",
        f"| memory added by the model, after its first decision | "
        f"{load['rss_bytes'] / 2**20:.0f} MB RSS, once per process |",
        f"| feature extraction (log-mel of 8 s), p50 / p95 | {cost['features_p50']:.1f} / "
        f"{cost['features_p95']:.1f} ms |",
        f"| inference (1 intra-op thread), p50 / p95 | {cost['inference_p50']:.1f} / "
        f"{cost['inference_p95']:.1f} ms |",
        f"| one decision as a call sees it (worker thread, in the runs below), p50 / p95 | "
        f"{stats(smart)} ms over {len(smart)} decisions |",
        f"| 4 / 10 calls deciding at the same moment: the last answer after | "
        f"{cost['last_of_4_ms']:.0f} / {cost['last_of_10_ms']:.0f} ms |",
        "",
        "### What it saves\n",
        "Cut: endpoints at a mid-sentence pause, out of the pauses long enough to end a turn "
        "(the caller was cut off). Latency: from the end of the last voiced window to the "
        "endpoint at a true end, ms, p50 / p95 / mean. Fallback: true ends the model called "
        "unfinished, ended by `max_stop_ms`. Beckett's pauses follow complete sentences: an "
        "endpoint there is not a cut, the column shows how many each setting takes.\n",
    ]
    espeak = results["espeak"]
    two = results.get("human (two_cities.wav)", {})
    beckett = results.get("human (beckett.wav)", {})
    e0 = next(iter(espeak.values()))
    t0 = next(iter(two.values()), Outcome())
    b0 = next(iter(beckett.values()), Outcome())
    lines += [
        f"| setting | espeak: cut (of {e0.pauses}) | espeak: latency ({e0.ends} ends) "
        f"| espeak: fallback | two_cities: cut (of {t0.pauses}) | two_cities: latency "
        f"| beckett: ends at its {b0.pauses} sentence pauses | model decisions |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for setting, o in espeak.items():
        t, b = two.get(setting, Outcome()), beckett.get(setting, Outcome())
        smart_turn = setting.startswith("smart")
        mean = f" / {np.mean(o.latencies):.0f}" if o.latencies else ""
        decisions = len(o.decisions) + len(t.decisions) + len(b.decisions)
        lines.append(
            f"| {setting} | {o.premature} | {stats(o.latencies)}{mean} "
            f"| {o.fallback if smart_turn else '-'} | {t.premature} | {stats(t.latencies)} "
            f"| {b.premature} | {decisions if smart_turn else '-'} |"
        )
    lines.append("")
    if two:
        silence = [two[f"silence {ms} ms"] for ms in (200, 500, 800)]
        lines.append(
            f"On the human reading, `smart_turn` at 200 ms cut the reader off at "
            f"{two[SMART].premature} of its {t0.pauses} pauses (silence 200 / 500 / 800 ms: "
            + " / ".join(str(o.premature) for o in silence)
            + f") and ended the sentence {stats(two[SMART].latencies).split(' / ')[0]} ms after "
            "its last word (silence: "
            + " / ".join(stats(o.latencies).split(" / ")[0] for o in silence)
            + " ms).\n"
        )
    for set_name, by_setting in results.items():
        o = by_setting[SMART]
        lines.append(
            f"- {set_name}: the model's first answer was *unfinished* at "
            f"{sum(p < 0.5 for p in o.p_mid)}/{len(o.p_mid)} pauses it was asked about and "
            f"*finished* at {sum(p >= 0.5 for p in o.p_end)}/{len(o.p_end)} true ends."
        )
    lines.append("")
    lines.append(END)
    return "\n".join(lines)


async def measure(workdir: Path) -> tuple[dict[str, float], dict[str, dict[str, Outcome]]]:
    sets = {"espeak": espeak_set(workdir)}
    humans = await human_set()
    sets.update({u.name: [u] for u in humans})
    results = await savings(sets)
    audio = [
        u.samples[: int((u.ends[-1] + 0.2) * RATE)].astype(np.float32) / 32768
        for group in sets.values()
        for u in group
    ]
    cost = await decision_cost(audio)
    return cost, results


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.turn_endpoint", description=__doc__)
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--max-seconds", type=float, default=110.0, help="watchdog for the run")
    args = p.parse_args()
    faulthandler.dump_traceback_later(args.max_seconds, exit=True)
    started = time.perf_counter()
    load = load_cost()
    with tempfile.TemporaryDirectory() as tmp:
        cost, results = asyncio.run(measure(Path(tmp)))
    text = section(load, cost, results, time.perf_counter() - started)
    write_section(args.out, BEGIN, END, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
