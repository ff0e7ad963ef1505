"""The ``callweaver`` command: validate configs and simulate calls from WAV files."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from callweaver.pipelines.call import CallReport
    from callweaver.pipelines.config import Deployment
    from callweaver.transports.file import FileIO

T = TypeVar("T")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on uvloop when it is installed, else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def _load(path: str) -> Deployment | None:
    """The deployment at ``path``, or None after printing every problem of its config."""
    from callweaver.errors import ConfigError
    from callweaver.pipelines.config import load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=sys.stderr)
        return None


def _validate(args: argparse.Namespace) -> int:
    from callweaver.errors import ConfigError
    from callweaver.pipelines.config import load_config

    status = 0
    for path in args.config:
        try:
            dep = load_config(path)
        except ConfigError as exc:
            status = 1
            print(f"{path}: {len(exc.issues)} problem(s)", file=sys.stderr)
            for issue in exc.issues:
                print(f"  {issue}", file=sys.stderr)
            continue
        nodes = len(dep.graph.nodes)
        fused = f", {len(dep.graph.fused)} fused" if dep.graph.fused else ""
        print(f"{path}: OK ({dep.config.name}: {nodes} nodes{fused}, {len(dep.graph.edges)} edges)")
    return status


async def _run_file_call(dep: Deployment, args: argparse.Namespace) -> tuple[CallReport, FileIO]:
    """Run one call of ``dep`` with the WAV file as the caller; Ctrl-C ends it gracefully."""
    from callweaver.pipelines.call import Call
    from callweaver.runtime.clock import MonotonicClock
    from callweaver.services.cache.response import close_caches
    from callweaver.transports.file import FileIO

    settings = dep.config.transports.file
    clock = MonotonicClock()
    realtime = settings.realtime and not args.fast
    io = FileIO.from_wav(args.audio, clock, realtime=realtime, tail_ms=settings.tail_ms)
    io.parameters = dict(args.param)
    call = Call(dep.graph, clock=clock, lossless=not realtime)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, call.end, "shutdown")
    try:
        return await call.run(io), io
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        await close_caches()  # a Redis cache sends what it still owes


def _parameter(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=VALUE")
    return name, value


def _simulate(args: argparse.Namespace) -> int:
    from callweaver.errors import CallweaverError
    from callweaver.runtime.latency import format_table

    dep = _load(args.config)
    if dep is None:
        return 2
    try:
        report, io = run_async(_run_file_call(dep, args))
    except (OSError, CallweaverError) as exc:
        print(f"cannot simulate with {args.audio}: {exc}", file=sys.stderr)
        return 2
    io.save(args.out)
    pace = "paced in real time" if io.realtime else "as fast as possible"
    print(
        f"call {report.call_id}: ended ({report.reason}) after {report.duration_ns / 1e9:.2f} s, "
        f"{pace}; {io.frames_in} frames in, {io.frames_out} out -> {args.out}"
    )
    for turn, who, text in io.conversation:
        language = f"  ({io.languages[turn]})" if who == "caller" and turn in io.languages else ""
        print(f"  [{turn}] {who:>6}: {text}{language}")
    print(format_table(report.turns) if report.turns else "no caller turns detected")
    for err in report.errors:
        print(f"error: node {err.node} ({err.policy}): {err.message}")
    for name, stats in report.nodes.items():
        if stats.dropped_overflow or stats.dropped_stale or stats.purged:
            print(f"drops at {name}: {asdict(stats)}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            data = report.to_json()
            data["conversation"] = [
                {"turn": turn, "speaker": who, "text": text, "language": io.languages.get(turn, "")}
                for turn, who, text in io.conversation
            ]
            json.dump(data, fh, indent=2)
    return 0


def _serve(args: argparse.Namespace) -> int:
    """Serve every transport the config enables, until SIGINT/SIGTERM (then drain)."""
    import os

    import uvicorn

    from callweaver.server.app import CONFIG_ENV, DRAIN_ENV

    dep = _load(args.config)
    if dep is None:
        return 2
    server = dep.config.server
    os.environ[CONFIG_ENV] = os.path.abspath(args.config)
    os.environ[DRAIN_ENV] = str(args.drain_s)
    uvicorn.run(
        "callweaver.server.app:app_from_env",
        factory=True,
        host=args.host or server.host,
        port=args.port if args.port is not None else server.port,
        workers=args.workers or server.workers,
        log_level="info" if args.verbose else "warning",
        timeout_graceful_shutdown=int(args.drain_s) + 10,
    )
    return 0


def _call(args: argparse.Namespace) -> int:
    """Place an outbound call through Twilio (the config's ``transports.outbound``)."""
    from callweaver.server.outbound import OutboundError, place_call

    dep = _load(args.config)
    if dep is None:
        return 2
    outbound = dep.config.transports.outbound
    if outbound is None:
        print(f"{args.config}: no transports.outbound section", file=sys.stderr)
        return 2
    try:
        placed = asyncio.run(place_call(outbound, args.to, args.from_))
    except OutboundError as exc:
        print(f"call not placed: {exc}", file=sys.stderr)
        return 1
    print(f"call {placed.sid} to {placed.to} from {placed.from_}: {placed.status}")
    return 0


def _models(args: argparse.Namespace) -> int:
    """List the offline models and whether they are installed; ``--prepare`` readies them
    (joins the multilingual whisper's parts)."""
    from callweaver.errors import ModelUnavailable
    from callweaver.resources import whisper

    status = 0
    for name in whisper.MODELS:
        try:
            whisper.check_installed(name)
            where = str(whisper.model_dir(name)) if args.prepare else "installed"
        except ModelUnavailable as exc:
            where = f"missing ({exc})"
            status = 1 if name in args.require else status
        print(f"whisper {name:8} {where}")
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callweaver", description="Real-time voice agents as graphs of async actors."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check configs completely; exit 1 on any problem")
    p.add_argument("config", nargs="+")
    p.set_defaults(handler=_validate)

    p = sub.add_parser("simulate", help="run one call with a WAV file as the caller")
    p.add_argument("config")
    p.add_argument("--audio", required=True, help="the caller's audio (WAV)")
    p.add_argument("--out", required=True, help="where to write the bot's side (WAV)")
    p.add_argument("--fast", action="store_true", help="do not pace the input in real time")
    p.add_argument("--json", help="also write the call report as JSON here")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        type=_parameter,
        metavar="NAME=VALUE",
        help="a call parameter, as Twilio's <Parameter> (repeatable)",
    )
    p.set_defaults(handler=_simulate)

    p = sub.add_parser("serve", help="serve the config's transports, /health and /metrics")
    p.add_argument("config")
    p.add_argument("--host", help="default: the config's server.host")
    p.add_argument("--port", type=int, help="default: the config's server.port")
    p.add_argument("--workers", type=int, help="processes (default: the config's server.workers)")
    p.add_argument("--drain-s", type=float, default=30.0, help="grace for live calls on stop")
    p.set_defaults(handler=_serve)

    p = sub.add_parser("call", help="place an outbound call through Twilio's REST API")
    p.add_argument("config")
    p.add_argument("--to", required=True, help="E.164 number to call")
    p.add_argument("--from", dest="from_", help="default: the config's from_number")
    p.set_defaults(handler=_call)

    p = sub.add_parser("models", help="list the offline models; --prepare readies them")
    p.add_argument("--prepare", action="store_true", help="join models shipped in parts")
    p.add_argument("--require", nargs="*", default=[], help="exit 1 if one of these is missing")
    p.set_defaults(handler=_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
