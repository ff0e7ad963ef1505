"""Outbound calls against a server on 127.0.0.1 that speaks Twilio's REST wire format."""

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import pytest
import yaml
from ports import free_port

from callweaver.pipelines.config import load_config
from callweaver.server.app import create_app

ROOT = Path(__file__).parent.parent
SID, TOKEN = "AC" + "0" * 32, "secret-token"


class FakeTwilioREST:
    """``POST /2010-04-01/Accounts/{sid}/Calls.json`` as Twilio answers it: 201 with the call
    resource, 401 for a wrong key, 400 with Twilio's error JSON for a bad number."""

    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> "FakeTwilioREST":
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        request_line, *lines = head.split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
        body = (await reader.readexactly(int(headers.get("content-length", "0")))).decode()
        form = {k: v[0] for k, v in parse_qs(body).items()}
        self.requests.append({"line": request_line, "headers": headers, "form": form})
        expected = "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
        if headers.get("authorization") != expected:
            status, payload = "401 Unauthorized", {"code": 20003, "message": "Authenticate",
                                                   "status": 401}  # fmt: skip
        elif form.get("To") == "+15005550001":  # Twilio's magic "invalid number"
            status, payload = "400 Bad Request", {
                "code": 21217, "message": "Phone number does not appear to be valid",
                "more_info": "https://www.twilio.com/docs/errors/21217", "status": 400}  # fmt: skip
        else:
            status, payload = "201 Created", {
                "sid": "CA" + "1" * 32, "status": "queued", "to": form["To"],
                "from": form["From"], "account_sid": SID}  # fmt: skip
        data = json.dumps(payload).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        writer.close()


def config_file(tmp_path: Path, api_base: str, token: str = TOKEN) -> Path:
    data = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    data["transports"] = {"outbound": {
        "account_sid": SID, "auth_token": token, "from_number": "+15550100000",
        "voice_url": "https://voice.example.com/twilio/voice", "api_base": api_base}}  # fmt: skip
    path = tmp_path / "outbound.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
async def twilio() -> AsyncIterator[FakeTwilioREST]:
    async with FakeTwilioREST() as fake:
        yield fake


async def post_calls(config: Path, payload: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=create_app(load_config(config)))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        return await client.post("/calls", json=payload)


async def test_post_calls_asks_twilio_to_call_and_connect_to_us(
    twilio: FakeTwilioREST, tmp_path: Path
) -> None:
    response = await post_calls(
        config_file(tmp_path, f"http://127.0.0.1:{twilio.port}"), {"to": "+15551234567"}
    )
    assert response.status_code == 201, response.text
    assert response.json() == {"sid": "CA" + "1" * 32, "status": "queued",
                               "to": "+15551234567", "from": "+15550100000"}  # fmt: skip
    (req,) = twilio.requests
    assert req["line"] == f"POST /2010-04-01/Accounts/{SID}/Calls.json HTTP/1.1"
    webhook = "https://voice.example.com/twilio/voice"
    assert req["form"] == {"To": "+15551234567", "From": "+15550100000", "Url": webhook,
                           "Method": "POST"}  # fmt: skip


async def test_twilio_errors_and_bad_input_come_back_clearly(
    twilio: FakeTwilioREST, tmp_path: Path
) -> None:
    base = f"http://127.0.0.1:{twilio.port}"
    bad_number = await post_calls(config_file(tmp_path, base), {"to": "+15005550001"})
    assert bad_number.status_code == 502
    assert bad_number.json()["twilio_code"] == 21217
    assert "does not appear to be valid" in bad_number.json()["error"]
    wrong_key = await post_calls(config_file(tmp_path, base, "wrong"), {"to": "+15551234567"})
    assert wrong_key.status_code == 502 and wrong_key.json()["twilio_code"] == 20003
    not_e164 = await post_calls(config_file(tmp_path, base), {"to": "555-1234"})
    assert not_e164.status_code == 400 and len(twilio.requests) == 2  # never sent


async def test_twilio_unreachable_is_503(tmp_path: Path) -> None:
    port = free_port()  # closed again: connections are refused
    response = await post_calls(config_file(tmp_path, f"http://127.0.0.1:{port}"),
                                {"to": "+15551234567"})  # fmt: skip
    assert response.status_code == 503 and "unreachable" in response.json()["error"]


async def test_callweaver_call_command(twilio: FakeTwilioREST, tmp_path: Path) -> None:
    config = config_file(tmp_path, f"http://127.0.0.1:{twilio.port}")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "callweaver", "call", str(config), "--to", "+15551234567",
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert f"call CA{'1' * 32} to +15551234567 from +15550100000: queued" in out.decode()
