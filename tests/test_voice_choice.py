"""The voice per language: :class:`VoiceChoice` on its own, then each provider on its wire.

A reply in the caller's language reaches Azure's fake service (the real Speech SDK) as SSML
naming that language's voice, and a text stream opens a synthesizer for it; a provider left
without a voice for a language is skipped by the tts node's failover without a failure; espeak
speaks Cantonese with its ``yue`` voice, which the locale table names.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_azure import FakeAzure
from pydantic import ValidationError

from callweaver.frames.audio import OutputAudioFrame
from callweaver.frames.text import ReplyEndFrame, ReplyTextFrame
from callweaver.processors.tts import TextToSpeech
from callweaver.services.azure_tts import AzureTTS
from callweaver.services.elevenlabs_tts import ElevenLabsTTS
from callweaver.services.google_tts import GoogleTTS
from callweaver.services.health import shared_health
from callweaver.services.local_tts import EspeakTTS
from callweaver.services.locales import VoiceChoice, check_voices, default_table
from callweaver.testing import run_processor

# -- the choice ------------------------------------------------------------------------------


def test_listed_voices_then_the_own_language_then_the_table() -> None:
    choice = VoiceChoice(
        "azure",
        "en-US-AvaNeural",
        "en-US",
        voices={"es": "es-US-PalomaNeural", "pt-PT": "pt-PT-RaquelNeural"},
    )
    assert choice.voice("") == "en-US-AvaNeural"
    assert choice.voice("en-GB") == "en-US-AvaNeural"  # the configured voice, any region
    assert choice.voice("es-MX") == choice.voice("es") == "es-US-PalomaNeural"
    assert choice.voice("pt-BR") == "pt-PT-RaquelNeural"  # the listed Portuguese
    assert choice.voice("fr-CA") == "fr-CA-SylvieNeural"  # the table's row for it
    assert choice.voice("de-AT") == "de-DE-KatjaNeural"  # no row: the language's first
    assert choice.voice("fr") == "fr-FR-DeniseNeural"  # a bare language: its first row
    assert choice.voice("zh-HK") == "zh-HK-HiuMaanNeural"
    assert choice.voice("yue") == "zh-HK-HiuMaanNeural"
    assert choice.voice("zh") == "zh-CN-XiaoxiaoNeural"
    assert choice.voice("tlh") is None  # nobody speaks Klingon here
    served = choice.languages()
    assert {"en", "en-US", "es", "fr", "zh-HK", "yue", "zh", "pt-PT"} <= served


def test_cantonese_never_takes_a_mandarin_voice() -> None:
    mandarin = VoiceChoice("azure", "zh-CN-XiaoxiaoNeural", "zh-CN", use_table=False)
    assert mandarin.voice("zh-TW") == "zh-CN-XiaoxiaoNeural"
    assert mandarin.voice("zh-HK") is None and mandarin.voice("yue-CN") is None
    assert mandarin.languages() == {"zh-CN", "zh"}


def test_without_the_table_only_what_is_configured() -> None:
    choice = VoiceChoice("google", "en-US-Neural2-F", "en-US", use_table=False,
                         voices={"yue": "yue-HK-Standard-B"})  # fmt: skip
    assert choice.voice("fr-FR") is None
    assert choice.voice("zh-MO") == "yue-HK-Standard-B"
    assert choice.languages() == {"en-US", "en", "yue"}


def test_every_table_voice_is_chosen_for_its_own_locale() -> None:
    for provider in ("azure", "google"):
        choice = VoiceChoice(provider, "xx-XX-None", "xx-XX")
        for loc in default_table():
            voices = getattr(loc.tts, provider)
            if voices:
                assert choice.voice(loc.code) == voices[0], (provider, loc.code)


def test_bad_voices_are_refused_naming_the_entry() -> None:
    with pytest.raises(ValueError, match="'Spanish' is not a language or locale"):
        check_voices({"Spanish": "es-ES-ElviraNeural"})
    with pytest.raises(ValueError, match="es: 'Elvira' is not an Azure voice"):
        AzureTTS.Params(key="k", region="westeurope", voices={"es": "Elvira"})
    with pytest.raises(ValidationError, match="no voice"):
        EspeakTTS.Params(voices={"zh-HK": " "})
    with pytest.raises(ValidationError, match="other_languages"):
        AzureTTS.Params(key="k", region="westeurope", other_languages="all")  # type: ignore[arg-type]
    # every provider's voices are checked against its own names (ElevenLabs' were not)
    with pytest.raises(ValidationError, match="es: 'Rachel' is not an ElevenLabs voice id"):
        ElevenLabsTTS.Params(api_key="k", voice_id="a" * 20, voices={"es": "Rachel"})
    with pytest.raises(ValidationError, match="'Spanish' is not a language or locale"):
        ElevenLabsTTS.Params(api_key="k", voice_id="a" * 20, voices={"Spanish": "b" * 20})
    with pytest.raises(ValidationError, match="es: 'Elvira' is not a Google voice name"):
        GoogleTTS.Params(api_key="k", voices={"es": "Elvira"})
    with pytest.raises(ValidationError, match="is not an espeak-ng voice"):
        EspeakTTS.Params(voices={"es": "spanish voice"})
    fine = ElevenLabsTTS.Params(api_key="k", voice_id="a" * 20, voices={"es-MX": "b" * 20})
    assert fine.voices == {"es-MX": "b" * 20}


# -- on the wire -----------------------------------------------------------------------------


@pytest.fixture
async def azure() -> AsyncIterator[FakeAzure]:
    async with FakeAzure() as server:
        yield server


def reply(words: str, language: str, turn: int = 1) -> ReplyTextFrame:
    return ReplyTextFrame(call_id="test-call", turn_id=turn, text=words, sentence=True,
                          language=language)  # fmt: skip


def end(turn: int = 1) -> ReplyEndFrame:
    return ReplyEndFrame(call_id="test-call", turn_id=turn)


def node(*providers: dict[str, Any], **params: Any) -> TextToSpeech:
    # names of their own: the fallback audio is cached per process by the providers' names
    named = [{"name": f"{p['type']}-{uuid.uuid4().hex[:8]}"} | p for p in providers]
    params = {"fallback_text": "Sorry.", **params}
    return TextToSpeech(TextToSpeech.Params(providers=named, **params))


async def test_azure_speaks_each_reply_with_its_languages_voice(azure: FakeAzure) -> None:
    where = {"type": "azure", "key": azure.key, "host": azure.host}
    tts = node({**where, "voice": "en-US-JennyNeural", "voices": {"es": "es-MX-JorgeNeural"}})
    frames = [reply("Hello there.", "en-GB", 1), end(1), reply("Hola, buenas tardes.", "es-MX", 2),
              end(2), reply("Nei hou, m goi.", "zh-HK", 3), end(3),
              reply("Bonjour.", "fr-CA", 4), end(4)]  # fmt: skip
    run = await run_processor(tts, frames)
    assert run.ctx is not None and run.ctx.errors == []
    spoken = [(s.voice, s.text.strip()) for s in azure.syntheses if s.text != "Sorry."]
    assert spoken == [
        ("en-US-JennyNeural", "Hello there."),
        ("es-MX-JorgeNeural", "Hola, buenas tardes."),
        ("zh-HK-HiuMaanNeural", "Nei hou, m goi."),  # the fake speaks with flite
        ("fr-CA-SylvieNeural", "Bonjour."),
    ]
    turns = {f.turn_id for f in run.downstream if isinstance(f, OutputAudioFrame)}
    assert turns == {1, 2, 3, 4}


async def test_azure_opens_a_text_stream_per_voice(azure: FakeAzure) -> None:
    tts = AzureTTS(AzureTTS.Params(key=azure.key, host=azure.host))

    async def pieces(text: str) -> AsyncIterator[str]:
        for word in text.split(" "):
            yield word + " "

    try:
        async with asyncio.timeout(20):
            for text, language in (("Hola, ¿qué tal?", "es-ES"), ("Good evening.", "en-US"),
                                   ("Hola otra vez.", "es-ES")):  # fmt: skip
                assert [c async for c in tts.synthesize_stream(pieces(text), language)]
    finally:
        await tts.aclose()
    streamed = [(s.voice, s.streamed) for s in azure.syntheses]
    assert streamed == [("es-ES-ElviraNeural", True), ("en-US-JennyNeural", True),
                        ("es-ES-ElviraNeural", True)]  # fmt: skip
    assert len({s.connection for s in azure.syntheses}) == 2  # one socket per voice


async def test_a_provider_without_the_voice_is_skipped_without_blame(azure: FakeAzure) -> None:
    azure_name = f"azure-{uuid.uuid4().hex[:8]}"
    english_only = {"type": "azure", "key": azure.key, "host": azure.host,
                    "other_languages": "none", "name": azure_name}  # fmt: skip
    tts = node(english_only, {"type": "espeak"})
    run = await run_processor(
        tts, [reply("Guten Tag.", "de-DE"), end(), reply("Good day.", "en-US", 2), end(2)]
    )
    assert run.ctx is not None and run.ctx.errors == []
    assert [s.text.strip() for s in azure.syntheses if s.text != "Sorry."] == ["Good day."]
    audio = [f for f in run.downstream if isinstance(f, OutputAudioFrame)]
    assert {f.turn_id for f in audio} == {1, 2}  # espeak spoke the German
    assert shared_health().breaker(azure_name).snapshot()["failures"] == 0


def test_espeak_speaks_cantonese_with_its_yue_voice() -> None:
    espeak = EspeakTTS()
    assert espeak.voice_for("zh-HK") == espeak.voice_for("zh-MO") == "yue"
    assert espeak.voice_for("zh-CN") == "cmn"
    assert espeak.voice_for("en-GB") == "en-us"  # the configured voice for its language
    assert espeak.voice_for("tlh") == "tlh"  # espeak's own name: it says if it has none
    assert EspeakTTS(EspeakTTS.Params(voices={"es": "es-419"})).voice_for("es-MX") == "es-419"


async def test_espeak_cantonese_is_spoken() -> None:
    chunks = [c async for c in EspeakTTS().synthesize("你好，多謝晒。", "zh-HK")]
    assert sum(len(c.pcm) for c in chunks) > 8000
