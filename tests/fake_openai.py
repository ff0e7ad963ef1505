"""A fake OpenAI-compatible chat-completions server: real HTTP/1.1 on loopback, real SSE.

It answers ``POST .../chat/completions`` (``/v1/...`` and Azure's
``/openai/deployments/{name}/...``) with the chat-completions event stream, ``GET .../models``
with a model list, keeps connections alive, and records every request. What a request gets is
scripted with :class:`Reply`: the next one in ``queue`` if any, else ``by_model[model]``, else
``default``::

    async with FakeOpenAI(Reply("Hello there.")) as server:
        server.by_model["gpt-big"] = Reply.error(500)
        server.queue.append(Reply("Hi", cut_after=1))   # the next request, whatever its model
        ... OpenAILLM.Params(base_url=server.base_url, ...)
        assert [r.model for r in server.requests] == [...]
        assert server.connections == 1

Importable as ``fake_openai`` (``tests/`` is on ``sys.path``), also by the benchmarks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from loopback import Body, Head, HTTPLoopback, read_body, send_json, status_head

_MESSAGES = {
    400: "Invalid request",
    401: "Incorrect API key provided",
    403: "You are not allowed to use this model",
    404: "The model does not exist or you do not have access to it",
    429: "Rate limit reached for requests",
    500: "The server had an error while processing your request",
    503: "The engine is currently overloaded",
}


@dataclass(frozen=True)
class Reply:
    """How the server answers one request.

    ``status`` other than 200 sends an OpenAI error body (``message``, ``Retry-After`` when
    ``retry_after`` is set). Otherwise the reply streams ``text`` in ``pieces`` (default: word
    by word) with ``finish_reason`` (None: none at all, a cut stream) and ``[DONE]``. Faults:
    ``cut_after=n`` closes the socket after n pieces; ``first_delay`` waits before the first
    piece (after the headers and the role chunk), ``delay`` before each later one; ``gate``
    holds the stream after ``gate_after`` pieces until the event is set; ``keepalive_every``
    sends ``: keep-alive`` comments during those waits; ``hang`` never answers. ``raw`` replaces
    the generated body with these writes, verbatim. ``framing`` is ``chunked`` (keep-alive) or
    ``close`` (the body ends when the connection does).
    """

    text: str = "Hello! How can I help you today?"
    pieces: tuple[str, ...] | None = None
    status: int = 200
    message: str | None = None
    retry_after: str | None = None
    finish_reason: str | None = "stop"
    done: bool = True
    cut_after: int | None = None
    first_delay: float = 0.0
    delay: float = 0.0
    gate: asyncio.Event | None = None
    gate_after: int = 1
    keepalive_every: float | None = None
    hang: bool = False
    raw: tuple[bytes, ...] | None = None
    framing: Literal["chunked", "close"] = "chunked"

    @classmethod
    def error(
        cls, status: int, message: str | None = None, *, retry_after: str | None = None
    ) -> Reply:
        return cls(status=status, message=message, retry_after=retry_after)

    def tokens(self) -> tuple[str, ...]:
        if self.pieces is not None:
            return self.pieces
        return tuple(re.findall(r"\S+\s*|\s+", self.text))


@dataclass
class Request:
    """A request as the server got it. ``headers`` have lower-case names."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    connection: int  # which connection it came on, counted from 1

    @property
    def model(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("model"), str):
            return str(self.body["model"])
        deployment = re.search(r"/deployments/([^/]+)/", self.path)
        return unquote(deployment.group(1)) if deployment else None


@dataclass
class FakeOpenAI(HTTPLoopback):
    """The server (see the module docstring). ``base_url`` ends in ``/v1``; ``root`` has no
    path (Azure mode)."""

    default: Reply = field(default_factory=Reply)
    models: tuple[str, ...] = ("gpt-fake",)
    by_model: dict[str, Reply] = field(default_factory=dict)
    queue: deque[Reply] = field(default_factory=deque)
    requests: list[Request] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    @property
    def chats(self) -> list[Request]:
        """The chat-completions requests (``requests`` without the ``GET .../models`` that
        a provider's warm-up makes)."""
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    _ids: itertools.count[int] = field(default_factory=itertools.count, init=False, repr=False)

    @property
    def base_url(self) -> str:
        return f"{self.root}/v1"

    def reply_for(self, request: Request) -> Reply:
        if self.queue:
            return self.queue.popleft()
        return self.by_model.get(request.model or "", self.default)

    # -- HTTP -----------------------------------------------------------------------------

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: Head
    ) -> bool:
        body = await read_body(reader, head)
        method, path = head.method, head.path
        request = Request(method, path, head.query, head.headers, body, head.connection)
        self.requests.append(request)
        keep_alive = head.keep_alive

        if method == "GET" and path.endswith("/models"):
            listing = {
                "object": "list",
                "data": [{"id": m, "object": "model"} for m in self.models],
            }
            await send_json(writer, 200, listing)
            return keep_alive
        if method != "POST" or not path.endswith("/chat/completions"):
            await send_json(writer, 404, {"error": {"message": f"no route {path}"}})
            return keep_alive
        reply = self.reply_for(request)
        if reply.hang:
            await reader.read()  # until the client gives up
            return False
        if reply.status != 200:
            message = reply.message or _MESSAGES.get(reply.status, "error")
            error = {"message": message, "type": "fake_error", "param": None, "code": None}
            extra = {"Retry-After": reply.retry_after} if reply.retry_after else {}
            await send_json(writer, reply.status, {"error": error}, extra)
            return keep_alive
        return await self._stream(writer, reply, request.model or "") and keep_alive

    async def _stream(self, writer: asyncio.StreamWriter, reply: Reply, model: str) -> bool:
        chunked = reply.framing == "chunked"
        headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        headers |= {"Transfer-Encoding": "chunked"} if chunked else {"Connection": "close"}
        writer.write(status_head(200, headers))
        body = Body(writer, chunked)

        async def wait(seconds: float = 0.0, gate: asyncio.Event | None = None) -> None:
            """``seconds``, or until ``gate`` is set, with keep-alive comments if asked."""
            every = reply.keepalive_every
            until = asyncio.get_running_loop().time() + seconds
            while True:
                if gate is not None:
                    if gate.is_set():
                        return
                    with suppress(TimeoutError):
                        async with asyncio.timeout(every):
                            await gate.wait()
                else:
                    left = until - asyncio.get_running_loop().time()
                    if left <= 0:
                        return
                    await asyncio.sleep(left if every is None else min(left, every))
                if every is not None:
                    await body.send(b": keep-alive\n\n")

        if reply.raw is not None:
            for data in reply.raw:
                await body.send(data)
        else:
            cid = f"chatcmpl-{next(self._ids)}"

            def event(delta: dict[str, str], finish: str | None) -> bytes:
                chunk = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
                return b"data: " + json.dumps(chunk).encode() + b"\n\n"

            await body.send(event({"role": "assistant", "content": ""}, None))
            for i, piece in enumerate(reply.tokens()):
                if i == reply.cut_after:
                    return False  # _serve closes the socket mid-stream
                await wait(reply.first_delay if i == 0 else reply.delay)
                if reply.gate is not None and i == reply.gate_after:
                    await wait(gate=reply.gate)
                await body.send(event({"content": piece}, None))
            if reply.cut_after is not None:
                return False
            if reply.finish_reason is not None:
                await body.send(event({}, reply.finish_reason))
            if reply.done:
                await body.send(b"data: [DONE]\n\n")
        if not chunked:
            return False
        await body.end()
        return True
