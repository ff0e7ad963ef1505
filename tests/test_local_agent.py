"""The main job: the offline agent of configs/local.yaml, through the CLI a user runs.

`callweaver simulate configs/local.yaml --audio QUESTION.wav --out REPLY.wav` must write a
reply whose transcription is the expected answer, and print every stage's latency.
"""

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from bench.corpus import edit_distance, words
from callweaver.cli import main
from callweaver.resources import whisper
from callweaver.transports.wav import Pcm, read_wav, write_wav

ROOT = Path(__file__).parent.parent
AUDIO = ROOT / "examples" / "audio"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("hours", "We're closed on Sunday."),
        ("address", "We're at 42 Harbour Street"),
        ("book", "I can book you in."),
    ],
)
def test_simulate_answers_the_question_out_loud(
    question: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = tmp_path / "reply.wav", tmp_path / "report.json"
    argv = ["simulate", str(ROOT / "configs" / "local.yaml")]
    argv += ["--audio", str(AUDIO / f"question-{question}.wav"), "--out", str(out)]
    assert main([*argv, "--fast", "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    for stage in ("endpoint", "final_transcript", "first_token", "first_tts_audio",
                  "first_audio_out", "voice_to_voice"):  # fmt: skip
        assert stage in printed
    data = json.loads(report.read_text())
    assert not data["errors"]
    said = [c["text"] for c in data["conversation"] if c["speaker"] == "bot"]
    assert data["conversation"][0]["speaker"] == "caller"
    assert any(expected in sentence for sentence in said), said
    # what the caller hears: the bot's side of the recording, transcribed, is that answer
    reply = read_wav(out)
    audio = np.frombuffer(reply.data, dtype="<i2").astype(np.float32) / 32768
    heard = asyncio.run(whisper.shared_model("tiny.en").transcribe(audio, window="full"))
    reference = words(" ".join(said))
    assert edit_distance(reference, words(heard.text)) / len(reference) <= 0.25, heard.text


def test_a_tts_provider_that_dies_mid_reply_hands_over_and_the_table_shows_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # flite, until it is asked for the reply's second sentence: then it crashes for good
    dying = tmp_path / "flite-dying"
    dead = tmp_path / "dead"
    dying.write_text(
        "#!/bin/sh\n"
        f'[ -e "{dead}" ] && exit 1\n'
        f'case "$*" in *Sunday*) touch "{dead}"; echo "engine crashed" >&2; exit 1;; esac\n'
        'exec flite "$@"\n'
    )
    dying.chmod(0o755)
    config = yaml.safe_load((ROOT / "configs" / "local.yaml").read_text())
    for node in config["pipeline"]["nodes"]:
        if node["type"] == "tts":
            node["params"]["providers"] = [
                {"type": "flite", "name": "flite-dying", "binary": str(dying)},
                {"type": "espeak"},
            ]
    path = tmp_path / "dying.yaml"
    path.write_text(yaml.safe_dump(config))
    out, report = tmp_path / "reply.wav", tmp_path / "report.json"
    argv = ["simulate", str(path), "--audio", str(AUDIO / "question-hours.wav")]
    assert main([*argv, "--out", str(out), "--fast", "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "failover" in printed and "tts:flite-dying->espeak" in printed  # the latency table
    data = json.loads(report.read_text())
    assert data["turns"][0]["failover"] == ["tts:flite-dying->espeak"]
    assert not data["errors"]
    # the caller heard both sentences: the first from flite, the second from espeak-ng
    reply = read_wav(out)
    audio = np.frombuffer(reply.data, dtype="<i2").astype(np.float32) / 32768
    heard = asyncio.run(whisper.shared_model("tiny.en").transcribe(audio, window="full"))
    assert "saturday" in heard.text.lower() and "sunday" in heard.text.lower(), heard.text


def test_a_question_asked_over_the_bots_reply_is_transcribed_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # In real time: the caller asks the hours, then asks the address while the long answer
    # plays. Whisper's short window heard the second question cut at its last voiced sample
    # and said it again ("height where is the clinic located where is the clinic located
    # where is the"). 2.048 s is 64 of the VAD's windows: the same cut as after 4 s of silence.
    hours = read_wav(AUDIO / "question-hours.wav")
    address = read_wav(AUDIO / "question-address.wav")
    rate = hours.sample_rate
    caller = hours.data + bytes(2 * 32768) + address.data + bytes(2 * rate)
    audio, out, report = tmp_path / "caller.wav", tmp_path / "reply.wav", tmp_path / "report.json"
    write_wav(audio, Pcm(caller, rate))
    argv = ["simulate", str(ROOT / "configs" / "local.yaml"), "--audio", str(audio)]
    assert main([*argv, "--out", str(out), "--json", str(report)]) == 0
    capsys.readouterr()
    data = json.loads(report.read_text())
    assert "heard" in data["turns"][0]  # the second question cut the first answer short
    asked = [c["text"] for c in data["conversation"] if c["speaker"] == "caller"]
    assert len(asked) == 2 and words(asked[0]) == words("What time are you open on Saturday?")
    second = words(asked[1])
    assert second[-5:] == words("where is the clinic located") and second.count("where") == 1, asked
