"""Outbound calls: ask Twilio's REST API to call a number and connect it to this app.

``POST /calls`` (JSON ``{"to": "+1...", "from": "+1..."}``, ``from`` defaulting to the
config's ``from_number``) and ``callweaver call CONFIG --to NUMBER`` both send Twilio's
``POST {api_base}/2010-04-01/Accounts/{account_sid}/Calls.json`` (form fields ``To``, ``From``,
``Url``: the app's voice webhook, which answers with the stream TwiML, and ``Method``), with
HTTP basic auth. Twilio answers 201 with the new call's JSON (``sid``, ``status``); errors carry
Twilio's JSON (``code``, ``message``), passed on as :class:`OutboundError`.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from callweaver.errors import CallweaverError
from callweaver.pipelines.config import OutboundConfig

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


class OutboundError(CallweaverError):
    """Twilio refused the call or could not be reached; ``status`` is the HTTP status to pass
    on (502 when Twilio answered with an error, 503 when it could not be reached)."""

    def __init__(self, message: str, *, status: int, code: int | None = None) -> None:
        self.status = status
        self.code = code
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class PlacedCall:
    sid: str
    status: str
    to: str
    from_: str


async def place_call(
    config: OutboundConfig, to: str, from_: str | None = None, *, timeout_s: float = 10.0
) -> PlacedCall:
    """Ask Twilio to place the call (see the module docstring)."""
    caller = from_ or config.from_number
    for number in (to, caller):
        if not number or not _E164.match(number):
            raise OutboundError(f"not an E.164 number: {number!r}", status=400)
    url = f"{config.api_base.rstrip('/')}/2010-04-01/Accounts/{config.account_sid}/Calls.json"
    form = {"To": to, "From": caller, "Url": config.voice_url, "Method": "POST"}
    auth = (config.account_sid, config.auth_token.get_secret_value())
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.post(url, data=form, auth=auth)
    except httpx.HTTPError as exc:
        raise OutboundError(f"Twilio unreachable: {type(exc).__name__}", status=503) from exc
    body: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        body = response.json()
    if response.status_code != 201:
        message = body.get("message") or response.text[:200] or "no detail"
        raise OutboundError(
            f"Twilio answered {response.status_code}: {message}",
            status=502,
            code=body.get("code") if isinstance(body.get("code"), int) else None,
        )
    return PlacedCall(str(body.get("sid", "")), str(body.get("status", "")), to, caller)


class CallRequest(BaseModel):
    to: str = Field(description="E.164 number to call")
    from_: str | None = Field(None, alias="from", description="default: the config's from_number")


def add_outbound_routes(app: FastAPI, config: OutboundConfig) -> None:
    @app.post("/calls", status_code=201)
    async def calls(request: CallRequest) -> JSONResponse:
        try:
            placed = await place_call(config, request.to, request.from_)
        except OutboundError as exc:
            return JSONResponse(
                {"error": str(exc), "twilio_code": exc.code}, status_code=exc.status
            )
        return JSONResponse(
            {"sid": placed.sid, "status": placed.status, "to": placed.to, "from": placed.from_},
            status_code=201,
        )
