"""The matcher benchmark still runs: every language measured, every method compared."""

import pytest

from bench.matcher import main


def test_quick_run_measures_every_language(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quick"]) == 0
    printed = capsys.readouterr().out
    for lang in ("en", "es", "zh", "yue"):
        assert f"| {lang} | " in printed
    assert "| language | minilm | ngram |" in printed
