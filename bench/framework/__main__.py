"""CLI: run the six framework measures for one framework/profile and print JSON.

    python -m bench.framework pipecat --profile lean [--loop uvloop] [--json out.json]

Run from the repository root (children are started as ``python -m
bench.framework`` there). The idle-footprint and every capacity point run in
fresh child processes so heap, tasks and CPU pinning cannot leak between
measures. A watchdog ends the whole run after ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import importlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from bench.framework import capacity, measure
from bench.framework.measure import Adapter, Json

# Framework name -> "module:factory"; the factory takes the profile name.
# Imported lazily so running one framework never imports the other.
ADAPTERS: dict[str, str] = {
    "callweaver": "bench.framework.callweaver_side:make_adapter",
    "pipecat": "bench.framework.pipecat_side:make_adapter",
}

DEFAULT_PROFILES = {"callweaver": "actors", "pipecat": "lean"}
MEASURES = ("latency", "throughput", "interrupt", "idle", "capacity", "import")
ROOT = Path(__file__).resolve().parents[2]


def load_adapter(framework: str, profile: str) -> Adapter:
    """Import the framework's side module and build its adapter for ``profile``."""
    try:
        target = ADAPTERS[framework]
    except KeyError:
        raise SystemExit(f"unknown framework {framework!r}; have {sorted(ADAPTERS)}") from None
    module_name, _, factory_name = target.partition(":")
    factory: Callable[[str], Adapter] = getattr(importlib.import_module(module_name), factory_name)
    return factory(profile)


def run_async(coro: Coroutine[Any, Any, Json], loop: str) -> Json:
    """Run one measure on a fresh event loop of the requested kind."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)


def child_argv(args: argparse.Namespace, child: str, **extra: object) -> list[str]:
    """Command line that re-runs this CLI as a child for one isolated measure."""
    argv = [
        sys.executable, "-m", "bench.framework", args.framework,
        "--profile", args.profile, "--loop", args.loop, "--child", child,
    ]  # fmt: skip
    for key, value in extra.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


def least_busy_cpu(sample_s: float = 0.5) -> int:
    """The allowed CPU with the least load right now; capacity children pin to it.

    The machine is shared: pinning to a core a neighbour is saturating would
    measure the neighbour.
    """
    import psutil  # type: ignore[import-untyped,unused-ignore]

    allowed = sorted(os.sched_getaffinity(0))
    busy = psutil.cpu_percent(interval=sample_s, percpu=True)
    return min(allowed, key=lambda cpu: (busy[cpu], -cpu))


def run_child(args: argparse.Namespace) -> Json:
    """Body of a child process: one idle-footprint run or one capacity point."""
    adapter = load_adapter(args.framework, args.profile)
    if args.child == "idle":
        return run_async(measure.measure_idle_footprint(adapter, calls=args.calls), args.loop)
    cpu = capacity.pin_to_one_cpu(args.cpu)
    result = run_async(
        capacity.measure_capacity_point(adapter, calls=args.calls, seconds=args.seconds),
        args.loop,
    )
    result["cpu"] = cpu
    return result


def run_all(args: argparse.Namespace, adapter: Adapter, selected: Sequence[str]) -> Json:
    """Run the selected measures in a fixed order; each one is bounded."""
    quick = args.quick
    out: Json = {}
    timings: dict[str, float] = {}
    for name in selected:
        t0 = time.perf_counter()
        print(f"[bench] {adapter.name}: {name} ...", file=sys.stderr, flush=True)
        if name == "latency":
            n, w = (500, 100) if quick else (5000, 500)
            out[name] = run_async(measure.measure_latency(adapter, samples=n, warmup=w), args.loop)
        elif name == "throughput":
            n = 5000 if quick else 50_000
            out[name] = run_async(measure.measure_throughput(adapter, frames=n), args.loop)
        elif name == "interrupt":
            reps = 3 if quick else 20
            out[name] = run_async(measure.measure_interrupt(adapter, reps=reps), args.loop)
        elif name == "idle":
            calls = 20 if quick else 100
            out[name] = measure.spawn_json(
                child_argv(args, "idle", calls=calls), timeout_s=120, cwd=ROOT
            )
        elif name == "capacity":
            seconds = 1.0 if quick else args.capacity_seconds
            ramp = (25, 50) if quick else measure.DEFAULT_RAMP

            cpu = args.cpu if args.cpu is not None else least_busy_cpu()

            def point_argv(n: int, seconds: float = seconds, cpu: int = cpu) -> list[str]:
                return child_argv(args, "capacity", calls=n, seconds=seconds, cpu=cpu)

            out[name] = capacity.capacity_ramp(
                point_argv,
                ramp=ramp,
                budget_s=20 if quick else args.capacity_budget,
                cwd=ROOT,
            )
            out[name]["seconds_per_point"] = seconds
            out[name]["cpu"] = cpu
            out[name]["scheduler"] = "one task for all calls, phases spread over 20 ms"
        elif name == "import":
            out[name] = measure.measure_import_time(adapter.import_modules, runs=1 if quick else 5)
        timings[name] = round(time.perf_counter() - t0, 1)
    out["wall_s"] = timings
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--child`` and its companions are internal)."""
    p = argparse.ArgumentParser(prog="python -m bench.framework", description=__doc__)
    p.add_argument("framework", choices=sorted(ADAPTERS))
    p.add_argument("--profile", help="default: each framework's leanest (see DEFAULT_PROFILES)")
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    p.add_argument("--json", type=Path, help="also write the result here")
    p.add_argument("--only", help=f"comma-separated subset of {','.join(MEASURES)}")
    p.add_argument("--quick", action="store_true", help="tiny sample sizes, for smoke tests")
    p.add_argument("--cpu", type=int, help="CPU to pin capacity children to (default: idlest)")
    p.add_argument("--capacity-seconds", type=float, default=3.0)
    p.add_argument("--capacity-budget", type=float, default=110.0, help="ramp time budget, s")
    p.add_argument("--max-seconds", type=float, default=240.0, help="watchdog for the run")
    p.add_argument("--child", choices=("idle", "capacity"), help=argparse.SUPPRESS)
    p.add_argument("--calls", type=int, default=100, help=argparse.SUPPRESS)
    p.add_argument("--seconds", type=float, default=3.0, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; prints the JSON result as the last line of stdout."""
    args = parse_args(argv)
    if args.profile is None:
        args.profile = DEFAULT_PROFILES[args.framework]
    # A hung framework must not hang the benchmark: dump stacks and exit.
    faulthandler.dump_traceback_later(args.max_seconds, exit=True)
    if args.child:
        print(json.dumps(run_child(args)), flush=True)
        return 0

    selected = MEASURES if not args.only else tuple(args.only.split(","))
    unknown = set(selected) - set(MEASURES)
    if unknown:
        raise SystemExit(f"unknown measures {sorted(unknown)}; have {MEASURES}")
    adapter = load_adapter(args.framework, args.profile)
    started = time.perf_counter()
    load_before = os.getloadavg()
    measures = run_all(args, adapter, selected)
    result: Json = {
        "framework": adapter.name,
        "profile": args.profile,
        "loop": args.loop,
        "python": platform.python_version(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "n_processors": measure.N_PROCESSORS,
        "frame_bytes": measure.FRAME_BYTES,
        "measures": measures,
        "total_s": round(time.perf_counter() - started, 1),
    }
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
