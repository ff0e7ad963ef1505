"""The TTS streaming benchmark still runs: every provider and mode once, each yielding its
first-audio figure."""

from bench.tts_streaming import main


def test_one_round_of_each_mode(capsys) -> None:  # type: ignore[no-untyped-def]
    main(["--quick"])
    printed = capsys.readouterr().out
    assert "| elevenlabs | tokens into one stream |" in printed
    assert "| azure | sentences (today) |" in printed
    assert "| - |" not in printed  # every mode measured
