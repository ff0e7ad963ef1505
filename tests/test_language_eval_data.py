"""bench/language/utterances.py has the shape the language bench reads: every language with
enough short turns and sentences, short turns short, enough mixed and ambiguous turns, calls
long enough, with well-formed locales of the locale table that the deployment allows
(structure only: no detector)."""

from __future__ import annotations

import re

from bench.language.utterances import (
    AMBIGUOUS_IN_CALL,
    CALLS,
    LANGUAGES,
    MIXED,
    SENTENCES,
    SHORT,
)
from callweaver.services.locales import default_table

EXPECTED = (
    "en", "es", "fr", "de", "pt", "it", "nl", "zh", "yue", "ja", "ko", "vi", "hi", "ar", "ru",
    "pl", "tr",
)  # fmt: skip
CHARACTERS = ("zh", "yue", "ja")  # written without spaces: counted in characters
LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2}|-\d{3})?$")


def words(text: str) -> int:
    return sum(any(c.isalnum() for c in w) for w in text.split())


def characters(text: str) -> int:
    return sum(c.isalnum() for c in text)


def test_every_language_has_short_turns_and_sentences() -> None:
    assert set(LANGUAGES) == set(EXPECTED)
    for language in EXPECTED:
        assert sum(lang == language for _, lang in SHORT) >= 25, language
        assert sum(lang == language for _, lang in SENTENCES) >= 10, language
    assert {lang for _, lang in (*SHORT, *SENTENCES)} == set(EXPECTED)
    assert len(set(SHORT)) == len(SHORT)
    assert len(set(SENTENCES)) == len(SENTENCES)


def test_short_turns_are_short_and_sentences_are_not() -> None:
    for text, lang in SHORT:
        if lang in CHARACTERS:
            assert 1 <= characters(text) <= 8, text
        else:
            assert 1 <= words(text) <= 4, text
    for text, lang in SENTENCES:
        if lang in CHARACTERS:
            assert 8 <= characters(text) <= 60, text
        else:
            assert 5 <= words(text) <= 25, text


def test_mixed_and_ambiguous_turns() -> None:
    assert len(MIXED) >= 30
    assert len(AMBIGUOUS_IN_CALL) >= 30
    for text, lang in (*MIXED, *AMBIGUOUS_IN_CALL):
        assert text.strip() and lang in EXPECTED, (text, lang)
    assert len({lang for _, lang in AMBIGUOUS_IN_CALL}) >= 10


def test_calls_are_long_and_their_locales_well_formed() -> None:
    assert len(CALLS) >= 12
    assert sum(len(c.turns) >= 20 for c in CALLS) >= 3
    assert len({c.name for c in CALLS}) == len(CALLS)
    for call in CALLS:
        assert call.turns, call.name
        for locale in (call.default, *call.allowed):
            assert LOCALE.match(locale), (call.name, locale)
            assert locale in default_table(), (call.name, locale)  # the tracker knows it
        assert call.default in call.allowed, call.name
        for text, locale in call.turns:
            assert text.strip(), call.name
            assert locale in call.allowed, (call.name, text, locale)
