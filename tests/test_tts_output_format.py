"""Cloud TTS providers left to ``auto`` speak the transport's format: the transport's rate,
and 8 kHz mu-law for Twilio, asked of each service on its real wire (the fakes record what
was asked). A call's StartFrame carries the transport's rate and encoding."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fake_azure import FakeAzure
from fake_elevenlabs import FakeElevenLabs
from fake_google_tts import FakeGoogleTTS

from callweaver.frames.audio import OutputAudioFrame
from callweaver.frames.text import ReplyEndFrame, ReplyTextFrame
from callweaver.pipelines.call import Call
from callweaver.pipelines.graph import Graph, Node
from callweaver.processors.tts import TextToSpeech
from callweaver.services import health
from callweaver.services.tts import nearest_rate
from callweaver.testing import ListIO

KEY = "test-key-0123456789"
VOICE = "AAAAAAAAAAAAAAAAAAAA"
TEXT = "Your appointment is on Tuesday at nine."

# transport (rate, encoding) -> what each service is asked for
CASES = {
    (8000, "mulaw"): {"azure": "raw-8khz-8bit-mono-mulaw", "elevenlabs": "ulaw_8000",
                      "google": ("MULAW", 8000)},
    (48000, "pcm16"): {"azure": "raw-48khz-16bit-mono-pcm", "elevenlabs": "pcm_48000",
                       "google": ("PCM", 48000)},
    (16000, "pcm16"): {"azure": "raw-16khz-16bit-mono-pcm", "elevenlabs": "pcm_16000",
                       "google": ("PCM", 16000)},
    (8000, "pcm16"): {"azure": "raw-8khz-16bit-mono-pcm", "elevenlabs": "pcm_8000",
                      "google": ("PCM", 8000)},
}  # fmt: skip


@pytest.fixture(autouse=True)
def own_breakers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "_process_health", None)


@pytest.fixture
async def fakes() -> AsyncIterator[dict[str, Any]]:
    async with (
        FakeAzure() as azure,
        FakeElevenLabs(api_key=KEY) as eleven,
        FakeGoogleTTS() as google,
    ):
        yield {"azure": azure, "elevenlabs": eleven, "google": google}


def provider(kind: str, fakes: dict[str, Any]) -> dict[str, Any]:
    name = f"{kind}-{uuid.uuid4().hex[:6]}"  # the fallback audio is cached per provider name
    if kind == "azure":
        return {"type": "azure", "name": name, "key": fakes["azure"].key,
                "host": fakes["azure"].host}  # fmt: skip
    if kind == "elevenlabs":
        return {"type": "elevenlabs", "name": name, "api_key": KEY, "voice_id": VOICE,
                "base_url": fakes["elevenlabs"].base_url}  # fmt: skip
    return {"type": "google", "name": name, "voice": "en-US-Neural2-F",
            "endpoint": fakes["google"].address, "insecure": True}  # fmt: skip


def asked(kind: str, fakes: dict[str, Any]) -> list[Any]:
    """What the service was asked for, per request."""
    if kind == "azure":
        return [s.output_format for s in fakes["azure"].syntheses]
    if kind == "elevenlabs":
        return [
            r.output_format for r in fakes["elevenlabs"].requests if "/text-to-speech/" in r.path
        ]
    return [(r.encoding, r.sample_rate) for r in fakes["google"].requests]


async def speak(kind: str, fakes: dict[str, Any], rate: int, encoding: str) -> list[Any]:
    tts = Node.of("tts", TextToSpeech, TextToSpeech.Params(providers=[provider(kind, fakes)]))
    io = ListIO([ReplyTextFrame(turn_id=1, text=TEXT, sentence=True), ReplyEndFrame(turn_id=1)])
    io.out_sample_rate = rate  # type: ignore[attr-defined]  # as a transport says it
    io.out_encoding = encoding  # type: ignore[attr-defined]
    report = await Call(Graph([tts])).run(io)
    assert report.errors == []
    audio = [f for f in io.written if isinstance(f, OutputAudioFrame)]
    assert audio and {f.sample_rate for f in audio} == {rate}
    assert sum(f.duration_ns for f in audio) / 1e9 > 1.0  # the sentence, not silence
    return asked(kind, fakes)


@pytest.mark.parametrize("kind", ["azure", "elevenlabs", "google"])
@pytest.mark.parametrize(("rate", "encoding"), list(CASES))
async def test_auto_providers_speak_the_transports_format(
    fakes: dict[str, Any], kind: str, rate: int, encoding: str
) -> None:
    formats = await speak(kind, fakes, rate, encoding)
    # the fallback audio at start-up, then the sentence: both in the transport's format
    assert formats and set(formats) == {CASES[rate, encoding][kind]}


async def test_a_configured_format_is_kept(fakes: dict[str, Any]) -> None:
    spec = {**provider("elevenlabs", fakes), "output_format": "pcm_24000"}
    tts = Node.of("tts", TextToSpeech, TextToSpeech.Params(providers=[spec]))
    io = ListIO([ReplyTextFrame(turn_id=1, text=TEXT, sentence=True), ReplyEndFrame(turn_id=1)])
    io.out_sample_rate, io.out_encoding = 8000, "mulaw"  # type: ignore[attr-defined]
    await Call(Graph([tts])).run(io)
    assert set(asked("elevenlabs", fakes)) == {"pcm_24000"}  # resampled here instead
    assert {f.sample_rate for f in io.written if isinstance(f, OutputAudioFrame)} == {8000}


def test_nearest_rate_prefers_the_rate_then_the_next_above() -> None:
    assert nearest_rate([8000, 16000, 24000], 16000) == 16000
    assert nearest_rate([8000, 16000, 24000], 22050) == 24000
    assert nearest_rate([8000, 16000, 24000], 48000) == 24000
    with pytest.raises(ValueError, match="no rates"):
        nearest_rate([], 8000)


def test_twilio_says_it_sends_8khz_mulaw() -> None:
    from callweaver.transports.twilio.media import TwilioMediaIO

    assert (TwilioMediaIO.out_sample_rate, TwilioMediaIO.out_encoding) == (8000, "mulaw")
