"""The provider fakes of a benchmark, in a process of their own pinned to the other core, so
that what the benchmark measures is callweaver's CPU, not the fakes'.

A benchmark module serves its fakes when run with ``--fakes``: it prints their addresses as
one JSON line and keeps them up until its stdin closes. :class:`FakesProcess` starts that and
reads the addresses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class FakesProcess:
    """``python -m <module> --fakes``, pinned to ``cpu``; :attr:`addresses` from its first
    line of output."""

    def __init__(self, module: str, cpu: int | None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--fakes"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        if cpu is not None:
            os.sched_setaffinity(self.proc.pid, {cpu})
        assert self.proc.stdout is not None
        self.addresses: dict[str, str] = json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        """Close its stdin (the fakes stop) and wait for it."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(30)
        self.proc.stdout.close()
