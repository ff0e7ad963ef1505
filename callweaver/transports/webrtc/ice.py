"""Which local addresses ICE gathers host candidates on.

aioice gathers on every interface address except 127.0.0.1, so a browser on the same machine
with no other route (a loopback-only test, a sandbox) never connects. :func:`gather_on` lets
the answerer choose the addresses itself, ``["127.0.0.1"]`` included, for the peer
connections whose descriptions are set inside it. It is the one place callweaver reaches into
aioice: aioice looks ``get_host_addresses`` up on its module at every gathering, and the
replacement installed here asks a context variable first, so connections set up outside
:func:`gather_on` (other tasks, other libraries) gather exactly as before.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
from collections.abc import Iterator, Sequence

import aioice.ice

_addresses: contextvars.ContextVar[tuple[str, ...] | None] = contextvars.ContextVar(
    "callweaver_ice_addresses", default=None
)
_original = aioice.ice.get_host_addresses


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _addresses.get()
    if chosen is None:
        return _original(use_ipv4, use_ipv6)
    return [a for a in chosen if (use_ipv4 if ipaddress.ip_address(a).version == 4 else use_ipv6)]


aioice.ice.get_host_addresses = _host_addresses


@contextlib.contextmanager
def gather_on(addresses: Sequence[str] | None) -> Iterator[None]:
    """Gather host candidates on ``addresses`` (every interface but loopback when None)
    for the descriptions set inside this block."""
    for address in addresses or ():
        ipaddress.ip_address(address)  # ValueError names a bad one
    token = _addresses.set(tuple(addresses) if addresses is not None else None)
    try:
        yield
    finally:
        _addresses.reset(token)
