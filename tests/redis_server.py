"""A real ``redis-server`` for tests and benchmarks: started on a free 127.0.0.1 port with no
persistence, ready once it answers PING, and stopped (or killed, and started again on the same
port, to test what a client does when Redis goes away and comes back).

Debian's ``redis-server`` package provides the binary; ``.ci/run`` installs it and sets
``CALLWEAVER_REQUIRE_REDIS=1``, so there a test that needs it fails instead of skipping.
Importable as ``redis_server`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from types import TracebackType
from typing import Self

from ports import free_port

BINARY = shutil.which("redis-server")
REQUIRED = os.environ.get("CALLWEAVER_REQUIRE_REDIS") == "1"
SKIP_REASON = "redis-server is not installed (apt-get install redis-server)"

if BINARY is None and REQUIRED:
    raise RuntimeError("CALLWEAVER_REQUIRE_REDIS is set but redis-server is not installed")


def ping(port: int, timeout_s: float = 0.2) -> bool:
    """Does a Redis server answer PING on 127.0.0.1:``port``? (RESP by hand: no client.)"""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process: ``with RedisServer() as server:`` ... ``server.url``.

    :meth:`kill` ends it abruptly (SIGKILL: connections drop, nothing is saved) and
    :meth:`start` brings a fresh, empty one up on the same port.
    """

    def __init__(self, port: int | None = None) -> None:
        if BINARY is None:
            raise RuntimeError(SKIP_REASON)
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout_s: float = 10.0) -> None:
        if self.running:
            return
        assert BINARY is not None
        args = {
            "port": str(self.port),
            "bind": "127.0.0.1",
            "save": "",  # nothing on disk
            "appendonly": "no",
            "protected-mode": "no",
            "loglevel": "warning",
        }
        self._process = subprocess.Popen(
            [BINARY, *(part for name, value in args.items() for part in (f"--{name}", value))],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while not ping(self.port):
            if self._process.poll() is not None:
                err = self._process.stderr.read().decode() if self._process.stderr else ""
                self._process = None
                raise RuntimeError(f"redis-server on port {self.port} exited: {err.strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server on port {self.port} did not answer PING")
            time.sleep(0.01)

    def kill(self) -> None:
        """End the server at once, as a crash or a lost machine would."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._close_pipes()
            self._process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open and nothing answers, as with a
        Redis stuck on a slow command or a network that drops packets."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """End the server politely (SIGTERM); idempotent."""
        if self._process is not None:
            self.resume()  # a stopped process would not act on SIGTERM until continued
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._close_pipes()
            self._process = None

    def _close_pipes(self) -> None:
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
