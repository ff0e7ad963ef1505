"""``bench.language`` on its data: the goals of the language adapter hold (they are accuracy
figures, the same on any machine; the time per turn is reported by the bench, not tested)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.language import __main__ as cli
from bench.language import accuracy


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    r = accuracy.measure()
    r.update(date="today", cores=2, python="3", seconds=1.0)
    return r


def test_short_turns_with_context_and_cantonese_meet_their_goals(results: dict[str, Any]) -> None:
    assert results["short"]["with"]["accuracy"] >= 0.98
    assert results["short"]["with"]["accuracy"] > results["short"]["without"]["accuracy"]
    yue = results["chinese"]["cantonese"]
    assert yue["right"] / yue["n"] >= 0.95 and yue["wrong"] == 0
    assert results["chinese"]["mandarin"]["wrong"] == 0
    assert results["sentences"]["accuracy"] >= 0.95


def test_calls_follow_their_callers_without_flapping(results: dict[str, Any]) -> None:
    calls = results["calls"]
    assert calls["flaps"] == 0 and calls["turn_accuracy"] >= 0.98, calls["wrong"]
    assert results["ambiguous"]["accuracy"] == 1.0  # "OK", "email", names never move a call


def test_the_section_renders(results: dict[str, Any]) -> None:
    section = cli.render(results)
    assert section.startswith(cli.BEGIN) and section.endswith(cli.END)
    assert "short turns, 1-4 words" in section and "µs p50" in section
