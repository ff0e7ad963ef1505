"""The HTTP client of the providers that speak HTTP themselves (OpenAI-compatible LLMs,
ElevenLabs): one per provider, its connection kept alive between turns so that later turns
skip the TCP and TLS handshakes, and no read timeout of its own (a stream's first-result and
idle timeouts are the provider's, measured from the request)."""

from __future__ import annotations

import httpx

KEEPALIVE_S = 120.0
"""Idle connections are kept this long between turns; a server that closes one sooner is
noticed by the pool before reuse."""


def provider_client(connect_timeout_s: float) -> httpx.AsyncClient:
    """A client for one provider (see the module docstring)."""
    t = connect_timeout_s
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=t, read=None, write=t, pool=t),
        limits=httpx.Limits(keepalive_expiry=KEEPALIVE_S),
    )
