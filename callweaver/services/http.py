"""The HTTP client of the providers that speak HTTP themselves (OpenAI-compatible LLMs,
ElevenLabs): one per provider, its connection kept alive between turns so that later turns
skip the TCP and TLS handshakes, and no read timeout of its own (a stream's first-result and
idle timeouts are the provider's, measured from the request).

Every client shares one TLS context per process (:func:`tls_context`): building one loads the
CA bundle, about 20 ms of CPU, which each call's providers would otherwise pay at call start,
holding up the event loop of every other call meanwhile.
"""

from __future__ import annotations

import functools
import ssl

import httpx

KEEPALIVE_S = 120.0
"""Idle connections are kept this long between turns; a server that closes one sooner is
noticed by the pool before reuse."""


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's TLS client context (certificate checks on, the CA bundle loaded once)."""
    return httpx.create_ssl_context()


def provider_client(connect_timeout_s: float) -> httpx.AsyncClient:
    """A client for one provider (see the module docstring)."""
    t = connect_timeout_s
    return httpx.AsyncClient(
        verify=tls_context(),
        timeout=httpx.Timeout(connect=t, read=None, write=t, pool=t),
        limits=httpx.Limits(keepalive_expiry=KEEPALIVE_S),
    )
