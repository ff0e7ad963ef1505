"""Run the framework benchmark for callweaver and pipecat side by side and write the report.

    python -m bench.framework.report [--quick] [--out docs/benchmarks.md]

Every (framework, profile, loop) runs in its own child process, one after the other in this
one invocation, so the ratios compare figures measured minutes apart on the same machine.
Raw JSON goes to ``bench/results/``; the table replaces the framework section of the report.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.docs import write_section

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
BEGIN = "<!-- framework-bench:begin -->"
END = "<!-- framework-bench:end -->"

# (label, framework, profile, loop)
RUNS = [
    ("pipecat lean", "pipecat", "lean", "asyncio"),
    ("pipecat default", "pipecat", "default", "asyncio"),
    ("callweaver actors", "callweaver", "actors", "asyncio"),
    ("callweaver fused", "callweaver", "fused", "asyncio"),
    ("pipecat lean, uvloop", "pipecat", "lean", "uvloop"),
    ("callweaver actors, uvloop", "callweaver", "actors", "uvloop"),
]

Json = dict[str, Any]


def run_one(framework: str, profile: str, loop: str, quick: bool) -> Json:
    out = RESULTS / f"{framework}-{profile}-{loop}.json"
    cmd = [sys.executable, "-m", "bench.framework", framework, "--profile", profile,
           "--loop", loop, "--json", str(out)]  # fmt: skip
    if quick:
        cmd.append("--quick")
    print("[report] " + " ".join(cmd[1:]), file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=600)
    data: Json = json.loads(out.read_text())
    return data


def run_floor(loop: str, rounds: int = 3) -> Json:
    """The bare loop's 12 wake-ups and callweaver's data-frame latency, alternated ``rounds``
    times so that both see the same machine; medians of the rounds."""
    bare, ours = [], []
    for _ in range(rounds):
        cmd = [sys.executable, "-m", "bench.framework.floor", "--loop", loop]
        out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, timeout=120)
        bare.append(json.loads(out.stdout.strip().splitlines()[-1])["median_us"])
        cmd = [sys.executable, "-m", "bench.framework", "callweaver", "--profile", "actors",
               "--loop", loop, "--only", "latency"]  # fmt: skip
        out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, timeout=120)
        ours.append(json.loads(out.stdout)["measures"]["latency"]["data"]["median"])
    return {"bare_us": statistics.median(bare), "callweaver_us": statistics.median(ours),
            "rounds": rounds}  # fmt: skip


def floor_note(floors: dict[str, Json]) -> str:
    """How much of the one-frame latency is the event loop's own cost."""
    lines = [
        "\n### How much of the latency is the event loop's\n\n",
        "A frame crossing callweaver's chain wakes 12 tasks in turn (the call's input pump, "
        "10 actors, the output actor). `python -m bench.framework.floor` times the same 12 "
        "wake-ups with no framework at all (a deque and one future per wait). The two are run "
        "alternately, three times each, and the medians compared:\n\n",
        "| loop | 12 bare wake-ups, median (us) | callweaver actors, data frame median (us) "
        "| framework's share (us, for 10 processors) |\n|---|---|---|---|\n",
    ]
    for loop, f in floors.items():
        bare, ours = f["bare_us"], f["callweaver_us"]
        lines.append(f"| {loop} | {bare} | {ours} | {ours - bare:.1f} |\n")
    return "".join(lines)


def figures(r: Json) -> dict[str, float]:
    m = r["measures"]
    return {
        "sys_median": m["latency"]["system"]["median"],
        "sys_p99": m["latency"]["system"]["p99"],
        "data_median": m["latency"]["data"]["median"],
        "data_p99": m["latency"]["data"]["p99"],
        "throughput": m["throughput"]["frames_per_s"],
        "rss_kb": m["idle"]["rss_kb_per_call"],
        "tasks": m["idle"]["tasks_per_call"],
        "capacity": m["capacity"]["max_calls_p99_within_limit"],
        "interrupt_ms": m["interrupt"]["interrupt_to_sink_ms"]["median"],
        "stale": m["interrupt"]["stale_frames_after_interrupt"]["max"],
        "import_s": m["import"]["import_s"],
    }


