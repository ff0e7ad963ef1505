"""CLI: run the offline agent benchmark, write its JSON and its section of the report.

    python -m bench.offline_agent [--quick] [--out docs/benchmarks.md]

What is measured, and how: the package's docstring (``--help``).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from bench import offline_agent
from bench.docs import write_section
from bench.offline_agent import CONFIG, ROOT, Json
from bench.offline_agent.answers import first_pieces
from bench.offline_agent.calls import log
from bench.offline_agent.measure import DEGRADED, POINTS, SLOWDOWN, measure
from bench.offline_agent.memory import memory
from bench.offline_agent.questions import QUESTIONS
from bench.offline_agent.report import BEGIN, END, section, summary
from callweaver.pipelines.config import load_config

RESULTS = ROOT / "bench" / "results"


def git_state() -> str:
    try:
        rev = subprocess.run(
            ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=ROOT,
            check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return rev


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench.offline_agent", description=offline_agent.__doc__
    )
    p.add_argument("--quick", action="store_true", help="8 questions; 1, 2 and 4 calls of 2")
    p.add_argument("--out", type=Path, help="report to update (default docs/benchmarks.md)")
    p.add_argument("--json", type=Path, help="raw results (default bench/results/...)")
    p.add_argument("--config", type=Path, default=CONFIG)
    p.add_argument("--turns", type=int, help=f"questions one at a time (default {len(QUESTIONS)})")
    p.add_argument("--points", help="concurrent calls to try, e.g. 1,2,4,6,8")
    p.add_argument("--per-call", type=int, help="questions per concurrent call (default 5)")
    p.add_argument("--slowdown", type=float, default=SLOWDOWN)
    p.add_argument("--degraded", type=float, default=DEGRADED)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--skip-memory", action="store_true", help="no memory child")
    p.add_argument("--max-seconds", type=float, default=720.0, help="watchdog for the run")
    args = p.parse_args(argv)
    args.turns = args.turns or (8 if args.quick else len(QUESTIONS))
    args.points = (
        [int(n) for n in args.points.split(",")] if args.points else
        ([1, 2, 4] if args.quick else list(POINTS))
    )  # fmt: skip
    args.per_call = args.per_call or (2 if args.quick else 5)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    faulthandler.dump_traceback_later(args.max_seconds, exit=True)
    from callweaver.cli import run_async

    started = time.perf_counter()
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "asyncio"
    result: Json = {
        "command": " ".join(["python -m bench.offline_agent", *argv]),
        "date": date.today().isoformat(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "loop": loop,
        "commit": git_state(),
        "config": str(args.config),
        "quick": args.quick,
        "loadavg_before": os.getloadavg(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_memory:
            log("memory: a fresh process loads each model ...")
            result["memory"] = memory(args, Path(tmp))
        else:
            result["memory"] = {"error": "skipped (--skip-memory)"}
        result.update(run_async(measure(args, Path(tmp))))
    result["first_pieces"] = first_pieces(load_config(args.config))
    result["loadavg_after"] = os.getloadavg()
    result["seconds"] = time.perf_counter() - started
    json_path = args.json or RESULTS / (
        "offline_agent-quick.json" if args.quick else "offline_agent.json"
    )
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1) + "\n")
    text = section(result)
    out = args.out or (None if args.quick else ROOT / "docs" / "benchmarks.md")
    if out is not None:
        write_section(out, BEGIN, END, text)
    print(text)
    print(summary(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
