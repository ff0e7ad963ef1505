"""Which language a text is in, by its letters: lingua's n-gram models (their weights ship in
the ``lingua-language-detector`` wheel), over the languages a deployment speaks.

:meth:`TextDetector.scores` gives each candidate language a confidence (they sum to 1; a
text with no letters, "2 3 4", gets none). Keys are matching languages
(:func:`~callweaver.text.languages.language_key`): ``zh`` is Chinese in any script, ``fil``
is lingua's Tagalog. Cantonese is not a lingua language: Chinese text is told Cantonese or
Mandarin by :mod:`callweaver.text.chinese`.

The models are large at high accuracy (about 25 MB and 70 ms to load per language; low
accuracy is about 1.5 MB, and misses more short turns), so a detector covers only its
deployment's languages and is built once per process per set of languages
(:func:`shared_detector`), in a worker thread: the first call's start pays for it, not a
turn. Scoring takes tens of microseconds.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Iterable
from typing import Any, Final, Literal

from callweaver.errors import ModelUnavailable
from callweaver.text.languages import language_key

__all__ = ["Accuracy", "TextDetector", "detector", "lingua_languages", "shared_detector"]

Accuracy = Literal["high", "low"]
_INSTALL: Final = "pip install 'callweaver[multilingual]' (lingua-language-detector)"
# our matching language -> lingua's ISO 639-1 code, where they differ
_TO_LINGUA: Final = {"fil": "tl", "nb": "nb", "no": "nb", "iw": "he"}
_FROM_LINGUA: Final = {"tl": "fil"}


def _lingua() -> Any:
    try:
        import lingua
    except ImportError:
        raise ModelUnavailable(f"text language detection needs {_INSTALL}") from None
    return lingua


@functools.cache
def lingua_languages() -> frozenset[str]:
    """The matching languages lingua has models for."""
    lingua = _lingua()
    codes = (lang.iso_code_639_1.name.lower() for lang in lingua.Language.all())
    return frozenset(_FROM_LINGUA.get(code, code) for code in codes)


class TextDetector:
    """Confidences over a fixed set of languages (see the module docstring)."""

    def __init__(self, languages: Iterable[str], accuracy: Accuracy = "high") -> None:
        lingua = _lingua()
        wanted = sorted({language_key(code) for code in languages} - {"yue", "und"})
        unknown = [code for code in wanted if code not in lingua_languages()]
        if unknown:
            raise ValueError(f"no text detection for {', '.join(unknown)} (lingua lacks it)")
        if len(wanted) < 2:
            raise ValueError("text detection needs at least two languages to tell apart")
        self.languages: frozenset[str] = frozenset(wanted)
        self.accuracy: Accuracy = accuracy
        to_lingua = {
            lingua.Language.from_iso_code_639_1(
                lingua.IsoCode639_1.from_str(_TO_LINGUA.get(code, code))
            ): code
            for code in wanted
        }
        builder = lingua.LanguageDetectorBuilder.from_languages(*to_lingua)
        builder = builder.with_preloaded_language_models()
        if accuracy == "low":
            builder = builder.with_low_accuracy_mode()
        self._detector: Any = builder.build()
        self._keys = to_lingua

    def scores(self, text: str) -> dict[str, float]:
        """Each language's confidence that ``text`` is in it, best first, zeros left out."""
        found = self._detector.compute_language_confidence_values(text)
        return {self._keys[c.language]: c.value for c in found if c.value > 0.0}

    def __repr__(self) -> str:
        return f"TextDetector({sorted(self.languages)}, accuracy={self.accuracy!r})"


_lock = threading.Lock()
_built: dict[tuple[frozenset[str], Accuracy], TextDetector] = {}


def detector(languages: Iterable[str], accuracy: Accuracy = "high") -> TextDetector:
    """The process's detector over ``languages``, built on first use (blocking: about a
    second at high accuracy for a dozen languages). Raises ValueError for a language lingua
    does not know, ModelUnavailable without lingua."""
    key = (frozenset(language_key(code) for code in languages) - {"yue", "und"}, accuracy)
    with _lock:
        found = _built.get(key)
        if found is None:
            found = _built[key] = TextDetector(key[0], accuracy)
        return found


async def shared_detector(languages: Iterable[str], accuracy: Accuracy = "high") -> TextDetector:
    """:func:`detector`, built in a worker thread so that the event loop goes on."""
    return await asyncio.to_thread(detector, tuple(languages), accuracy)