# key, label, target, higher-is-better
ROWS = [
    ("sys_median", "one system frame through 10 processors, median (us)", 40, False),
    ("sys_p99", "... p99 (us)", None, False),
    ("data_median", "one data frame through 10 processors, median (us)", 40, False),
    ("data_p99", "... p99 (us)", None, False),
    ("throughput", "flood throughput through 10 processors (frames/s)", 40_000, True),
    ("rss_kb", "RSS per idle call of 10 processors (KB)", 80, False),
    ("tasks", "asyncio tasks per idle call", 12, False),
    ("capacity", "calls one core sustains at 50 frames/s, p99 lateness <= 20 ms", 250, True),
    ("interrupt_ms", "interrupt reaching the sink past 300 queued frames, median (ms)", 0.3, False),
    ("stale", "stale frames reaching the sink after the interrupt (max)", 0, False),
    ("import_s", "import time of the core (s)", 0.15, False),
]


def fmt(v: float) -> str:
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
    return f"{v:.3g}"


def ratio(ours: float, theirs: float, higher: bool) -> str:
    if ours == 0 or theirs == 0:
        return "-"
    r = ours / theirs if higher else theirs / ours
    return f"{r:.1f}x better" if r >= 1 else f"{1 / r:.1f}x worse"


def table(results: dict[str, Json], ours: str, base: str, base2: str | None) -> str:
    f = {k: figures(v) for k, v in results.items()}
    head = f"| measure | {base} |" + (f" {base2} |" if base2 else "") + f" {ours} | vs {base} "
    head += "| target | met |\n|---|---|" + ("---|" if base2 else "") + "---|---|---|---|\n"
    lines = [head]
    for key, label, target, higher in ROWS:
        o, b = f[ours][key], f[base][key]
        met = (
            ""
            if target is None
            else ("yes" if (o >= target if higher else o <= target) else "**no**")
        )
        cells = [label, fmt(b)] + ([fmt(f[base2][key])] if base2 else [])
        cells += [fmt(o), ratio(o, b, higher), "" if target is None else fmt(target), met]
        lines.append("| " + " | ".join(cells) + " |\n")
    return "".join(lines)


def render(results: dict[str, Json], floors: dict[str, Json], total_s: float) -> str:
    any_run = next(iter(results.values()))
    parts = [
        BEGIN,
        "\n## Framework overhead: callweaver vs pipecat-ai 1.14.0\n\n",
        "Measured by `make bench` (`python -m bench.framework.report`), all runs in one "
        f"invocation ({total_s / 60:.0f} min), Python {any_run['python']}, "
        f"{any_run['cpus_allowed']} cores, load average before each run: "
        + ", ".join(f"{k} {v['loadavg_before'][0]}" for k, v in results.items())
        + ". Topology: source -> 10 pass-through processors -> sink, 320-byte frames "
        "(20 ms of 8 kHz audio). Raw JSON in `bench/results/`.\n\n",
        "### Default asyncio event loop\n\n",
        table(results, "callweaver actors", "pipecat lean", "pipecat default"),
        "\n### Fusion: the same chain with the pass-throughs as fused transforms\n\n",
        table(results, "callweaver fused", "pipecat lean", None),
        "\n### uvloop (callweaver uses it automatically when installed)\n\n",
        table(results, "callweaver actors, uvloop", "pipecat lean, uvloop", None),
        floor_note(floors),
        "\n",
        END,
    ]
    return "".join(parts)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.framework.report")
    p.add_argument("--quick", action="store_true", help="tiny samples (smoke test)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = p.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = {label: run_one(fw, prof, loop, args.quick) for label, fw, prof, loop in RUNS}
    floors = {loop: run_floor(loop) for loop in ("asyncio", "uvloop")}
    section = render(results, floors, time.perf_counter() - started)
    write_section(args.out, BEGIN, END, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
