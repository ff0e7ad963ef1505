"""Text frames: what the caller said (transcripts) and what the bot says (reply text)."""

from __future__ import annotations

from dataclasses import dataclass

from callweaver.frames.base import Frame


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptFrame(Frame):
    """Recognised caller speech. ``final`` is False for interim (partial) hypotheses."""

    text: str
    final: bool = True
    language: str = ""
    confidence: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyTextFrame(Frame):
    """A piece of the bot's reply: an LLM token, or a whole sentence ready for speech."""

    interruptible = True

    text: str
    sentence: bool = False
    language: str = ""
    cacheable: bool = False
    """Safe to keep and replay for other callers (a declared answer: no personal data), so a
    TTS node with an audio cache may keep its audio."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyEndFrame(Frame):
    """The bot's reply for this turn is complete (no more text or audio will follow)."""

    interruptible = True
