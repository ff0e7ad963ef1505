"""Child processes started without ``fork()``, on any event loop: :func:`spawn` is
:func:`asyncio.create_subprocess_exec` for the framework's own children (the flite and
espeak-ng voices).

Why not the loop's own: uvloop (which the CLI and uvicorn run on when it is installed) starts a
child with ``fork()``, and ``fork()`` runs the native libraries' fork handlers in the parent.
OpenBLAS's stops its thread pool, even while another thread is inside a matrix product
(whisper's feature extractor, on its worker thread), which then waits for the pool forever;
ctranslate2's decodes stop the same way. The call hangs, and nothing is logged. Python's
:class:`subprocess.Popen` starts a child with ``vfork()`` and ``exec()``, which runs no fork
handlers. So the child is started with it, and the running loop watches the rest: the pipes
through its pipe transports, the exit through a pidfd (Linux 5.3+; elsewhere a thread waits
for it).

The child is reaped when it exits, and only then does :attr:`ChildProcess.returncode` become
set: until then its pid (and its process group, with ``start_new_session``) cannot be reused.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Sequence
from typing import IO, Any

__all__ = ["ChildProcess", "spawn"]


class ChildProcess:
    """A running child, as :class:`asyncio.subprocess.Process` offers it: ``stdin`` (a
    writer), ``stdout`` and ``stderr`` (readers) where they are pipes, :meth:`wait`,
    :meth:`communicate`, :meth:`send_signal`, :meth:`kill`."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdin: asyncio.StreamWriter | None,
        stdout: asyncio.StreamReader | None,
        stderr: asyncio.StreamReader | None,
        exited: asyncio.Future[int],
    ) -> None:
        self._popen = popen
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._exited = exited

    def __repr__(self) -> str:
        return f"<ChildProcess {self.pid} returncode={self.returncode}>"

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit status once the child has exited and been reaped (negative: the signal
        that ended it), else None."""
        return self._popen.returncode

    async def wait(self) -> int:
        """Wait for the child to exit; its exit status."""
        return await asyncio.shield(self._exited)

    async def communicate(self) -> tuple[bytes, bytes]:
        """Close stdin, read stdout and stderr to their end, wait for the exit; what was
        read (empty for a stream that is not a pipe). The pipes' transports close at their
        end, and the pipes with them. The one way to let go of a child: call it once,
        whatever happened before."""
        if self.stdin is not None:
            self.stdin.close()

        async def drain(reader: asyncio.StreamReader | None) -> bytes:
            return b"" if reader is None else await reader.read()

        out, err = await asyncio.gather(drain(self.stdout), drain(self.stderr))
        await self.wait()
        return out, err

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` unless the child has been reaped (then its pid may be another's)."""
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


async def spawn(
    argv: Sequence[str],
    *,
    stdin: int | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
    start_new_session: bool = False,
) -> ChildProcess:
    """Start ``argv`` (see the module docstring). ``stdin``, ``stdout``, ``stderr``:
    :data:`subprocess.PIPE`, :data:`subprocess.DEVNULL` or None (the parent's). Raises what
    :class:`subprocess.Popen` raises (:class:`FileNotFoundError` for a missing binary,
    another :class:`OSError`)."""
    loop = asyncio.get_running_loop()
    # blocks only until the child has exec()ed (vfork: about a millisecond), which is the point
    popen = subprocess.Popen(  # noqa: ASYNC220
        list(argv), stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=start_new_session
    )
    connected: list[asyncio.BaseTransport] = []  # each closes its pipe
    try:
        exited = _watch_exit(loop, popen)
        writer = out = err = None
        if popen.stdin is not None:
            writer = await _writer(loop, popen.stdin)
            connected.append(writer.transport)
        if popen.stdout is not None:
            out = await _reader(loop, popen.stdout, connected)
        if popen.stderr is not None:
            err = await _reader(loop, popen.stderr, connected)
    except BaseException:  # cancelled meanwhile (the call ended): leave nothing behind
        popen.kill()
        for transport in connected:
            transport.close()
        taken = {id(t.get_extra_info("pipe")) for t in connected}
        for pipe in (popen.stdin, popen.stdout, popen.stderr):
            if pipe is not None and id(pipe) not in taken:
                pipe.close()
        popen.wait()  # killed: at once
        raise
    return ChildProcess(popen, writer, out, err, exited)


def _watch_exit(
    loop: asyncio.AbstractEventLoop, popen: subprocess.Popen[bytes]
) -> asyncio.Future[int]:
    """A future of the child's exit status, set when it has exited and been reaped."""
    try:
        fd = os.pidfd_open(popen.pid)
    except (AttributeError, OSError):  # no pidfd here: a thread waits for it
        return asyncio.ensure_future(asyncio.to_thread(popen.wait))
    exited: asyncio.Future[int] = loop.create_future()

    def readable() -> None:  # the pidfd is readable once the child has exited
        code = popen.poll()
        if code is None:
            return
        loop.remove_reader(fd)
        os.close(fd)
        if not exited.done():
            exited.set_result(code)

    loop.add_reader(fd, readable)
    return exited


class _ReadProtocol(asyncio.StreamReaderProtocol):
    def eof_received(self) -> bool:
        """Feed the end to the reader and let the transport close (and the pipe with it):
        asyncio's does on its own, uvloop's would stay open, half-closed, for ever."""
        super().eof_received()
        return False


async def _reader(
    loop: asyncio.AbstractEventLoop, pipe: IO[bytes], connected: list[asyncio.BaseTransport]
) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: _ReadProtocol(reader), pipe)
    connected.append(transport)
    return reader


async def _writer(loop: asyncio.AbstractEventLoop, pipe: IO[bytes]) -> asyncio.StreamWriter:
    def protocol() -> Any:  # flow control for drain(); nothing is read from this pipe
        return asyncio.StreamReaderProtocol(asyncio.StreamReader())

    transport, proto = await loop.connect_write_pipe(protocol, pipe)
    return asyncio.StreamWriter(transport, proto, None, loop)
