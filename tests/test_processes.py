"""callweaver.runtime.processes: children started without fork(), on asyncio's loop and on
uvloop's, and the hang they avoid: uvloop's fork() while whisper's worker thread is inside an
OpenBLAS matrix product left that thread waiting for ever (a whole call hung, nothing logged).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Coroutine
from pathlib import Path
from subprocess import DEVNULL, PIPE
from typing import Any

import pytest
import uvloop

from callweaver.runtime.processes import spawn

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
ROOT = Path(__file__).resolve().parents[1]


def run_on(loop: str, coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(coro())


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("loop", LOOPS)
def test_pipes_exit_status_and_no_descriptor_left_open(loop: str) -> None:
    async def main() -> None:
        async def once(i: int) -> None:
            child = await spawn(["cat"], stdin=PIPE, stdout=PIPE, stderr=PIPE)
            assert child.stdin is not None
            child.stdin.write(b"line %d\n" % i * 1000)  # more than a pipe's buffer holds
            reading = asyncio.ensure_future(child.communicate())
            await child.stdin.drain()
            out, err = await reading
            assert (out, err, child.returncode) == (b"line %d\n" % i * 1000, b"", 0)

        await once(0)  # the loop's own descriptors, made on first use
        before = open_fds()
        for i in range(1, 31):
            await once(i)
        failing = await spawn(["sh", "-c", "echo why >&2; exit 3"], stdin=DEVNULL, stderr=PIPE)
        assert await failing.communicate() == (b"", b"why\n") and failing.returncode == 3
        assert open_fds() == before  # 31 children later: every pipe and pidfd closed

    run_on(loop, main)


@pytest.mark.parametrize("loop", LOOPS)
def test_a_killed_child_and_a_missing_binary(loop: str) -> None:
    async def main() -> None:
        child = await spawn(["sleep", "30"], stdout=PIPE, start_new_session=True)
        assert child.returncode is None
        os.killpg(child.pid, signal.SIGKILL)  # its own process group, as the voices use
        assert await asyncio.wait_for(child.wait(), 10) == -signal.SIGKILL
        assert await child.communicate() == (b"", b"")
        child.kill()  # reaped: nothing is sent (the pid may be another process's by now)
        with pytest.raises(FileNotFoundError):
            await spawn(["/nonexistent/flite"], stdout=PIPE)

    run_on(loop, main)


HANG = textwrap.dedent(
    """
    import asyncio, threading, time, sys
    import numpy as np, uvloop
    from callweaver.services.local_tts import FliteTTS, EspeakTTS

    products = 0

    def blas() -> None:  # whisper's feature extractor: an 80 x 201 mel filter bank product
        global products
        bank = np.random.rand(80, 201).astype(np.float32)
        spectrum = np.random.rand(201, 3000).astype(np.float32)
        while True:
            bank @ spectrum
            products += 1

    async def main() -> None:
        threading.Thread(target=blas, daemon=True).start()
        voices = [FliteTTS(), EspeakTTS()]
        for i in range(20):
            voice = voices[i % 2]
            audio = [s async for s in voice.synthesize(f"Sentence number {i}.", "en")]
            assert audio, voice.name
        before = products
        deadline = time.monotonic() + 30
        while products < before + 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        print(products - before, flush=True)
        sys.stdout.flush()
        import os; os._exit(0)  # not the daemon thread's teardown

    uvloop.run(main())
    """
)


@pytest.mark.skipif(not (shutil.which("flite") and shutil.which("espeak-ng")), reason="apt")
def test_voices_spawned_beside_an_openblas_thread_on_uvloop_do_not_stop_it() -> None:
    """20 flite and espeak-ng syntheses on uvloop while a thread multiplies matrices with
    OpenBLAS's thread pool: the thread goes on. With uvloop's own subprocesses it stopped at
    the first child, for good."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["OPENBLAS_NUM_THREADS"] = "2"  # a pool, as on any machine with 2 cores or more
    run = subprocess.run(
        [sys.executable, "-c", HANG], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    assert int(run.stdout.split()[-1]) >= 20, run.stdout
