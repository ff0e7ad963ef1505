"""Twilio ConversationRelay endpoints: the TwiML webhook and the session WebSocket.

- ``POST {path}/twiml``: ``<Connect><ConversationRelay url="wss://HOST{path}/ws" ...>`` with
  the language, voice and providers from the config (and ``<Language>`` entries for the
  languages a call may switch to, ``<Parameter>`` entries for the call's choices);
- ``WS {path}/ws``: one session, run as a call of the pipeline's ``nodes`` (transcript in,
  reply text out).

``X-Twilio-Signature`` is checked on both (the webhook's over its URL and form fields, the
handshake's over its URL) with the twilio package's ``RequestValidator`` when
``validate_signature`` is on; a bad one is refused (403, or the handshake closed with 1008)
and counted.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, Response, WebSocket
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Connect, VoiceResponse

from callweaver.errors import CallweaverError
from callweaver.pipelines.config import RelayConfig
from callweaver.server.app import Server
from callweaver.transports.relay.io import RelayIO

log = logging.getLogger("callweaver.relay")


def _public(url: str, public_url: str | None) -> str:
    """The URL as Twilio saw it (behind a proxy: on ``public_url``'s scheme and host)."""
    if not public_url:
        return url
    path = url.split("://", 1)[1].split("/", 1)[1] if "://" in url else url.lstrip("/")
    return public_url.rstrip("/") + "/" + path


def add_relay_routes(app: FastAPI, server: Server, config: RelayConfig) -> None:
    graph = server.deployment.graph.part(config.nodes)
    validator = (
        RequestValidator(config.auth_token.get_secret_value()) if config.auth_token else None
    )

    def signed(url: str, params: dict[str, str], signature: str | None) -> bool:
        if not config.validate_signature:
            return True
        if validator is None or not signature:
            return False
        return bool(validator.validate(_public(url, config.public_url), params, signature))

    @app.post(f"{config.path}/twiml")
    async def twiml(request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).items()}
        if not signed(str(request.url), form, request.headers.get("x-twilio-signature")):
            server.metrics.transport_errors.labels("relay", "bad_signature").inc()
            return Response("invalid signature", status_code=403)
        base = config.public_url or f"https://{request.headers.get('host', 'localhost')}"
        ws_url = "wss://" + base.split("://", 1)[-1].rstrip("/") + f"{config.path}/ws"
        connect = Connect()
        relay = connect.conversation_relay(
            url=ws_url,
            language=config.language,
            voice=config.voice,
            tts_provider=config.tts_provider,
            transcription_provider=config.transcription_provider,
            welcome_greeting=config.welcome_greeting,
            interruptible="any" if config.interruptible else "none",
            partial_prompts=str(config.partial_prompts).lower(),
        )
        for lang in config.languages:
            relay.language(
                code=lang.code,
                voice=lang.voice,
                tts_provider=lang.tts_provider,
                transcription_provider=lang.transcription_provider,
            )
        parameters = {**config.parameters}
        for key in ("CallSid", "From", "To"):
            if key in form:
                parameters[key] = form[key]
        for name, value in parameters.items():
            relay.parameter(name=name, value=value)
        response = VoiceResponse()
        response.append(connect)
        return Response(str(response), media_type="application/xml")

    @app.websocket(f"{config.path}/ws")
    async def session(ws: WebSocket) -> None:
        if not signed(str(ws.url), {}, ws.headers.get("x-twilio-signature")):
            server.metrics.transport_errors.labels("relay", "bad_signature").inc()
            await ws.close(code=1008)
            return
        await ws.accept()
        errors = server.metrics.transport_errors
        io = RelayIO(ws, on_wire_error=lambda kind: errors.labels("relay", kind).inc())
        try:
            setup = await io.wait_setup()
            call_id = (setup.call_sid or setup.session_id or None) if setup else None
            if call_id is not None and call_id in server.calls:
                call_id = f"{call_id}/{setup.session_id if setup else 'again'}"
            await server.run_call(io, "relay", call_id=call_id, graph=graph)
        except CallweaverError as exc:  # draining: refuse politely
            log.info("relay session refused: %s", exc)
        finally:
            if ws.client_state.name == "CONNECTED":
                await ws.close()
