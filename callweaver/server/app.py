"""The serving process: one FastAPI app for every transport a deployment enables.

:class:`Server` holds what the process shares across calls: the deployment (its graph is a
recipe; each call gets fresh actors), the live calls, the metrics. A transport's endpoint
hands its :class:`~callweaver.pipelines.call.CallIO` to :meth:`Server.run_call` and the call
runs inside that endpoint's task, so a failing peer ends only its own call. A transport whose
endpoint answers before the call ends (WebRTC's offer) uses :meth:`Server.start_call`: the
call then runs in the server's task group, which the app's lifespan holds open.

Start-up: before the app takes a call it runs one *warm call* of half a second of silence
through the graph, so that every node's ``start`` has loaded its models and pre-synthesized
its fallback audio; ``/health`` says ``starting`` until then.

Shutdown (uvicorn's SIGTERM or SIGINT): the app stops accepting calls (new ones are refused,
``/health`` says ``draining``), lets live calls finish for up to ``drain_s``, then ends each
remaining call gracefully (its queued reply drains; its report says ``shutdown``) and, after
a last grace period, cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse

from callweaver.errors import CallweaverError
from callweaver.frames.audio import InputAudioFrame
from callweaver.frames.base import Frame
from callweaver.pipelines.call import Call, CallIO, CallReport
from callweaver.pipelines.config import Deployment
from callweaver.pipelines.graph import Graph
from callweaver.resources import whisper
from callweaver.runtime.clock import MonotonicClock
from callweaver.server.metrics import Metrics
from callweaver.services.cache.prefetch import prefetch_stats
from callweaver.services.cache.response import all_caches, close_caches
from callweaver.services.health import shared_health

log = logging.getLogger("callweaver.server")

_GRACE_S = 5.0  # after the calls were asked to end, before they are cancelled


class ServerClosing(CallweaverError):
    """The server is draining and takes no new calls."""


class _Silence:
    """The warm call's transport: half a second of silence in, everything out ignored."""

    in_sample_rate = out_sample_rate = 16000

    async def frames(self) -> AsyncIterator[Frame]:
        for i in range(25):
            yield InputAudioFrame(pcm=bytes(640), sample_rate=16000, pts_ns=i * 20_000_000)

    async def write(self, frame: Frame) -> None:
        pass

    async def flush(self) -> None:
        pass


