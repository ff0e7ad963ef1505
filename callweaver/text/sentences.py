"""Cutting streamed text into sentences for speech.

An LLM streams its reply in small pieces; TTS speaks best (and soonest) a sentence at a time.
:class:`SentenceSplitter` takes the pieces as they come and gives back every sentence as soon
as it is complete: at ``.``, ``!``, ``?``, ``;`` or a newline followed by a space, and at
``。！？；`` at once (Chinese and Japanese put no space after them). Not at the dot of "Dr.",
"e.g." or "3.5". A sentence that runs past ``max_chars`` is cut at its last comma or space, so
that a model that never stops a sentence does not hold the speech back.
"""

from __future__ import annotations

import re

_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "etc", "e.g", "i.e", "a.m"}
    | {"p.m", "no", "approx", "dept", "mt", "ave", "inc", "ltd", "co"}
)
_CJK_END = "。！？；"
_END = ".!?;"
_WORD_BEFORE = re.compile(r"([\w.]+)$")


class SentenceSplitter:
    """Feed pieces with :meth:`push`; each call returns the sentences it completed.
    :meth:`flush` returns what is left at the end of the reply."""

    __slots__ = ("_buf", "max_chars")

    def __init__(self, max_chars: int = 240) -> None:
        self._buf = ""
        self.max_chars = max_chars

    def push(self, piece: str) -> list[str]:
        self._buf += piece
        out: list[str] = []
        start = 0
        buf = self._buf
        i = 0
        while i < len(buf):
            cut = -1
            if _ends_here(buf, start, i):
                cut = i + 1
            if cut > 0:
                sentence = buf[start:cut].strip()
                if sentence:
                    out.append(sentence)
                start = cut
            elif i + 1 - start > self.max_chars:
                cut = _soft_cut(buf, start, i + 1)
                out.append(buf[start:cut].strip())
                start = cut
            i += 1
        self._buf = buf[start:]
        return out

    def flush(self) -> list[str]:
        rest, self._buf = self._buf.strip(), ""
        return [rest] if rest else []


def _ends_here(buf: str, start: int, i: int) -> bool:
    """Does the sentence that began at ``start`` end with ``buf[i]``?"""
    c = buf[i]
    if c in _CJK_END or c == "\n":
        return True
    if c not in _END or i + 1 >= len(buf) or not buf[i + 1].isspace():
        return False
    return c != "." or not _abbreviation(buf[start:i])


def _abbreviation(before: str) -> bool:
    """Is the text just before a dot an abbreviation or a number ("3" in "3.5" is handled by
    requiring a space after the dot)?"""
    match = _WORD_BEFORE.search(before)
    if match is None:
        return False
    word = match.group(1).lower()
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _soft_cut(buf: str, start: int, end: int) -> int:
    """Where to cut an over-long sentence: after its last comma, else its last space."""
    for mark in (",", " "):
        at = buf.rfind(mark, start, end)
        if at > start:
            return at + 1
    return end


def split_sentences(text: str, max_chars: int = 240) -> list[str]:
    """A whole text's sentences."""
    splitter = SentenceSplitter(max_chars)
    return splitter.push(text) + splitter.flush()


def lead_clause(sentence: str, *, longer_than: int = 60, min_chars: int = 16) -> list[str]:
    """A long sentence as its first clause and the rest, cut after the first comma, colon or
    semicolon that leaves at least ``min_chars`` in the clause; shorter sentences (or ones
    with no such mark) whole. Speech synthesis takes time in proportion to the text: the
    first words of a reply are heard sooner when the first clause is synthesized alone."""
    if len(sentence) <= longer_than:
        return [sentence]
    for i, c in enumerate(sentence):
        if c in ",;:，；：" and i + 1 >= min_chars and i + 1 < len(sentence) - min_chars // 2:
            head, tail = sentence[: i + 1].strip(), sentence[i + 1 :].strip()
            if tail:
                return [head, tail]
    return [sentence]
