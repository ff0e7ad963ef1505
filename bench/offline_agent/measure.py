"""The measures of one run in this process: the cold call, calls one at a time, concurrency.

The memory measure runs in a child process of its own (``memory.py``).
"""

from __future__ import annotations

import argparse
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from bench.offline_agent import Json
from bench.offline_agent.answers import Answers
from bench.offline_agent.calls import V2V, cold_call, concurrent, log, one_at_a_time
from bench.offline_agent.questions import QUESTIONS, Voices
from bench.offline_agent.stats import (
    component_stats,
    correctness,
    reply_lengths,
    stage_stats,
    stats,
    tts_of,
)
from callweaver.pipelines.config import load_config
from callweaver.runtime.latency import percentile

GOAL_MS = 900.0
POINTS = (1, 2, 4, 6, 8)
SLOWDOWN = 1.5  # a point is sustained while its v2v p95 <= this x the one-call p95
DEGRADED = 2.0  # stop adding calls once the p95 passes this x the one-call p95


async def measure(args: argparse.Namespace, workdir: Path) -> Json:
    dep = load_config(args.config)
    answers = Answers.of(dep)
    voices = Voices(workdir)
    questions = list(QUESTIONS[: args.turns])
    out: Json = {}

    log("cold call (loads the models) ...")
    out["cold"] = await cold_call(dep, voices, answers)
    cold = out["cold"]["turns"][0] if out["cold"]["turns"] else {}
    log(f"  v2v {cold.get('stages', {}).get(V2V)} ms (caller clock {cold.get('v2v_caller_ms')}), "
        f"loop blocked up to {out['cold']['loop_lag']['max_ms']:.0f} ms")  # fmt: skip

    log(f"one call at a time, {len(questions)} questions ...")
    serial, info = await one_at_a_time(dep, voices, answers, questions)
    out["serial"] = {
        **info,
        "stages": stage_stats(serial),
        "components": component_stats(serial),
        "correctness": correctness(serial, answers),
        "turns": [asdict(t) for t in serial],
    }
    baseline = (out["serial"]["stages"][V2V] or {}).get("p95")

    reply_s = reply_lengths(serial)
    tts_one: dict[str, list[float]] = defaultdict(list)  # TTS to first audio, one at a time
    for t in serial:
        if (v := tts_of(t)) is not None:
            tts_one[t.said].append(v)
    points: Json = {}
    for n in args.points:
        log(f"{n} concurrent call(s), {args.per_call} questions each ...")
        turns, info = await concurrent(
            dep, voices, answers, n, args.per_call, questions, reply_s, args.seed
        )
        v2v = stats([t.v2v for t in turns if t.v2v is not None])
        points[str(n)] = row = {
            **info,
            "calls": n,
            "v2v": v2v,
            "stages": stage_stats(turns),
            "components": component_stats(turns),
            "correctness": correctness(turns, answers),
            "turns": [asdict(t) for t in turns],
        }
        # the first piece's synthesis against the same reply's one call at a time, with and
        # without other calls' replies being synthesized meanwhile
        for key, crowded in (("tts_vs_one_call_alone", False), ("tts_vs_one_call_alongside", True)):
            row[key] = stats([
                v / percentile(tts_one[t.said], 50)
                for t in turns
                if bool(t.tts_alongside) == crowded and tts_one.get(t.said)
                and (v := tts_of(t)) is not None
            ])  # fmt: skip
        # every question of every call answered (a split question counts once)
        answered = {(t.call, t.asked) for t in turns if t.asked and t.v2v is not None}
        row["complete"] = len(answered) == n * args.per_call
        ratio = v2v["p95"] / baseline if v2v and baseline else math.inf
        row["p95_vs_one_call"] = ratio
        row["sustained"] = row["complete"] and ratio <= args.slowdown
        p95 = f"{v2v['p95']:.0f}" if v2v else "-"
        log(f"  v2v p95 {p95} ms ({ratio:.2f}x one call), cores busy {info['cpu_cores']:.2f}")
        if ratio > args.degraded or not row["complete"]:
            log("  clearly degraded: no more calls")
            break
    out["concurrency"] = {
        "points": points,
        "per_call": args.per_call,
        "baseline_p95": baseline,
        "slowdown": args.slowdown,
        # the largest N that passes with every smaller N tried passing too
        "sustained": largest(points, lambda r: r["sustained"]),
        "within_goal": largest(points, lambda r: r["complete"] and r["v2v"]["p95"] <= GOAL_MS),
        "largest_tried": max(map(int, points), default=0),
    }
    return out


def largest(points: Json, ok: Callable[[Json], bool]) -> int:
    best = 0
    for n, row in sorted(points.items(), key=lambda kv: int(kv[0])):
        if not ok(row):
            break
        best = int(n)
    return best
