"""Local speech-to-text with whisper (:mod:`callweaver.resources.whisper`): no network.

The call's audio is resampled to whisper's 16 kHz and decoded on the process's shared model.
Whisper hallucinates on silence and noise ("Thank you.", "you"): an utterance shorter than
``min_speech_ms`` is not sent, and a transcript that is only punctuation comes back empty.
The multilingual model loops on some inputs: ``max_new_tokens`` caps its output. The encoder
hears only the utterance plus a second of silence (``window: short``, see
:mod:`callweaver.resources.whisper`), unless ``window: full``.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from callweaver.audio.resample import resample
from callweaver.errors import CallweaverError, ProviderError
from callweaver.resources import whisper
from callweaver.services.stt import Transcript, Utterance


class WhisperParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field("tiny.en", description="tiny.en (English) or base (multilingual)")
    language: str = Field("", description="default language when the call gives none")
    concurrency: int = Field(1, ge=1, le=8, description="decodes at once in this process")
    max_new_tokens: int = Field(96, ge=8, le=440, description="cap on tokens per utterance")
    min_speech_ms: int = Field(120, ge=0, description="shorter utterances are not decoded")
    window: Literal["short", "full"] = Field(
        "short",
        description="short: the encoder hears the utterance plus 1 s (several times faster); "
        "full: whisper's fixed 30 s window",
    )

    @field_validator("model")
    @classmethod
    def _installed(cls, model: str) -> str:
        whisper.check_installed(model)  # ValueError / ModelUnavailable with what to install
        return model


class WhisperSTT:
    """The whisper provider of the STT interface."""

    Params = WhisperParams

    def __init__(self, params: WhisperParams | None = None, *, name: str = "whisper") -> None:
        self.params = params or WhisperParams()
        self.name = name
        self.model = whisper.shared_model(self.params.model, concurrency=self.params.concurrency)

    @property
    def busy(self) -> bool:
        return self.model.busy

    async def transcribe(self, utterance: Utterance) -> Transcript:
        p = self.params
        if utterance.duration_s * 1000 < p.min_speech_ms:
            return Transcript("", utterance.language or p.language)
        pcm = utterance.pcm
        if utterance.sample_rate != whisper.SAMPLE_RATE:
            pcm = resample(pcm, utterance.sample_rate, whisper.SAMPLE_RATE)
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        try:
            result = await self.model.transcribe(
                audio,
                language=utterance.language or p.language,
                max_new_tokens=p.max_new_tokens,
                window=p.window,
            )
        except CallweaverError:
            raise
        except Exception as exc:  # the runtime's own errors: a failed decode
            raise ProviderError(self.name, f"decode failed: {exc}", retryable=True) from exc
        text = result.text if any(c.isalnum() for c in result.text) else ""
        return Transcript(text, result.language, result.language_probability)

    async def aclose(self) -> None:
        """The model is the process's: nothing to release per call."""
