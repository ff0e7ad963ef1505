"""Loopback ports for tests: one nothing listens on, for a server to take or a client to be
refused on (a real refused connection, not a mock)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on now: the OS's choice for port 0, released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port
