"""What the wire-level fakes (``fake_openai``, ``fake_elevenlabs``, ``fake_azure``,
``fake_google_tts``) share: ``async with`` over a server's ``start()``/``stop()``, and for the
two that speak HTTP/1.1 themselves, the server and the protocol's plumbing.

The fakes are dataclasses; these bases add no dataclass fields (a fake declares its own
``port``, ``connections`` ...), so a fake's constructor stays what it declares.

Importable as ``loopback`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


class LoopbackServer(ABC):
    """A test server: ``async with server:`` starts it and stops it, whatever the block did."""

    @abstractmethod
    async def start(self) -> None:
        """Listen on 127.0.0.1 (``port`` 0: a free port, then set to the one taken)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop listening and end what is still open (hanging replies included); idempotent."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class Cut(Exception):
    """Raised by an exchange whose script ends it here: the connection drops without a word."""


class HTTPLoopback(LoopbackServer):
    """A plain ``asyncio`` server speaking HTTP/1.1 by hand, so that a test can script what
    real servers do and client libraries must survive (a stream cut mid-body, a hang, framing
    by close). Subclasses are dataclasses with the fields ``port: int = 0`` and ``connections:
    int = 0``, and answer one request per :meth:`_exchange` call on a kept-alive connection.
    """

    port: int
    connections: int  # connections accepted, counted from 1 (a request's ``connection``)
    # the listener and the connections' tasks: set by start(), not dataclass fields
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]]

    @property
    def root(self) -> str:
        """``http://127.0.0.1:PORT``, no path."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._tasks = set()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and end the connections still open (hanging replies included):
        their tasks are cancelled, since ``wait_closed`` would wait for them."""
        if self._server is None:
            return
        self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    @abstractmethod
    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: Head
    ) -> bool:
        """Answer the request whose ``head`` was just read (its body, if any, still to be read
        from ``reader``); False when the connection is to close."""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        connection = self.connections
        try:
            try:
                while (head := await read_head(reader, connection)) is not None:
                    if not await self._exchange(reader, writer, head):
                        break
            finally:
                writer.close()
                with suppress(ConnectionError):
                    await writer.wait_closed()
        except (ConnectionError, asyncio.IncompleteReadError, Cut):
            pass  # the client went away, or the script cut the connection
        except asyncio.CancelledError:
            pass  # stop(): end quietly (3.11's start_server reports a cancelled handler)
        finally:
            self._tasks.discard(task)


# -- HTTP/1.1 by hand ---------------------------------------------------------------------


@dataclass
class Head:
    """A request's line and headers as read, and which connection it came on (counted from
    1). ``headers`` have lower-case names; ``raw`` is the head as it came (what a WebSocket
    handshake is fed)."""

    method: str
    target: str
    headers: dict[str, str]
    raw: bytes
    connection: int

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query))

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"


async def read_head(reader: asyncio.StreamReader, connection: int) -> Head | None:
    """The next request's head on ``connection``; None when the client closed it instead."""
    line = await reader.readline()
    if not line.strip():
        return None
    raw = line
    method, target, _ = line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        raw += header
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return Head(method, target, headers, raw + b"\r\n", connection)


async def read_body(reader: asyncio.StreamReader, head: Head) -> Any:
    """The body (``Content-Length`` framing): JSON decoded, else the bytes; None when empty."""
    size = int(head.headers.get("content-length", "0"))
    data = await reader.readexactly(size) if size else b""
    try:
        return json.loads(data) if data else None
    except ValueError:
        return data


def status_head(status: int, headers: Mapping[str, str]) -> bytes:
    """A response's status line and headers, through the blank line."""
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return "\r\n".join([*lines, "", ""]).encode()


async def send_json(
    writer: asyncio.StreamWriter,
    status: int,
    payload: object,
    headers: Mapping[str, str] | None = None,
) -> None:
    """A whole JSON response (``Content-Length`` framing), in one write."""
    body = json.dumps(payload).encode()
    fields = {**(headers or {}), "Content-Type": "application/json"}
    fields["Content-Length"] = str(len(body))
    writer.write(status_head(status, fields) + body)
    await writer.drain()


class Body:
    """A streamed response body: chunked (the connection can carry the next request) or, with
    ``chunked=False``, bytes as they are until the connection closes."""

    def __init__(self, writer: asyncio.StreamWriter, chunked: bool = True):
        self.writer = writer
        self.chunked = chunked

    async def send(self, data: bytes) -> None:
        self.writer.write(b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data)
        await self.writer.drain()

    async def end(self) -> None:
        """The last chunk (nothing for a body framed by the close)."""
        if self.chunked:
            self.writer.write(b"0\r\n\r\n")
            await self.writer.drain()
