"""The OpenAI-compatible LLM provider against a fake server speaking real HTTP and SSE."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

import pytest
from fake_openai import FakeOpenAI, Reply
from ports import free_port

from callweaver.errors import ProviderError
from callweaver.services.catalog import parse_spec
from callweaver.services.llm import LLM, Message
from callweaver.services.openai_llm import OpenAILLM, SSEDecoder, SSEEvent, parse_chunk

KEY = "sk-test-0123456789abcdef"
HELLO = [Message("system", "You are brief."), Message("user", "Hi!")]
MakeLLM = Callable[..., OpenAILLM]


@pytest.fixture
async def server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def make_llm(server: FakeOpenAI) -> AsyncIterator[MakeLLM]:
    made: list[OpenAILLM] = []

    def make(**params: Any) -> OpenAILLM:
        params = {"base_url": server.base_url, "model": "gpt-fake", **params}
        llm = OpenAILLM(OpenAILLM.Params(**params), name="oai")
        made.append(llm)
        return llm

    yield make
    for llm in made:
        await llm.aclose()


async def failure(llm: OpenAILLM, pieces: list[str] | None = None) -> ProviderError:
    """Stream HELLO, collecting pieces, and return the ProviderError it ends with."""
    with pytest.raises(ProviderError) as info:
        async for piece in llm.stream(HELLO):
            if pieces is not None:
                pieces.append(piece)
    return info.value


async def reply(llm: OpenAILLM) -> list[str]:
    return [piece async for piece in llm.stream(HELLO)]


# -- streaming ----------------------------------------------------------------------------


async def test_streams_pieces_as_they_come(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    gate = asyncio.Event()
    server.default = Reply("One two three four.", gate=gate, gate_after=1)
    llm: LLM = make_llm()
    pieces = llm.stream(HELLO)
    assert await anext(pieces) == "One "  # while the server holds back the rest
    gate.set()
    assert "One " + "".join([p async for p in pieces]) == "One two three four."
    assert server.default.tokens() == ("One ", "two ", "three ", "four.")


async def test_request_body_and_headers(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    llm = make_llm(api_key=KEY, temperature=0.3, max_tokens=64, extra_headers={"X-Trace": "t1"})
    assert "".join(await reply(llm)) == Reply().text
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.body == {
        "model": "gpt-fake",
        "messages": [
            {"role": "system", "content": "You are brief."},
            {"role": "user", "content": "Hi!"},
        ],
        "stream": True,
        "temperature": 0.3,
        "max_tokens": 64,
    }
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["accept"] == "text/event-stream"
    assert request.headers["x-trace"] == "t1"


async def test_unset_options_are_left_to_the_server(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    await reply(make_llm())
    (request,) = server.requests
    assert set(request.body) == {"model", "messages", "stream"}
    assert "authorization" not in request.headers


async def test_api_key_never_leaks(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.default = Reply.error(401, f"Incorrect API key provided: {KEY}")
    llm = make_llm(api_key=KEY)
    error = await failure(llm)
    assert not error.retryable
    assert "401" in str(error) and "Incorrect API key provided" in str(error)
    for text in (str(error), repr(error), repr(llm.params), str(llm.params), repr(llm)):
        assert KEY not in text
    assert KEY not in llm.params.model_dump_json()


async def test_azure_deployment_url_and_api_key_header(
    server: FakeOpenAI, make_llm: MakeLLM
) -> None:
    llm = make_llm(base_url=server.root + "/", azure=True, model="my-gpt4o", api_key=KEY)
    assert "".join(await reply(llm)) == Reply().text
    (request,) = server.requests
    assert request.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert request.query == {"api-version": "2024-10-21"}
    assert request.headers["api-key"] == KEY
    assert "authorization" not in request.headers
    assert "model" not in request.body and request.body["stream"] is True


async def test_length_is_an_answer_content_filter_is_not(
    server: FakeOpenAI, make_llm: MakeLLM
) -> None:
    server.queue.append(Reply("Cut short by max", finish_reason="length"))
    assert "".join(await reply(make_llm())) == "Cut short by max"
    server.queue.append(Reply("Some words", finish_reason="content_filter"))
    pieces: list[str] = []
    error = await failure(make_llm(fallback_models=["other"]), pieces)
    assert not error.retryable and "content filter" in str(error)
    assert "".join(pieces) == "Some words"


# -- errors and fallback ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(429, True), (500, True), (503, True), (400, False), (401, False), (403, False)],
)
async def test_status_errors(
    server: FakeOpenAI, make_llm: MakeLLM, status: int, retryable: bool
) -> None:
    server.default = Reply.error(status, f"server says {status}", retry_after="7")
    error = await failure(make_llm())
    assert error.retryable is retryable
    assert error.provider == "oai"
    assert f"HTTP {status}" in str(error) and f"server says {status}" in str(error)
    assert "Retry-After: 7" in str(error)


@pytest.mark.parametrize("status", [500, 429, 404])
async def test_falls_back_to_the_next_model(
    server: FakeOpenAI, make_llm: MakeLLM, status: int
) -> None:
    server.by_model["primary"] = Reply.error(status)
    server.by_model["backup"] = Reply("From the backup.")
    llm = make_llm(model="primary", fallback_models=["backup"])
    assert "".join(await reply(llm)) == "From the backup."
    assert [r.model for r in server.requests] == ["primary", "backup"]


async def test_no_fallback_when_the_key_is_bad(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.default = Reply.error(401)
    error = await failure(make_llm(model="primary", fallback_models=["backup"]))
    assert not error.retryable
    assert [r.model for r in server.requests] == ["primary"]


async def test_every_model_failing(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.by_model["a"] = Reply.error(404)
    server.by_model["b"] = Reply.error(503)
    error = await failure(make_llm(model="a", fallback_models=["b"]))
    assert error.retryable  # b may come back
    assert "model a: HTTP 404" in str(error) and "model b: HTTP 503" in str(error)


async def test_unknown_single_model_is_not_retryable(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.default = Reply.error(404)
    assert not (await failure(make_llm())).retryable


@pytest.mark.parametrize("framing", ["chunked", "close"])
async def test_cut_stream_is_an_error_not_a_short_answer(
    server: FakeOpenAI, make_llm: MakeLLM, framing: Any
) -> None:
    server.default = Reply("one two three four", cut_after=2, framing=framing)
    pieces: list[str] = []
    error = await failure(make_llm(fallback_models=["backup"]), pieces)
    assert error.retryable and "cut" in str(error)
    assert pieces == ["one ", "two "]
    assert len(server.requests) == 1  # words were out: no fallback


async def test_done_without_finish_reason_is_cut(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.default = Reply("half a", finish_reason=None)
    pieces: list[str] = []
    error = await failure(make_llm(), pieces)
    assert error.retryable and "cut" in str(error)
    assert "".join(pieces) == "half a"


async def test_cut_before_any_words_falls_back(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.by_model["primary"] = Reply("lost", cut_after=0)
    llm = make_llm(model="primary", fallback_models=["backup"])
    assert "".join(await reply(llm)) == Reply().text


async def test_error_event_in_the_stream(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.default = Reply(raw=(b'data: {"error": {"message": "model overloaded"}}\n\n',))
    error = await failure(make_llm())
    assert error.retryable and "model overloaded" in str(error)


# -- timeouts and connections -------------------------------------------------------------


@pytest.mark.parametrize(
    "slow",
    [
        Reply(first_delay=5, keepalive_every=0.05),  # comments do not count as a first token
        Reply(hang=True),  # not even headers
    ],
    ids=["slow-first-token", "hang"],
)
async def test_first_token_timeout(server: FakeOpenAI, make_llm: MakeLLM, slow: Reply) -> None:
    server.default = slow
    started = time.monotonic()
    error = await failure(make_llm(first_token_timeout_s=0.3))
    elapsed = time.monotonic() - started
    assert error.retryable and "0.3 s" in str(error)
    assert 0.25 < elapsed < 3


async def test_slow_model_falls_back(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.by_model["primary"] = Reply(first_delay=5)
    llm = make_llm(model="primary", fallback_models=["backup"], first_token_timeout_s=0.3)
    assert "".join(await reply(llm)) == Reply().text
    assert [r.model for r in server.requests] == ["primary", "backup"]


async def test_idle_timeout_after_the_first_token(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.default = Reply("one two", gate=asyncio.Event())  # never opened
    pieces: list[str] = []
    started = time.monotonic()
    error = await failure(make_llm(idle_timeout_s=0.3), pieces)
    assert error.retryable and "stalled" in str(error)
    assert pieces == ["one "]
    assert time.monotonic() - started < 3


async def test_connection_refused_is_retryable(make_llm: MakeLLM) -> None:
    llm = make_llm(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m")
    error = await failure(llm)
    assert error.retryable and "cannot connect" in str(error)
    await llm.warm()  # best effort: no error


async def test_turns_reuse_one_connection(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    llm = make_llm(api_key=KEY)
    await llm.warm()
    for _ in range(2):
        assert "".join(await reply(llm)) == Reply().text
    assert [r.path for r in server.requests] == ["/v1/models", *["/v1/chat/completions"] * 2]
    assert server.requests[0].headers["authorization"] == f"Bearer {KEY}"
    assert server.connections == 1


async def test_leaving_a_stream_early_closes_it(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    server.queue.append(Reply("one two three", gate=asyncio.Event()))  # never opened
    llm = make_llm()
    pieces = llm.stream(HELLO)
    assert isinstance(pieces, AsyncGenerator)
    assert await anext(pieces) == "one "
    await pieces.aclose()  # the barge-in case: the rest is not wanted
    assert "".join(await reply(llm)) == Reply().text  # on a new connection
    assert server.connections == 2


# -- the wire format ----------------------------------------------------------------------


def chunk(delta: dict[str, str], finish: str | None = None) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})


async def test_sse_edge_cases_over_the_wire(server: FakeOpenAI, make_llm: MakeLLM) -> None:
    role, hel, lo = (
        chunk({"role": "assistant"}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
    )
    wor, ld = chunk({"content": " wor"}), chunk({"content": "ld"}, "stop")
    head, tail = lo.split('"delta"')  # one JSON document over two data lines
    server.default = Reply(
        raw=(
            b": this is a comment\n\n",  # a keep-alive
            b"\n\n",  # blank events
            f"data: {role}\n\n".encode(),
            b'data: {"choices":[],"prompt_filter_results":[]}\n\n',  # Azure's first chunk
            f"event: message\r\nid: 1\r\ndata: {hel}\r\n\r\n".encode(),
            f'data: {head}\ndata: "delta"{tail}\n\n'.encode(),
            f"data:{wor}\n\ndata: {ld}\n".encode(),  # no space after the colon
            b"\ndata: [DONE]\n\n",
        )
    )
    assert await reply(make_llm()) == ["Hel", "lo", " wor", "ld"]


def feed_all(data: bytes, step: int) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for i in range(0, len(data), step):
        events += decoder.feed(data[i : i + step])
    return events


def test_sse_decoder_any_split_any_line_end() -> None:
    stream = (
        "\ufeff: hello\r\n"
        "\r\n"
        "data: first\r\n\r\n"
        "event: update\rid: 7\rdata:  two spaces\rdata\r\r"
        "data: é\n"  # non-ASCII, split inside its bytes below
        ": comment in the middle\n"
        "data: line2\n\n"
        "data:\n\n"
        "id\n"
        "data: last\n\n"
        "data: never dispatched\n"
    ).encode()
    expected = [
        SSEEvent("first"),
        SSEEvent(" two spaces\n", "update", "7"),
        SSEEvent("é\nline2", "message", "7"),
        SSEEvent("", "message", "7"),
        SSEEvent("last", "message", ""),
    ]
    for step in (1, 2, 3, 7, len(stream)):
        assert feed_all(stream, step) == expected, step


def test_sse_decoder_crlf_split_across_chunks() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\r") == [SSEEvent("a")]  # one CRLF, then a blank line (CR)
    assert decoder.feed(b"\ndata: b\n\n") == [SSEEvent("b")]  # the LF pairs with that CR


def test_parse_chunk() -> None:
    role = '{"choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}'
    assert parse_chunk(role) == ("", None)
    assert parse_chunk('{"choices":[],"usage":{"total_tokens":3}}') == ("", None)
    final = '{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}'
    assert parse_chunk(final) == ("", "stop")
    piece = '{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}'
    assert parse_chunk(piece) == ("Hi", None)
    with pytest.raises(ValueError, match="overloaded"):
        parse_chunk('{"error":{"message":"overloaded"}}')
    with pytest.raises(ValueError, match="malformed"):
        parse_chunk("{not json")


def test_catalog_builds_it() -> None:
    spec = parse_spec("llm", {"type": "openai", "name": "local", "model": "qwen"})
    llm = spec.build()
    assert isinstance(llm, OpenAILLM) and llm.name == "local"
    with pytest.raises(ValueError, match="modle"):
        parse_spec("llm", {"type": "openai", "modle": "qwen"})


def test_provider_clients_share_one_tls_context_that_checks_certificates() -> None:
    """Loading the CA bundle costs ~20 ms of CPU: once per process, not per call."""
    import ssl

    from callweaver.services.http import provider_client, tls_context

    ctx = tls_context()
    assert tls_context() is ctx
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.cert_store_stats()["x509_ca"] > 0
    for _ in range(2):
        client = provider_client(1.0)
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert pool._ssl_context is ctx
