"""Which language a text is matched as, and that language's normalization and slots.

Matching keys on a *matching language*, not on the BCP-47 tag as given: ``en-US`` and
``en-GB`` are ``en``; ``es-MX`` is ``es``; Mandarin in any script (``zh``, ``zh-CN``,
``zh-TW``, ``zh-Hans``, ``cmn``) is ``zh``; Cantonese (``yue``, ``zh-HK``, ``zh-MO``,
``zh-yue``) is ``yue``: the same characters, another language, so a Cantonese caller never
gets a Mandarin entry's answer unless the entry says it serves both.

:data:`SLOT_LANGUAGES` are those whose slots are known (English, Spanish, Mandarin,
Cantonese). In any other language only an exact match (after :func:`normalize`) is safe.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Final

from callweaver.text import slots, slots_es, slots_zh

__all__ = ["SLOT_LANGUAGES", "extract_slots", "language_key", "normalize", "pick"]

_CANTONESE: Final = frozenset({"yue", "zh-hk", "zh-mo", "zh-yue", "zh-hant-hk", "yue-hk"})
_MANDARIN: Final = frozenset({"zh", "cmn", "zh-cn", "zh-sg", "zh-tw", "zh-hans", "zh-hant"})

_NORMALIZE: Final[Mapping[str, Callable[[str], str]]] = {
    "en": slots.normalize,
    "es": slots_es.normalize,
    "zh": slots_zh.normalize,
    "yue": slots_zh.normalize,
}
_SLOTS: Final[Mapping[str, Callable[[str], slots.Slots]]] = {
    "en": slots.extract_slots,
    "es": slots_es.extract_slots,
    "zh": slots_zh.extract_slots,
    "yue": slots_zh.extract_slots,
}
SLOT_LANGUAGES: Final = frozenset(_SLOTS)


def language_key(tag: str) -> str:
    """The matching language of a BCP-47 tag (or primary subtag): ``"zh-HK"`` -> ``"yue"``,
    ``"zh-Hant-TW"`` -> ``"zh"``, ``"es-419"`` -> ``"es"``, ``""`` -> ``"und"``."""
    t = tag.strip().lower().replace("_", "-")
    if not t:
        return "und"
    parts = t.split("-")
    if t in _CANTONESE or parts[0] == "yue" or (parts[0] == "zh" and parts[-1] in ("hk", "mo")):
        return "yue"
    if t in _MANDARIN or parts[0] in ("zh", "cmn"):
        return "zh"
    return parts[0]


def pick(texts: str | Mapping[str, str], language: str) -> str:
    """The text of ``texts`` (one for every language, or one per locale or language) for
    ``language``: its locale's (any case), else one of its matching language (``es-MX`` takes
    ``es`` or ``es-ES``), else the first."""
    if isinstance(texts, str):
        return texts
    wanted = language.strip().lower()
    for code, text in texts.items():
        if code.lower() == wanted:
            return text
    key = language_key(language)
    for code, text in texts.items():
        if language_key(code) == key:
            return text
    return next(iter(texts.values()))


def normalize(text: str, language: str) -> str:
    """``text`` as compared in ``language`` (a matching language, see :func:`language_key`):
    the language's own normalization, or lowercase without punctuation for the others."""
    fn = _NORMALIZE.get(language)
    if fn is not None:
        return fn(text)
    s = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]|_", " ", s)).strip()


def extract_slots(text: str, language: str) -> slots.Slots:
    """The slots of ``text`` in ``language``; empty slots where the language has none."""
    fn = _SLOTS.get(language)
    return fn(text) if fn is not None else slots.Slots()
