"""The cloud-provider benchmark still runs: one question through Azure STT, the LLM and
ElevenLabs fakes (another process), the hanging-TTS case, and one density point, each
yielding its figures."""

from bench.cloud_agent import TTS_TIMEOUT_S, main


def test_one_turn_of_each_measure(capsys) -> None:  # type: ignore[no-untyped-def]
    main(["--quick"])
    printed = capsys.readouterr().out
    assert "framework's share" in printed and "beyond the timeout" in printed
    assert f"`first_audio_timeout_s: {TTS_TIMEOUT_S:g}`" in printed
    assert "| 1 | 3 |" in printed  # one call, three answered turns
