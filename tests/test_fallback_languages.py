"""Spoken fallbacks in the caller's language: the ``llm`` node's ``fallback_reply`` and the
``tts`` node's ``fallback_text`` given one per language are said in the reply's language (its
locale, else its language, else the first), with real engines failing for real."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, Reply
from pydantic import ValidationError

from callweaver.audio.resample import resample
from callweaver.frames.audio import OutputAudioFrame
from callweaver.frames.text import ReplyEndFrame, ReplyTextFrame, TranscriptFrame
from callweaver.processors.reply import LLMReply
from callweaver.processors.tts import TextToSpeech
from callweaver.services import health
from callweaver.services.local_tts import EspeakTTS
from callweaver.testing import run_processor
from callweaver.text.languages import pick

ESPEAK = shutil.which("espeak-ng") or "espeak-ng"
FALLBACK = {"en": "Sorry, one moment.", "es": "Lo siento, un momento.", "zh-HK": "唔好意思。"}


@pytest.fixture(autouse=True)
def own_breakers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_process_health", None)


def test_pick_takes_the_locale_then_the_language_then_the_first() -> None:
    assert pick(FALLBACK, "es-MX") == pick(FALLBACK, "es") == "Lo siento, un momento."
    assert pick(FALLBACK, "zh-hk") == pick(FALLBACK, "yue") == "唔好意思。"
    assert pick(FALLBACK, "zh-CN") == "Sorry, one moment."  # Mandarin is not Cantonese
    assert pick(FALLBACK, "") == pick(FALLBACK, "fr-FR") == "Sorry, one moment."
    assert pick("Sorry.", "es") == "Sorry."


async def test_the_llm_fallback_is_said_in_the_turns_language() -> None:
    async with FakeOpenAI(Reply(status=500)) as server:
        params = LLMReply.Params(
            providers=[{"type": "openai", "base_url": server.base_url, "model": "gpt-fake"}],
            system_prompt="Be brief.",
            fallback_reply=FALLBACK,
        )
        said = [
            TranscriptFrame(call_id="c", turn_id=1, text="hola", language="es-MX"),
            TranscriptFrame(call_id="c", turn_id=2, text="hello", language="en-GB"),
        ]
        run = await run_processor(LLMReply(params), said)
    replies = [(f.turn_id, f.text) for f in run.downstream if isinstance(f, ReplyTextFrame)]
    assert replies == [(1, "Lo siento, un momento."), (2, "Sorry, one moment.")]
    with pytest.raises(ValidationError, match="es: empty text"):
        LLMReply.Params(providers=params.providers, fallback_reply={"en": "Sorry.", "es": " "})


def script(path: Path, count: Path, works: int) -> str:
    """espeak-ng that speaks the first ``works`` times (the fallbacks at start-up), then
    crashes every time."""
    path.write_text(
        "#!/bin/sh\n"
        f'n=$(($(cat "{count}" 2>/dev/null || echo 0) + 1)); echo $n > "{count}"\n'
        f'[ $n -le {works} ] && exec "{ESPEAK}" "$@"\n'
        'echo "engine crashed" >&2; exit 1\n',
        encoding="utf-8",
    )
    path.chmod(0o755)
    return str(path)


async def espeak_says(text: str, language: str) -> bytes:
    chunks = [c async for c in EspeakTTS().synthesize(text, language)]
    return b"".join(resample(c.pcm, c.sample_rate, 16000) for c in chunks)


def reply(text: str, turn: int, language: str) -> list[ReplyTextFrame | ReplyEndFrame]:
    return [ReplyTextFrame(call_id="c", turn_id=turn, text=text, sentence=True,
                           language=language),
            ReplyEndFrame(call_id="c", turn_id=turn)]  # fmt: skip


async def test_the_tts_fallback_audio_is_in_the_replys_language(tmp_path: Path) -> None:
    # espeak-ng --voices (which languages it has), then the three fallbacks at start-up
    binary = script(tmp_path / "espeak-once", tmp_path / "count", works=1 + len(FALLBACK))
    provider = {"type": "espeak", "name": f"espeak-{uuid.uuid4().hex[:8]}", "binary": binary}
    tts = TextToSpeech(
        TextToSpeech.Params(providers=[provider], fallback_text=FALLBACK, sample_rate=16000)
    )
    frames = [*reply("Buenas tardes.", 1, "es-MX"), *reply("Good afternoon.", 2, "en-US"),
              *reply("午安。", 3, "zh-HK"), *reply("Bonjour.", 4, "fr-FR")]  # fmt: skip
    run = await run_processor(tts, frames)
    heard = {
        turn: b"".join(f.pcm for f in run.downstream
                       if isinstance(f, OutputAudioFrame) and f.turn_id == turn)
        for turn in (1, 2, 3, 4)
    }  # fmt: skip
    spanish = await espeak_says(FALLBACK["es"], "es")
    english = await espeak_says(FALLBACK["en"], "")
    assert heard[1].startswith(spanish[:16000]) and abs(len(heard[1]) - len(spanish)) < 640
    assert heard[2].startswith(english[:16000]) and abs(len(heard[2]) - len(english)) < 640
    assert heard[3] and heard[3] not in (heard[1], heard[2])  # Cantonese: espeak's yue voice
    assert heard[4] == heard[2]  # no French: the first one
    # three turns crash it, the breaker opens: the fourth turn does not run it
    assert (tmp_path / "count").read_text().strip() == str(1 + len(FALLBACK) + 3)
