"""The VAD benchmark's callweaver side still runs and still batches concurrent calls.

Structure only; the timing and memory figures belong to `python -m bench.vad`, not to a test.
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.vad.report import BEGIN, END, write_section

ROOT = Path(__file__).parent.parent


def run_point(calls: int) -> dict[str, Any]:
    res = subprocess.run(
        [sys.executable, "-m", "bench.vad", "--child", "callweaver", "--calls", str(calls),
         "--ticks", "20", "--warmup", "8", "--max-seconds", "60"],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    result: dict[str, Any] = json.loads(res.stdout.splitlines()[-1])
    return result


@pytest.mark.parametrize("calls", [1, 10])
def test_callweaver_side_runs_and_batches(calls: int) -> None:
    r = run_point(calls)
    assert r["calls"] == calls and r["ticks"] == 20
    assert r["cpu_us_per_call_frame"] > 0 and r["wall_us_per_tick"]["median"] > 0
    assert r["rss_kb"]["all_calls"] >= r["rss_kb"]["imports"] > 0
    # 20 frames of 20 ms per call give 12 or 13 windows of 32 ms, depending on the call's
    # phase: scored, or skipped as too quiet to be speech
    assert 12 * calls <= r["windows"] + r["skipped"] <= 13 * calls
    assert r["windows"] > 0
    if calls == 1:
        assert r["max_batch"] == 1 and r["rss_kb_per_additional_call"] is None
    else:
        assert r["max_batch"] > 1 and r["batches"] < r["windows"]


def test_report_replaces_only_its_own_section(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    out.write_text("# Benchmarks\n\nbefore\n")
    write_section(out, f"{BEGIN}\nfirst\n{END}")  # no markers yet: appended
    assert out.read_text() == f"# Benchmarks\n\nbefore\n\n{BEGIN}\nfirst\n{END}\n"
    out.write_text(out.read_text() + "\nafter\n")
    write_section(out, f"{BEGIN}\nsecond\n{END}")
    assert out.read_text() == f"# Benchmarks\n\nbefore\n\n{BEGIN}\nsecond\n{END}\n\nafter\n"
