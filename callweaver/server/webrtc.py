"""WebRTC endpoints: the call page and its offer/answer exchange.

- ``GET {path}/`` (``{path}`` redirects there): a page with a call button that calls the bot
  from the browser's microphone, shows the live transcript, the bot's replies and each turn's
  voice-to-voice time, and plays the bot's voice (``static/webrtc.html``, ``webrtc.js``);
- ``POST {path}/offer``: the page's offer (:mod:`~callweaver.transports.webrtc.events`) in,
  the answer out. The call then runs in the server's task group
  (:meth:`~callweaver.server.app.Server.start_call`) until the page hangs up, the tab closes
  or the connection fails; the peer connection is closed when it ends.

A malformed offer gets 400 with the reason (``bad_json``, ``bad_sdp``, ``no_audio``,
``oversized``...), counted in ``callweaver_transport_errors_total{transport="webrtc"}``; a
draining server answers 503.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

from callweaver.errors import WireError
from callweaver.pipelines.call import CallReport
from callweaver.pipelines.config import WebRTCConfig
from callweaver.server.app import Server, ServerClosing
from callweaver.transports.webrtc import events
from callweaver.transports.webrtc.io import WebRTCIO

log = logging.getLogger("callweaver.server.webrtc")

TRANSPORT = "webrtc"
STATIC = Path(__file__).parent / "static"


async def _body(request: Request, limit: int) -> bytes:
    """The request body, read no further than ``limit + 1`` bytes."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            break
    return body


def add_webrtc_routes(app: FastAPI, server: Server, config: WebRTCConfig) -> None:
    """Mount the page and the offer endpoint of ``config`` (module docstring)."""
    path = config.path.rstrip("/")
    errors = server.metrics.transport_errors

    def count(kind: str) -> None:
        errors.labels(TRANSPORT, kind).inc()

    if config.page:

        @app.get(path)
        async def to_page(request: Request) -> RedirectResponse:
            # the page's links (its script, ./offer) are relative to {path}/
            query = f"?{request.url.query}" if request.url.query else ""
            return RedirectResponse(f"{path}/{query}")

        @app.get(f"{path}/")
        async def page() -> FileResponse:
            return FileResponse(STATIC / "webrtc.html", media_type="text/html")

        @app.get(f"{path}/webrtc.js")
        async def script() -> FileResponse:
            return FileResponse(STATIC / "webrtc.js", media_type="text/javascript")

    @app.post(f"{path}/offer")
    async def offer(request: Request) -> Response:
        if server.state in ("draining", "stopped"):
            return JSONResponse({"error": "draining"}, status_code=503)
        try:
            parsed = events.parse_offer(await _body(request, events.MAX_OFFER_BYTES))
            io = await WebRTCIO.answer(
                parsed,
                addresses=config.ice_addresses,
                ice_servers=config.ice_servers,
                max_buffer_ms=config.max_buffer_ms,
                connect_timeout_s=config.connect_timeout_s,
                on_error=count,
            )
        except WireError as exc:
            count(exc.kind)
            log.warning("webrtc offer refused: %s", exc)
            return JSONResponse({"error": exc.kind, "detail": exc.detail}, status_code=400)
        call_id = f"webrtc-{uuid.uuid4().hex[:12]}"

        async def after(report: CallReport | None) -> None:
            await io.close(report.reason if report is not None else "error")
            log.info(
                "webrtc call %s ended (%s; %s): %d frames in, %d reply frames out, %s",
                call_id,
                report.reason if report is not None else "failed",
                io.hangup or "-",
                io.frames_in,
                io.reply.audio_frames_sent,
                dict(io.errors) or "no bad messages",
            )

        try:
            server.start_call(io, TRANSPORT, call_id, after=after)
        except ServerClosing:
            await io.close("shutdown")
            return JSONResponse({"error": "draining"}, status_code=503)
        return JSONResponse(events.answer_json(io.answer_sdp, call_id))
