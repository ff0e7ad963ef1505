"""What the caller heard of each reply: the text spoken per turn, laid on the turn's audio
timeline, and cut where a barge-in stopped the audio.

Three nodes share it through the call's context (:attr:`CallContext.spoken`):

- the TTS node adds each piece of text as its audio leaves (:meth:`SpokenLog.add`): the text,
  how long its audio is, and where each word starts when the provider says so (Azure's word
  boundaries); otherwise the words are spread over the audio in proportion to their length;
- the call's output node cuts the turn at a barge-in (:meth:`SpokenLog.cut`), at the audio the
  transport had played: what it had been given of the turn, less what it dropped; a transport
  whose far end speaks the text itself (ConversationRelay) reports the heard text instead
  (:meth:`SpokenLog.cut_text`);
- the reply node keeps in the conversation only what was heard (:meth:`SpokenLog.heard`), so
  the model knows where it was interrupted, and the call's report shows it.

A word counts as heard once its start has played. Pieces may be added after the cut (a
synthesis cancelled by the barge-in adds what it had sent); what starts after it is unheard.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"\S+")
_SPACELESS = re.compile(r"[\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")  # CJK, kana


@dataclass(frozen=True, slots=True)
class Word:
    """A word of spoken text: where it starts in its piece's audio, and its place in the text."""

    start_ms: float
    end_char: int  # the text up to here is said once this word has started


@dataclass(frozen=True, slots=True)
class Piece:
    """Text spoken in one go: its start on the turn's audio timeline and its words."""

    text: str
    start_ms: float
    duration_ms: float
    words: tuple[Word, ...]


def estimate_words(text: str, duration_ms: float) -> tuple[Word, ...]:
    """Word starts spread over ``duration_ms`` in proportion to the characters before them
    (each character is a word in text written without spaces)."""
    spans = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    units: list[tuple[int, int]] = []
    for start, end in spans:
        if _SPACELESS.search(text, start, end):
            units.extend((i, i + 1) for i in range(start, end))
        else:
            units.append((start, end))
    total = sum(end - start for start, end in units) or 1
    words, before = [], 0
    for start, end in units:
        words.append(Word(duration_ms * before / total, end))
        before += end - start
    return tuple(words)


def words_from_boundaries(
    text: str, boundaries: Sequence[tuple[float, str]], duration_ms: float
) -> tuple[Word, ...]:
    """Words from a provider's boundaries ((start in ms, the word as spoken)), found in order
    in ``text``; a boundary whose word is not found next is skipped. Without any boundary that
    matches, the words are estimated."""
    words, cursor = [], 0
    for start_ms, spoken in boundaries:
        at = text.find(spoken, cursor) if spoken else -1
        if at < 0:
            continue
        cursor = at + len(spoken)
        words.append(Word(min(max(start_ms, 0.0), duration_ms), cursor))
    return tuple(words) if words else estimate_words(text, duration_ms)


class SpokenLog:
    """The turns' spoken pieces and their cuts; see the module docstring."""

    def __init__(self) -> None:
        self._pieces: dict[int, list[Piece]] = {}
        self._cuts: dict[int, float] = {}
        self._told: dict[int, str] = {}

    def add(
        self,
        turn: int,
        text: str,
        duration_ms: float,
        boundaries: Sequence[tuple[float, str]] = (),
    ) -> None:
        """``text`` was spoken next in ``turn``, as ``duration_ms`` of audio; ``boundaries``
        are the provider's word starts (ms from the start of this audio, the word)."""
        pieces = self._pieces.setdefault(turn, [])
        start = pieces[-1].start_ms + pieces[-1].duration_ms if pieces else 0.0
        words = (
            words_from_boundaries(text, boundaries, duration_ms)
            if boundaries
            else estimate_words(text, duration_ms)
        )
        pieces.append(Piece(text, start, duration_ms, words))

    def spoken_ms(self, turn: int) -> float:
        """How much audio of ``turn`` has been added."""
        pieces = self._pieces.get(turn)
        return pieces[-1].start_ms + pieces[-1].duration_ms if pieces else 0.0

    def cut(self, turn: int, played_ms: float) -> None:
        """A barge-in stopped ``turn``'s audio after ``played_ms`` of it had played (the
        first cut of a turn counts)."""
        self._cuts.setdefault(turn, max(played_ms, 0.0))

    def cut_text(self, turn: int, heard: str) -> None:
        """A barge-in stopped ``turn`` after the far end had said ``heard`` of it."""
        self._told.setdefault(turn, heard.strip())
        self._cuts.setdefault(turn, self.spoken_ms(turn))

    def cuts(self) -> dict[int, str]:
        """Every cut turn and what the caller heard of it."""
        return {turn: self.heard(turn) or "" for turn in sorted(self._cuts)}

    def cut_ms(self, turn: int) -> float | None:
        return self._cuts.get(turn)

    def heard(self, turn: int) -> str | None:
        """The text of ``turn`` the caller heard before a barge-in, or None when the turn was
        not cut."""
        if turn in self._told:
            return self._told[turn]
        played = self._cuts.get(turn)
        if played is None:
            return None
        said: list[str] = []
        for piece in self._pieces.get(turn, ()):
            if piece.start_ms + piece.duration_ms <= played:
                said.append(piece.text.strip())
                continue
            end = 0
            for word in piece.words:
                if piece.start_ms + word.start_ms < played:
                    end = word.end_char
            if end:
                said.append(piece.text[:end].strip())
            break
        text = ""
        for part in filter(None, said):  # no space after text written without spaces
            text += part if not text or _SPACELESS.match(text[-1]) else " " + part
        return text
