"""Twilio Media Streams endpoints: the voice webhook and the stream WebSocket.

- ``POST {path}/voice``: Twilio's voice webhook. Answers
  ``<Response><Connect><Stream url="wss://HOST{path}/stream">`` with a ``<Parameter>`` for each
  of the config's ``parameters`` and the call's ``From``, ``To`` and ``CallSid``.
- ``WS {path}/stream``: the stream Twilio then opens. After its ``start`` message the stream
  runs as one call of the deployment's graph (call id: the ``callSid``) through
  :class:`~callweaver.transports.twilio.media.TwilioMediaIO`; when the call ends, the socket
  is closed, which resumes the TwiML after ``<Connect>``.

``X-Twilio-Signature`` is checked on both when ``validate_signature`` is on (the twilio
package's ``RequestValidator``): the webhook's over its full URL and POST fields, the
handshake's over its URL alone. Behind a proxy or tunnel, set ``public_url``: it is the base
URL Twilio signed, and the host the TwiML points the stream at (without it, the request's
Host header). A bad signature is refused (403; for the WebSocket, the handshake is refused
with 403, as a close with code 1008 before acceptance becomes) and counted in
``callweaver_transport_errors_total{transport="twilio", kind="bad_signature"}``, like every
malformed stream message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request, Response, WebSocket
from starlette.datastructures import URL
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

from callweaver.pipelines.config import TwilioConfig
from callweaver.runtime.latency import Stage
from callweaver.server.app import Server, ServerClosing
from callweaver.transports.twilio.media import TwilioMediaIO

log = logging.getLogger("callweaver.server.twilio")

TRANSPORT = "twilio"
CALL_FIELDS = ("From", "To", "CallSid")
"""Fields of Twilio's webhook passed on to the stream as ``<Parameter>``s."""
_TWIML_LIMIT = 4000  # characters; Twilio refuses longer TwiML (error 32018)
_START_TIMEOUT_S = 10.0


def stream_twiml(url: str, parameters: Mapping[str, str]) -> str:
    """``<Response><Connect><Stream url=...>`` with one ``<Parameter>`` per entry."""
    response = VoiceResponse()
    connect = Connect()
    stream = connect.stream(url=url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def add_twilio_routes(app: FastAPI, server: Server, config: TwilioConfig) -> None:
    """Mount the webhook and the stream WebSocket of ``config`` (module docstring)."""
    path = config.path.rstrip("/")
    token = config.auth_token.get_secret_value() if config.auth_token else ""
    validator = RequestValidator(token) if config.validate_signature else None
    # behind a proxy: the host (and path prefix) Twilio reaches, and whether over TLS
    public = config.public_url.split("://", 1)[1].rstrip("/") if config.public_url else None
    tls = config.public_url is None or config.public_url.startswith(("https:", "wss:"))
    errors = server.metrics.transport_errors

    def count(kind: str) -> None:
        errors.labels(TRANSPORT, kind).inc()

    def signed(urls: list[str], params: Mapping[str, str], signature: str | None) -> bool:
        if validator is None:
            return True
        if not signature:
            return False
        return any(validator.validate(url, params, signature) for url in urls)

    def public_url(scheme: str, url: URL) -> str:
        assert public is not None
        return f"{scheme}://{public}{url.path}" + (f"?{url.query}" if url.query else "")

    @app.post(f"{path}/voice")
    async def voice(request: Request) -> Response:
        form = await request.form(max_fields=200)
        fields = {k: v for k, v in form.items() if isinstance(v, str)}
        url = public_url("https" if tls else "http", request.url) if public else str(request.url)
        if not signed([url], fields, request.headers.get("x-twilio-signature")):
            count("bad_signature")
            log.warning("twilio webhook: invalid X-Twilio-Signature for %s", url)
            return Response("invalid signature", status_code=403)
        host = public or request.headers.get("host")
        if not host:
            return Response("no Host header and no public_url", status_code=400)
        parameters = dict(config.parameters)
        parameters.update((k, fields[k]) for k in CALL_FIELDS if k in fields)
        twiml = stream_twiml(f"{'wss' if tls else 'ws'}://{host}{path}/stream", parameters)
        if len(twiml) > _TWIML_LIMIT:
            log.warning(
                "twilio webhook: TwiML of %d characters; Twilio refuses over %d (error 32018)",
                len(twiml),
                _TWIML_LIMIT,
            )
        return Response(twiml, media_type="application/xml")

    @app.websocket(f"{path}/stream")
    async def stream(ws: WebSocket) -> None:
        if public:
            urls = [public_url("wss" if tls else "ws", ws.url)]
        else:  # the URL the TwiML named, and the one this server saw
            urls = [str(ws.url.replace(scheme="wss")), str(ws.url)]
        if not signed(urls, {}, ws.headers.get("x-twilio-signature")):
            count("bad_signature")
            log.warning("twilio stream: invalid X-Twilio-Signature for %s", urls[0])
            await ws.close(code=1008)  # before accept: the handshake is refused with 403
            return
        await ws.accept()
        io = TwilioMediaIO(ws, max_buffer_ms=config.max_buffer_ms, on_error=count)
        try:
            start = await io.wait_start(_START_TIMEOUT_S)
            if start is None:
                return
            call_id = start.call_sid or start.stream_sid
            if call_id in server.calls:  # a second stream of one call
                call_id = f"{call_id}/{start.stream_sid}"
            try:
                report = await server.run_call(io, TRANSPORT, call_id=call_id)
            except ServerClosing:
                log.info("twilio stream %s refused: the server is draining", start.stream_sid)
                await io.close(1013, "server shutting down")
                return
            edge = []
            for turn in report.turns:
                speech_end = turn.marks.get(Stage.SPEECH_END)
                out = io.edge.first_media_out_ns.get(turn.turn_id)
                if speech_end is not None and out is not None:
                    edge.append(f"{turn.turn_id}: {(out - speech_end) / 1e6:.0f} ms")
            log.info(
                "twilio call %s ended (%s): %d media in, %d out, %d clear(s), %s; "
                "voice-to-voice at the edge: %s",
                call_id, report.reason, io.media_in, io.media_out, io.clears,
                dict(io.errors) or "no bad messages", ", ".join(edge) or "-",
            )  # fmt: skip
        finally:
            await io.close()
