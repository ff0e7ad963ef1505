"""The offline-agent benchmark still runs end to end and measures what it claims.

Tiny sizes (two questions one at a time, two calls at once): real numbers must come out of
every stage and the bot must say, audibly, the answer each question expects. The figures
themselves belong to `python -m bench.offline_agent`, not to a test.
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

from bench.offline_agent import CONFIG
from bench.offline_agent.calls import STAGE_NAMES, V2V
from bench.offline_agent.memory import memory
from bench.offline_agent.questions import QUESTIONS
from bench.offline_agent.report import BEGIN, END

ROOT = Path(__file__).parent.parent


def test_two_questions_one_at_a_time_then_two_calls_at_once(tmp_path: Path) -> None:
    out, raw = tmp_path / "benchmarks.md", tmp_path / "result.json"
    res = subprocess.run(
        [sys.executable, "-m", "bench.offline_agent", "--turns", "2", "--points", "2",
         "--per-call", "1", "--skip-memory", "--out", str(out), "--json", str(raw),
         "--max-seconds", "60"],
        cwd=ROOT, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads(raw.read_text())

    serial = r["serial"]
    assert [t["expected"] for t in serial["turns"]] == [q.answer for q in QUESTIONS[:2]]
    for t in serial["turns"]:
        assert all(t["stages"][s] is not None for s in STAGE_NAMES), t["stages"]
        assert 0 < t["stages"]["endpoint"] <= t["stages"]["first_audio_out"]
        assert t["stages"][V2V] == t["stages"]["first_audio_out"] > 0
        assert t["said"] == t["expected"]  # the reply text is the expected answer's
        assert t["reply_heard"] == t["expected"]  # and so is what whisper hears in its audio
        assert t["reply_s"] > 1.0
    assert serial["stages"][V2V]["n"] == 2

    point = r["concurrency"]["points"]["2"]
    assert point["complete"] and point["v2v"]["n"] == 2 and point["v2v"]["p50"] > 0
    assert point["correctness"]["questions"] == 2
    assert {t["call"] for t in point["turns"]} == {0, 1}

    assert r["cold"]["turns"] and r["cold"]["turns"][0]["stages"][V2V] > 0
    text = out.read_text()
    assert text.count(BEGIN) == text.count(END) == 1
    assert "voice_to_voice" in text and "Concurrent calls" in text


def test_memory_child_loads_every_model_and_runs_a_call() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        m = memory(SimpleNamespace(config=CONFIG), Path(tmp))
    assert "error" not in m, m.get("error")
    steps = [s["step"] for s in m["steps"]]
    assert steps[0] == "interpreter" and steps[-2].startswith("one call")
    assert len(steps) == 8
    rss = [s["rss"] for s in m["steps"]]
    assert rss[-1] > rss[0] and m["peak_rss"] >= max(rss)
    assert len(m["calls"]) == 2
    for call in m["calls"]:
        assert call["v2v_ms"] and all(v is not None and v > 0 for v in call["v2v_ms"])
        assert any(who == "bot" for _, who, _ in call["said"])
