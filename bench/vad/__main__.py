"""CLI: VAD cost per call, callweaver vs pipecat, at 1, 10 and 100 concurrent calls.

    python -m bench.vad [--quick] [--out docs/benchmarks.md]
    python -m bench.vad --child callweaver --calls 10 [--ticks 500 --warmup 50 | --paced 4]

Run from the repository root. Two modes (see ``drivers.py``): lockstep, every call's frame in
the same loop iteration, ticks back to back (the best case for batching, and RSS); paced, real
time with each call's frames at its own phase of the 20 ms period (how calls on separate
connections arrive), next to a run of the same pacing with no VAD (the harness's own cost).

Every (mode, side, N) point runs in a fresh child process, so the RSS of one point never
includes another's heap; the points alternate between the sides so a change in machine load
hits both. A last child checks that both sides score the same audio alike. Raw JSON goes to
``bench/results/vad.json`` (``vad-quick.json`` with ``--quick``) and the tables replace the VAD
section of the report; ``--quick`` paces only the largest point and leaves the report alone
unless ``--out`` is given. A watchdog ends a hung run.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.framework.measure import spawn_json
from bench.vad import report
from bench.vad.drivers import SIDES, Json, run_child

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
POINTS = (1, 10, 100)
ORDER = ("pipecat", "callweaver")
AGREE_CALLS = 10
PACED_S = 4.0


def child_argv(
    kind: str, calls: int, ticks: int, warmup: int, max_s: float, paced: float
) -> list[str]:
    return [
        sys.executable, "-m", "bench.vad", "--child", kind, "--calls", str(calls),
        "--ticks", str(ticks), "--warmup", str(warmup), "--paced", str(paced),
        "--max-seconds", str(max_s),
    ]  # fmt: skip


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--child`` and its companions also run one point by hand)."""
    p = argparse.ArgumentParser(prog="python -m bench.vad", description=__doc__)
    p.add_argument("--quick", action="store_true", help="few ticks per point (smoke runs)")
    p.add_argument("--out", type=Path, help="report to update (default docs/benchmarks.md)")
    p.add_argument("--points", default=",".join(map(str, POINTS)), help="concurrent calls")
    p.add_argument("--max-seconds", type=float, default=175.0, help="watchdog for the run (s)")
    p.add_argument("--child", choices=(*SIDES, "agree"), help="run one point and print JSON")
    p.add_argument("--calls", type=int, default=1)
    p.add_argument("--ticks", type=int, default=500, help="measured 20 ms frames per call")
    p.add_argument("--warmup", type=int, default=50, help="frames per call before measuring")
    p.add_argument("--paced", type=float, default=0.0, help="real-time run of this many seconds")
    return p.parse_args(argv)


def run_all(args: argparse.Namespace) -> Json:
    """Every point of both sides, alternating, lockstep then paced; then the agreement check."""
    ticks, warmup, paced = (30, 8, 0.5) if args.quick else (args.ticks, args.warmup, PACED_S)
    points = [int(n) for n in args.points.split(",")]
    # a quick run paces only the largest point: pipecat's 100 sessions take seconds to open
    paced_points = points[-1:] if args.quick else points
    child_s = args.max_seconds / 3
    out: Json = {"lockstep": {}, "paced": {}}
    modes = (("lockstep", ORDER, 0.0, points), ("paced", ("floor", *ORDER), paced, paced_points))
    for mode, sides, seconds, ns in modes:
        for n in ns:
            out[mode][str(n)] = row = {}
            for side in sides:
                t0 = time.perf_counter()
                print(f"[vad] {mode} {side} N={n} ...", file=sys.stderr, flush=True)
                argv = child_argv(side, n, ticks, warmup, child_s, seconds)
                row[side] = spawn_json(argv, timeout_s=child_s + 10, cwd=ROOT)
                row[side]["child_s"] = round(time.perf_counter() - t0, 1)
    print(f"[vad] agreement, {AGREE_CALLS} calls ...", file=sys.stderr, flush=True)
    frames = 50 if args.quick else 450
    out["agreement"] = spawn_json(
        child_argv("agree", AGREE_CALLS, frames, 0, child_s, 0.0), timeout_s=child_s + 10, cwd=ROOT
    )
    return out


def errors(result: Json) -> list[str]:
    found = [
        f"{mode} {side} N={n}: {r['error']}\n{r.get('stderr_tail', '')}"
        for mode in ("lockstep", "paced")
        for n, row in result[mode].items()
        for side, r in row.items()
        if "error" in r
    ]
    if "error" in result["agreement"]:
        found.append(f"agreement: {result['agreement']}")
    return found


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; prints the JSON of a child point, or the report section of a full run."""
    args = parse_args(argv)
    faulthandler.dump_traceback_later(args.max_seconds, exit=True)
    if args.child:
        point = run_child(args.child, args.calls, args.ticks, args.warmup, args.paced)
        print(json.dumps(point), flush=True)
        return 0
    started = time.perf_counter()
    load_before = os.getloadavg()
    measures = run_all(args)
    result: Json = {
        "python": platform.python_version(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "quick": args.quick,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        **measures,
        "total_s": round(time.perf_counter() - started, 1),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / ("vad-quick.json" if args.quick else "vad.json")
    path.write_text(json.dumps(result, indent=2) + "\n")
    failed = errors(result)
    if failed:
        print("[vad] failed:\n" + "\n".join(failed), file=sys.stderr)
        return 1
    section = report.render(result)
    out = args.out or (None if args.quick else ROOT / "docs" / "benchmarks.md")
    if out is not None:
        report.write_section(out, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
