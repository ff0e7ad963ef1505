"""An LLM provider for any OpenAI-compatible chat-completions endpoint, streamed over SSE.

One class serves OpenAI, Azure OpenAI (``azure: true``: the deployment URL and an ``api-key``
header), llama.cpp's server and vLLM. It speaks HTTP itself (httpx), not through a vendor SDK.

A reply is complete only when the model says so with a ``finish_reason``. A stream that closes,
or sends ``[DONE]``, without one was cut: that is a retryable :class:`ProviderError`, never a
short answer. ``"length"`` is still an answer (the caller hears what came); ``"content_filter"``
is an error no retry can fix.

The timeouts are ours, not httpx's per-read ones: ``first_token_timeout_s`` runs from sending
the request to the first piece of content (a server's keep-alive comments do not reset it);
``idle_timeout_s`` bounds every later gap in the stream.

``fallback_models`` are tried in order on the same endpoint when a model fails retryably before
its first piece, or is unknown (404). Once a piece is out the error is raised as it is: the
caller may already hear it. Nothing here sleeps or retries the same model: ``Retry-After`` goes
into the message, and the failover wrapper and the circuit breaker decide.

One ``httpx.AsyncClient`` per provider, created on first use, keeps its connections alive, so
later turns skip the TCP and TLS handshakes; :meth:`OpenAILLM.warm` opens one ahead of the
first turn. The API key is sent only in a header and is cut out of every error message (servers
echo keys back in their 401s).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from callweaver.errors import ProviderError
from callweaver.services.http import provider_client
from callweaver.services.llm import Message

_T = TypeVar("_T")


class OpenAILLMParams(BaseModel):
    """Where the endpoint is, which models, and how long to wait for them."""

    model_config = ConfigDict(extra="forbid")

    base_url: str = Field(
        "https://api.openai.com/v1",
        min_length=1,
        description="the API root, e.g. http://127.0.0.1:8080/v1 (llama.cpp); "
        "Azure: https://NAME.openai.azure.com",
    )
    model: str = Field(min_length=1, description="model name (Azure: the deployment name)")
    fallback_models: list[str] = Field(
        default_factory=list,
        description="tried in order on the same endpoint when a model fails before its first "
        "token (retryable error or 404)",
    )
    api_key: SecretStr | None = Field(
        None, description="sent as 'Authorization: Bearer' (Azure: 'api-key'); never logged"
    )
    azure: bool = Field(False, description="Azure OpenAI: deployment URL and 'api-key' header")
    api_version: str = Field("2024-10-21", description="Azure: the api-version query parameter")
    temperature: float | None = Field(
        None, ge=0, le=2, description="sampling temperature; default: the server's"
    )
    max_tokens: int | None = Field(None, ge=1, description="reply length cap; default: none")
    connect_timeout_s: float = Field(3.0, gt=0, description="TCP (and TLS) connect timeout")
    first_token_timeout_s: float = Field(
        5.0, gt=0, description="from the request to the first content token, per model tried"
    )
    idle_timeout_s: float = Field(5.0, gt=0, description="longest gap in the stream afterwards")
    extra_headers: dict[str, str] = Field(
        default_factory=dict, description="sent with every request"
    )


# -- the wire formats, pure ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One server-sent event. ``id`` is the last event id seen in the stream."""

    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """Server-sent events (the WHATWG ``text/event-stream`` format) from bytes as they arrive.

    Lines end in CRLF, LF or CR, also when a chunk boundary splits the CRLF; a line starting
    with ``:`` is a comment (keep-alive); the ``data:`` lines of an event are joined with
    newlines; a blank line dispatches the event, unless it carries no data. An event still open
    when the stream ends is dropped, as the standard says.
    """

    _EOL = re.compile(r"\r\n|\r|\n")

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail = ""  # a line not yet ended
        self._after_cr = False  # the last chunk ended in CR: a LF starting the next is its pair
        self._started = False  # past a leading byte order mark
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events that ``chunk`` completes, in order."""
        text = self._utf8.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._after_cr:
            self._after_cr = False
            text = text.removeprefix("\n")
        buf = self._tail + text
        events: list[SSEEvent] = []
        pos = 0
        for end in self._EOL.finditer(buf):
            event = self._line(buf[pos : end.start()])
            if event is not None:
                events.append(event)
            pos = end.end()
        self._after_cr = pos == len(buf) and buf.endswith("\r")
        self._tail = buf[pos:]
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        field, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
        return None

    def _dispatch(self) -> SSEEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SSEEvent("\n".join(data), event or "message", self._id)


def parse_chunk(data: str) -> tuple[str, str | None]:
    """A ``chat.completion.chunk`` event's data -> (content, finish_reason) of its first choice.

    Content is ``""`` for role-only deltas and for chunks without choices (usage, Azure's
    prompt filter results). Raises ValueError for data that is not a chunk, and for an error
    object sent in the stream (its message)."""
    try:
        payload = json.loads(data)
    except ValueError:
        raise ValueError(f"malformed event {data[:80]!r}") from None
    if not isinstance(payload, dict):
        raise ValueError(f"malformed event {data[:80]!r}")
    if payload.get("error") is not None:
        raise ValueError(f"error in stream: {_error_text(payload)}")
    choices = payload.get("choices")
    if not choices:
        return "", None
    choice = choices[0]
    if not isinstance(choice, dict):
        raise ValueError(f"malformed event {data[:80]!r}")
    delta = choice.get("delta")
    content = delta.get("content") if isinstance(delta, dict) else None
    reason = choice.get("finish_reason")
    return (
        content if isinstance(content, str) else "",
        reason if isinstance(reason, str) else None,
    )


def _error_text(payload: Any) -> str:
    """The message of an OpenAI-style error body (``{"error": {"message": ...}}``)."""
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(payload.get("message"), str):
            return str(payload["message"])
    return " ".join(json.dumps(payload).split())[:300]


def _body_text(body: bytes) -> str:
    try:
        return _error_text(json.loads(body))
    except ValueError:
        return " ".join(body.decode("utf-8", "replace").split())[:300]


# -- the provider -------------------------------------------------------------------------


class _NotFound(Exception):
    """A model the endpoint does not know (404): the next fallback model may do. Internal."""

    def __init__(self, error: ProviderError) -> None:
        self.error = error


class OpenAILLM:
    """A chat model behind an OpenAI-compatible endpoint (see the module docstring)."""

    Params = OpenAILLMParams

    def __init__(self, params: OpenAILLMParams, *, name: str = "openai") -> None:
        self.name = name
        self.params = params
        self._key = params.api_key.get_secret_value() if params.api_key else ""
        self._http: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        p = self.params
        return f"OpenAILLM(name={self.name!r}, base_url={p.base_url!r}, model={p.model!r})"

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    async def warm(self) -> None:
        """Open a connection ahead of the first turn (a cheap ``GET /models``). Best effort:
        the answer and any error are ignored."""
        try:
            response = await self._client().get(
                self._url("models"), headers=self._headers(), timeout=self.params.connect_timeout_s
            )
            await response.aclose()
        except httpx.HTTPError:
            pass

    async def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        """The reply as text pieces (see :class:`~callweaver.services.llm.LLM`)."""
        body = [{"role": m.role, "content": m.content} for m in messages]
        failures: list[ProviderError] = []
        for model in (self.params.model, *self.params.fallback_models):
            started = False
            try:
                async with aclosing(self._stream_model(model, body)) as pieces:
                    async for piece in pieces:
                        started = True
                        yield piece
                return
            except _NotFound as exc:
                failures.append(exc.error)
            except ProviderError as exc:
                if started or not exc.retryable:
                    raise
                failures.append(exc)
        if len(failures) == 1:
            raise failures[0]
        reasons = "; ".join(str(e).removeprefix(f"{self.name}: ") for e in failures)
        raise ProviderError(
            self.name,
            f"every model failed: {reasons}",
            retryable=any(e.retryable for e in failures),
        )

    async def _stream_model(
        self, model: str, messages: list[dict[str, str]]
    ) -> AsyncGenerator[str, None]:
        p = self.params
        loop = asyncio.get_running_loop()
        deadline = loop.time() + p.first_token_timeout_s
        http = self._client()
        request = http.build_request(
            "POST",
            self._url("chat", model),
            json=self._body(model, messages),
            headers={"Accept": "text/event-stream", **self._headers()},
        )
        try:
            async with asyncio.timeout_at(deadline):
                response = await http.send(request, stream=True)
        except TimeoutError:
            raise self._error(
                model, f"no response within {p.first_token_timeout_s} s", retryable=True
            ) from None
        except httpx.HTTPError as exc:
            raise self._transport_error(model, exc, 0) from exc
        chunks = response.aiter_bytes()
        try:
            if response.status_code != 200:
                await self._read(model, response.aread(), deadline, 0)
                error = self._status_error(model, response)
                if response.status_code == 404:
                    raise _NotFound(error)
                raise error
            pieces = 0
            finish: str | None = None
            decoder = SSEDecoder()
            done = False  # [DONE] came; what follows is read only to keep the connection
            while True:
                try:
                    chunk = await self._read(model, anext(chunks, None), deadline, pieces)
                except ProviderError:
                    if finish is None and not done:
                        raise
                    break  # the reply is complete, only the stream's tail is missing
                if chunk is None:
                    break
                if done:
                    continue
                for event in decoder.feed(chunk):
                    if event.data == "[DONE]":
                        done = True
                        break
                    try:
                        content, reason = parse_chunk(event.data)
                    except ValueError as exc:
                        raise self._error(model, str(exc), retryable=True) from None
                    if content:
                        pieces += 1
                        yield content
                    if reason == "content_filter":
                        raise self._error(
                            model, "the reply was stopped by a content filter", retryable=False
                        )
                    finish = reason or finish
                if pieces:
                    deadline = loop.time() + p.idle_timeout_s
            if finish is None:
                raise self._error(
                    model,
                    f"stream cut: it ended after {pieces} pieces without a finish_reason",
                    retryable=True,
                )
        finally:
            if isinstance(chunks, AsyncGenerator):
                await chunks.aclose()
            await response.aclose()

    async def _read(self, model: str, step: Awaitable[_T], until: float, pieces: int) -> _T:
        """Await one step of a response by ``until`` (loop time); failures as ProviderError."""
        try:
            async with asyncio.timeout_at(until):
                return await step
        except TimeoutError:
            p = self.params
            raise self._error(
                model,
                f"no first token within {p.first_token_timeout_s} s"
                if pieces == 0
                else f"stream stalled: nothing for {p.idle_timeout_s} s after {pieces} pieces",
                retryable=True,
            ) from None
        except httpx.HTTPError as exc:
            raise self._transport_error(model, exc, pieces) from exc

    # -- helpers --------------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = provider_client(self.params.connect_timeout_s)
        return self._http

    def _url(self, what: str, model: str = "") -> httpx.URL:
        p = self.params
        base = p.base_url.rstrip("/")
        if not p.azure:
            return httpx.URL(f"{base}/chat/completions" if what == "chat" else f"{base}/models")
        path = (
            f"/openai/deployments/{quote(model, safe='')}/chat/completions"
            if what == "chat"
            else "/openai/models"
        )
        return httpx.URL(base + path, params={"api-version": p.api_version})

    def _headers(self) -> dict[str, str]:
        headers = dict(self.params.extra_headers)
        if self._key:
            if self.params.azure:
                headers["api-key"] = self._key
            else:
                headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def _body(self, model: str, messages: list[dict[str, str]]) -> dict[str, Any]:
        p = self.params
        body: dict[str, Any] = {"messages": messages, "stream": True}
        if not p.azure:  # Azure names the model by its deployment, in the URL
            body["model"] = model
        if p.temperature is not None:
            body["temperature"] = p.temperature
        if p.max_tokens is not None:
            body["max_tokens"] = p.max_tokens
        return body

    def _error(self, model: str, message: str, *, retryable: bool) -> ProviderError:
        message = f"model {model}: {message}"
        if self._key:
            message = message.replace(self._key, "***")
        return ProviderError(self.name, message, retryable=retryable)

    def _status_error(self, model: str, response: httpx.Response) -> ProviderError:
        status = response.status_code
        detail = _body_text(response.content)
        message = f"HTTP {status}" + (f": {detail}" if detail else "")
        if retry_after := response.headers.get("retry-after"):
            message += f" (Retry-After: {retry_after})"
        return self._error(model, message, retryable=status in (408, 429) or status >= 500)

    def _transport_error(self, model: str, exc: httpx.HTTPError, pieces: int) -> ProviderError:
        what = f"{type(exc).__name__}: {exc}".rstrip(": ")
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            return self._error(model, f"cannot connect ({what})", retryable=True)
        if isinstance(exc, httpx.UnsupportedProtocol):
            return self._error(model, what, retryable=False)
        if pieces and isinstance(exc, httpx.TransportError):
            return self._error(model, f"stream cut after {pieces} pieces ({what})", retryable=True)
        return self._error(model, what, retryable=isinstance(exc, httpx.TransportError))
