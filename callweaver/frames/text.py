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
    answer: str | None = None
    """The reply already given to this transcript upstream (a response-cache hit): reply
    nodes add the exchange to their conversation and do not answer it again."""


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


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefetchFrame(Frame):
    """Reply text likely to be said soon (declared answers at start-up, the response cache's
    predictions after a reply): a TTS node with an audio cache synthesizes the sentences it
    does not hold yet, in idle time and within its budget; nothing is played. ``preload``:
    finish before the call ends (start-up: the server's warm call); otherwise the work is
    dropped with the call."""

    texts: tuple[str, ...]
    language: str = ""
    preload: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class LanguageFrame(Frame):
    """The call's language is now ``locale`` (BCP-47), from ``previous``: the ``language``
    node sends it downstream (a transport that speaks itself, ConversationRelay, switches its
    voice and recognizer) and upstream (the ``stt`` node hears the next turns in it).
    ``reason``: ``"start"``, ``"explicit"`` (the caller asked) or ``"detected"``."""

    locale: str
    previous: str = ""
    reason: str = "detected"
