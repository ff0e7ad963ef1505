"""The framework benchmark's callweaver side still runs and measures what it claims.

Structural facts only (every frame arrives, no stale frame after an interrupt, 12 tasks per
idle call); the timing figures belong to `make bench`, not to a unit test.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_callweaver_side_of_the_framework_benchmark_runs() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "bench.framework", "callweaver", "--profile", "actors", "--quick",
         "--only", "latency,throughput,interrupt,idle", "--max-seconds", "120"],
        cwd=ROOT, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    m = json.loads(res.stdout)["measures"]
    assert m["latency"]["data"]["n"] == m["latency"]["system"]["n"] > 0
    assert m["throughput"]["complete"] and m["throughput"]["received"] == m["throughput"]["frames"]
    assert m["interrupt"]["stale_frames_after_interrupt"]["max"] == 0
    assert m["interrupt"]["min_pushed_before_interrupt"] == 300
    assert m["idle"]["alive_calls"] == m["idle"]["calls"]
    assert m["idle"]["tasks_per_call"] == 12  # 10 actors, the output actor, the call's own task


def test_fused_profile_really_fuses() -> None:
    from bench.framework.callweaver_side import make_adapter

    graph = make_adapter("fused").graph(10)
    assert len(graph.fused) == 9
    assert make_adapter("actors").graph(10).fused == frozenset()
