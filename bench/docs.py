"""Writing benchmark results into docs/benchmarks.md: each benchmark owns one marked section."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def write_section(path: Path, begin: str, end: str, section: str) -> None:
    """Replace the text from ``begin`` to ``end`` in ``path`` with ``section`` (which carries
    both markers), or append it when absent; everything else in the file is kept."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def publish(
    results: dict[str, Any],
    render: Callable[[dict[str, Any]], str],
    *,
    name: str,
    started: float,
    out: Path,
    begin: str,
    end: str,
    write: bool = True,
) -> None:
    """Stamp ``results`` (date, cores, Python, seconds since ``started``), print the rendered
    section, and unless ``write`` is off (a quick run) put it into ``out`` between its markers
    and the results into ``bench/results/<name>.json``."""
    results.update(
        date=date.today().isoformat(), cores=os.cpu_count(), python=platform.python_version(),
        seconds=time.perf_counter() - started,
    )  # fmt: skip
    section = render(results)
    print(section)
    if write:
        write_section(out, begin, end, section)
        (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n")