class Server:
    """See the module docstring."""

    def __init__(self, deployment: Deployment, *, drain_s: float = 30.0) -> None:
        self.deployment = deployment
        self.drain_s = drain_s
        self.metrics = Metrics()
        self.calls: dict[str, tuple[str, Call]] = {}
        self.state = "starting"  # starting -> ready -> draining -> stopped
        self.on_call_end: list[Callable[[str, CallIO, CallReport], None]] = []
        """Called with (transport, io, report) as each call ends: dashboards, benchmarks."""
        self.warm_error: str | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._tasks: asyncio.TaskGroup | None = None

    async def warm(self) -> None:
        """Run the warm call (see the module docstring)."""
        try:
            report = await Call(self.deployment.graph, clock=MonotonicClock()).run(_Silence())
            errors = [f"{e.node}: {e.message}" for e in report.errors]
            self.warm_error = "; ".join(errors) or None
        except Exception as exc:  # the app still serves: /health says what is wrong
            self.warm_error = f"{type(exc).__name__}: {exc}"
        if self.warm_error:
            log.error("warm-up call failed: %s", self.warm_error)
        self.state = "ready"

    async def run_call(
        self,
        io: CallIO,
        transport: str,
        call_id: str | None = None,
        *,
        graph: Graph | None = None,
    ) -> CallReport:
        """Run one call to its end (on ``graph``, default the deployment's). A transport that
        drives the call itself (turns, interrupts) has an ``attach(call)`` method, called
        first. Raises :class:`ServerClosing` once draining."""
        if self.state in ("draining", "stopped"):
            raise ServerClosing("the server is shutting down")
        call = Call(graph or self.deployment.graph, clock=MonotonicClock(), call_id=call_id)
        attach = getattr(io, "attach", None)
        if attach is not None:
            attach(call)
        self.calls[call.call_id] = (transport, call)
        self._idle.clear()
        self.metrics.active.labels(transport).inc()
        try:
            report = await call.run(io)
        finally:
            self.metrics.active.labels(transport).dec()
            del self.calls[call.call_id]
            if not self.calls:
                self._idle.set()
        self.metrics.record_call(transport, report)
        for listener in self.on_call_end:
            listener(transport, io, report)
        return report

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """The server's life (the app's lifespan): warm up, serve, drain. Calls started with
        :meth:`start_call` are children of the task group this holds open."""
        async with asyncio.TaskGroup() as tasks:
            self._tasks = tasks
            await self.warm()
            try:
                yield
            finally:
                await self.shutdown()
                self._tasks = None
                await close_caches()  # a Redis cache sends what it still owes

    def start_call(
        self,
        io: CallIO,
        transport: str,
        call_id: str,
        *,
        graph: Graph | None = None,
        after: Callable[[CallReport | None], Awaitable[None]] | None = None,
    ) -> None:
        """Run a call in the background, for transports whose endpoint returns before the
        call ends (a WebRTC offer is answered at once). ``after(report)`` runs when it ends
        (``report`` None if it failed). Raises :class:`ServerClosing` once draining."""
        if self._tasks is None or self.state in ("draining", "stopped"):
            raise ServerClosing("the server is not taking calls")
        self._idle.clear()  # the call counts from now, not from when its task first runs
        self._tasks.create_task(
            self._run_detached(io, transport, call_id, graph, after), name=f"call {call_id}"
        )

    async def _run_detached(
        self,
        io: CallIO,
        transport: str,
        call_id: str,
        graph: Graph | None,
        after: Callable[[CallReport | None], Awaitable[None]] | None,
    ) -> None:
        report: CallReport | None = None
        try:
            report = await self.run_call(io, transport, call_id, graph=graph)
        except ServerClosing:
            log.info("%s call %s refused: the server is draining", transport, call_id)
        except Exception:  # one call's failure never ends the server's task group
            log.exception("%s call %s failed", transport, call_id)
        finally:
            if not self.calls:
                self._idle.set()
            if after is not None:
                try:
                    await after(report)
                except Exception:
                    log.exception("%s call %s: cleanup failed", transport, call_id)

    async def shutdown(self) -> None:
        """Drain (see the module docstring)."""
        self.state = "draining"
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.drain_s):
                await self._idle.wait()
        if self.calls:
            log.warning("ending %d call(s) still live after %.0f s", len(self.calls), self.drain_s)
            for _, call in list(self.calls.values()):
                call.end("shutdown")
            try:
                async with asyncio.timeout(_GRACE_S):
                    await self._idle.wait()
            except TimeoutError:
                for _, call in list(self.calls.values()):
                    call.cancel("shutdown")
        self.state = "stopped"

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, details) for ``/health``."""
        providers = shared_health().snapshot()
        open_circuits = [p["name"] for p in providers if p["state"] == "open"]
        by_transport: dict[str, int] = {}
        for transport, _ in self.calls.values():
            by_transport[transport] = by_transport.get(transport, 0) + 1
        healthy = self.state == "ready" and self.warm_error is None
        return healthy, {
            "status": self.state if healthy or self.state != "ready" else "degraded",
            "deployment": self.deployment.config.name,
            "warm_up_error": self.warm_error,
            "models": {"whisper": list(whisper.loaded())},
            "providers": providers,
            "open_circuits": open_circuits,
            "active_calls": len(self.calls),
            "active_calls_by_transport": by_transport,
            "cache": {name: cache.stats() for name, cache in all_caches().items()},
            "prefetch": prefetch_stats(),
        }


def create_app(deployment: Deployment, *, drain_s: float = 30.0) -> FastAPI:
    """The app for ``deployment``: ``/health``, ``/metrics`` and each enabled transport."""
    server = Server(deployment, drain_s=drain_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with server.serving():
            yield

    app = FastAPI(title=f"callweaver: {deployment.config.name}", lifespan=lifespan)
    app.state.server = server

    if deployment.config.transports.relay is not None:
        from callweaver.server.relay import add_relay_routes  # imports this module

        add_relay_routes(app, server, deployment.config.transports.relay)

    if deployment.config.transports.twilio is not None:
        from callweaver.server.twilio import add_twilio_routes  # imports this module

        add_twilio_routes(app, server, deployment.config.transports.twilio)

    if deployment.config.transports.outbound is not None:
        from callweaver.server.outbound import add_outbound_routes

        add_outbound_routes(app, deployment.config.transports.outbound)

    if deployment.config.transports.webrtc is not None:
        from callweaver.server.webrtc import add_webrtc_routes

        add_webrtc_routes(app, server, deployment.config.transports.webrtc)

    @app.get("/health")
    async def health() -> JSONResponse:
        healthy, details = server.health()
        return JSONResponse(details, status_code=200 if healthy else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(server.metrics.exposition(), media_type="text/plain; version=0.0.4")

    return app


CONFIG_ENV = "CALLWEAVER_CONFIG"
DRAIN_ENV = "CALLWEAVER_DRAIN_S"


def app_from_env() -> FastAPI:
    """The app for the config named by ``$CALLWEAVER_CONFIG``: the factory each uvicorn
    worker process calls (``callweaver serve --workers N``)."""
    import os

    from callweaver.pipelines.config import load_config

    return create_app(
        load_config(os.environ[CONFIG_ENV]), drain_s=float(os.environ.get(DRAIN_ENV, "30"))
    )
