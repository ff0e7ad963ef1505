"""Which language a call is in, turn by turn: detection that follows the caller without
flapping (per call, no I/O).

:class:`LanguageTracker` holds the call's locale and, for each final transcript, decides
whether it changes (:meth:`LanguageTracker.observe`), from:

1. **an explicit request**: "can we speak Spanish?", "¿podemos hablar en inglés?",
   "講廣東話得唔得", "说普通话": the call switches at once;
2. **the text**: Chinese characters are told Cantonese or Mandarin by their written markers
   (:func:`callweaver.text.chinese.cantonese_or_mandarin`), Hindi in Latin letters
   ("mera order abhi tak nahi aaya") by its function words
   (:func:`callweaver.text.hinglish.is_hinglish`: lingua reads it as English), where the call
   may speak Hindi; other text by lingua's models
   over the deployment's languages (:mod:`callweaver.services.language_detect`), weighed
   with the STT's reported language (``stt_weight``) and the call's own (``context_weight``:
   a short "Sim" in a Portuguese call is Portuguese, not Italian);
3. **the call's context**: the language the previous turns settled on, the configured
   default, the number dialled (``To`` of the call's parameters: +852 is Hong Kong, +853
   Macau, +86 20 Guangzhou), which picks the locale a language is spoken in, and a
   ``language`` call parameter (a Twilio ``<Parameter>`` an IVR menu set), which picks the
   first locale outright.

Hysteresis: a turn in another language moves the call only when it has at least
``min_words`` words (a lone "OK" or "Sim" never does) and ``switch_after`` such turns come in
a row; such a turn in the call's language resets the count, a shorter one does neither. A
turn long enough to move the call is judged by its own words; the call's language weighs in
on the shorter ones, where the letters say too little.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from callweaver.services.language_detect import TextDetector
from callweaver.services.locales import LocaleTable, default_table
from callweaver.text.chinese import cantonese_or_mandarin, has_han
from callweaver.text.hinglish import is_hinglish
from callweaver.text.languages import language_key

__all__ = ["Decision", "LanguageTracker", "requested_language"]

#: Languages a caller may ask for by name, in a few languages each: name -> matching language.
_NAMES: Final[Mapping[str, str]] = {
    "english": "en", "inglés": "en", "ingles": "en", "anglais": "en", "englisch": "en",
    "英文": "en", "英語": "en", "英语": "en",
    "spanish": "es", "español": "es", "espanol": "es", "castellano": "es", "espagnol": "es",
    "西班牙文": "es", "西班牙语": "es",
    "french": "fr", "francés": "fr", "français": "fr", "法文": "fr", "法语": "fr",
    "german": "de", "alemán": "de", "deutsch": "de", "德文": "de", "德语": "de",
    "portuguese": "pt", "portugués": "pt", "português": "pt",
    "italian": "it", "italiano": "it",
    "mandarin": "zh", "mandarín": "zh", "chinese": "zh", "普通話": "zh", "普通话": "zh",
    "國語": "zh", "国语": "zh", "中文": "zh",
    "cantonese": "yue", "cantonés": "yue", "廣東話": "yue", "广东话": "yue", "粵語": "yue",
    "粤语": "yue", "廣州話": "yue", "广州话": "yue",
    "japanese": "ja", "日本語": "ja", "korean": "ko", "한국어": "ko",
    "vietnamese": "vi", "tiếng việt": "vi", "hindi": "hi", "arabic": "ar", "russian": "ru",
}  # fmt: skip
# a verb of asking to speak, before or after the language's name ("Deutsch sprechen")
_VERBS: Final = re.compile(
    r"^(speak|speaking|talk|switch|change|habl\w*|parl\w*|sprech\w*|sprache|red\w*|"
    r"falar|fala\w*|baat|bol\w*|говор\w*|nói)$"
)
# a preposition right before the name: a request only in a short turn ("in English,
# please", "en español por favor"), not "a receipt in English"
_INTO: Final = re.compile(r"^(in|en|em|auf|na|bằng)$")
_SHORT_REQUEST: Final = 5
_ASK_CJK: Final = re.compile(
    r"(講|讲|說|说|用)(?P<name>廣東話|广东话|粵語|粤语|普通話|普通话|國語|国语|英文|英語|英语)"
    r"|(?P<ja>日本語|英語)で|(?P<ko>한국어|영어)로"
)
_JA_KO: Final[Mapping[str, str]] = {"日本語": "ja", "英語": "en", "한국어": "ko", "영어": "en"}
# words: Indic scripts' vowel signs are marks, which \w leaves out
_WORD: Final = re.compile(r"[\w\u0900-\u0dff]+")
_KANA: Final = re.compile(r"[\u3040-\u30ff]")
# spelled letters: alphabets' (Latin, Greek, Cyrillic), not Korean or Chinese one-syllable
# words ("좀 해 주세요")
_LETTER: Final = r"[A-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]"
_NO_LANGUAGE: Final = re.compile(
    r"\S+@\S+|(?:https?://|www\.)\S+|\S*\d\S*|"
    rf"(?<![\w'\u2019]){_LETTER}(?:[\s.-]+{_LETTER}(?!\w))+(?!\w)"
)
_CHARACTER: Final = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# a letter of a script other than Latin (Latin, its extensions and combining marks excluded)
_OTHER_SCRIPT: Final = re.compile(r"[^\W\d_\u0000-\u024f\u1e00-\u1eff\u0300-\u036f]")
CONTEXT_WEIGHT: Final = 8.0
"""How much more the call's language counts than any other when a turn is weighed."""
STT_WEIGHT: Final = 2.0
"""How much more the STT's reported language counts (a fixed-language STT reports its own)."""
_REGIONS: Final = (("+852", "zh-HK"), ("+853", "zh-MO"), ("+8620", "yue-CN"))


def words_of(text: str) -> str:
    """``text`` without what belongs to no language: e-mail and web addresses, numbers,
    letters spelled one by one ("W H I T F I E L D")."""
    return _NO_LANGUAGE.sub(" ", text)


def matrix_words(text: str) -> str:
    """The words of ``text`` (see :func:`words_of`) that say its language: in a turn with
    at least two words in a script other than Latin, those ("मुझे अपना appointment reschedule
    करना है": the Hindi; "예약 confirm 메일이 안 왔는데": the Korean), since the Latin ones are
    then, most of the time, English words borrowed into it; else all of them."""
    words = words_of(text).split()
    scripted = [w for w in words if _OTHER_SCRIPT.search(w)]
    return " ".join(scripted) if len(scripted) >= 2 else " ".join(words)


def word_count(text: str) -> int:
    """Words of ``text`` in a language (see :func:`words_of`); Chinese and Japanese, written
    without spaces, two characters to a word."""
    text = words_of(text)
    characters = len(_CHARACTER.findall(text))
    return (characters + 1) // 2 + len(_WORD.findall(_CHARACTER.sub(" ", text)))


def requested_language(text: str) -> str | None:
    """The matching language a caller asks to speak ("can we speak Spanish?" -> ``es``), or
    None."""
    m = _ASK_CJK.search(text)
    if m:
        name = m.group("name")
        return _NAMES.get(name) if name else _JA_KO[m.group("ja") or m.group("ko")]
    words = _WORD.findall(text.lower())
    for i, word in enumerate(words):
        found = _NAMES.get(word)
        if found is None:
            continue
        near = words[max(0, i - 3) : i] + words[i + 1 : i + 4]
        if any(_VERBS.match(w) for w in near):
            return found
        if i and _INTO.match(words[i - 1]) and len(words) <= _SHORT_REQUEST:
            return found
    return None


@dataclass(frozen=True, slots=True)
class Decision:
    """The call's locale after a turn, whether the turn changed it, and why."""

    locale: str
    switched: bool
    reason: str  # "explicit", "detected", "kept", "short", "undecided"
    heard: str = ""  # the turn's language as detected ("" : undecided)


class LanguageTracker:
    """See the module docstring. One per call."""

    def __init__(
        self,
        default: str,
        *,
        allowed: Sequence[str] = (),
        parameters: Mapping[str, str] | None = None,
        table: LocaleTable | None = None,
        min_words: int = 3,
        switch_after: int = 2,
        detector: TextDetector | None = None,
        context_weight: float = CONTEXT_WEIGHT,
    ) -> None:
        self.table = table or default_table()
        self.allowed = [self._known(code) for code in allowed]
        params = parameters or {}
        dialled = params.get("To", "").replace(" ", "")
        self.region = next((loc for prefix, loc in _REGIONS if dialled.startswith(prefix)), "")
        first = self.region if self.region and self._speaks(self.region) else default
        chosen = self.table.get(params.get("language", "").strip())
        if chosen is not None and self._speaks(chosen.code):
            first = chosen.code  # an IVR's choice ("para español, oprima 2"), passed along
        self.locale = self._known(first)
        self.min_words = min_words
        self.switch_after = switch_after
        self.detector = detector
        self.context_weight = context_weight
        self._pending: tuple[str, int] = ("", 0)

    def _known(self, code: str) -> str:
        loc = self.table.get(code)
        if loc is None:
            raise ValueError(f"unknown locale {code!r} (add it to the locale table)")
        return loc.code

    def _speaks(self, code: str) -> bool:
        return not self.allowed or code in self.allowed

    def locale_for(self, language: str) -> str | None:
        """The locale the call would speak ``language`` (a matching language) in: the
        current one if it already does, the region's, the first allowed one, or the
        table's first."""
        if language_key(self.locale) == language:
            return self.locale
        candidates = [self.region] if self.region else []
        candidates += list(self.allowed) or [loc.code for loc in self.table]
        for code in candidates:
            if code and language_key(code) == language and self._speaks(code):
                return code
        return None

    def observe(self, text: str, stt_language: str = "") -> Decision:
        """The call's locale after the caller said ``text`` (``stt_language``: what the STT
        reported for it, if anything)."""
        asked = requested_language(text)
        if asked is not None:
            target = self.locale_for(asked)
            if target is not None:
                return self._switch(target, "explicit", asked)
        words = word_count(text)
        # a turn long enough to move the call is judged by its own words more, the longer it
        # is: the call's language weighs in fully only on short turns, where the letters say
        # too little (half as much at min_words, a quarter one word longer, then not at all)
        fade = 2.0 ** max(0, words - self.min_words + 1)
        heard, alone = self._detect(text, stt_language, max(1.0, self.context_weight / fade))
        if not heard:
            return Decision(self.locale, False, "undecided")
        current = language_key(self.locale)
        if words < self.min_words:  # neither counts towards a switch nor resets
            return Decision(self.locale, False, "kept" if heard == current else "short", heard)
        if alone == current:
            self._pending = ("", 0)
            return Decision(self.locale, False, "kept", heard)
        target = self.locale_for(alone)
        if target is None:
            return Decision(self.locale, False, "not allowed", alone)
        lang, count = self._pending
        count = count + 1 if lang == alone else 1
        self._pending = (alone, count)
        if count < self.switch_after:
            return Decision(self.locale, False, "kept", alone)
        return self._switch(target, "detected", alone)

    def _switch(self, target: str, reason: str, heard: str) -> Decision:
        self._pending = ("", 0)
        switched = target != self.locale
        self.locale = target
        return Decision(target, switched, reason, heard)

    def heard(self, text: str, stt_language: str = "") -> str:
        """The language ``text`` is in, weighed with the call's language (see the module
        docstring); "" when nothing tells (no letters, no detector and no STT report)."""
        return self._detect(text, stt_language, 1.0)[0]

    def _detect(self, text: str, stt_language: str, faded: float) -> tuple[str, str]:
        """The turn's language weighed with the call's (``context_weight``), and with the
        call's weighing ``faded`` (what a turn of its length that may move the call gets)."""
        current = language_key(self.locale)
        if has_han(text) and not _KANA.search(text):
            which, _ = cantonese_or_mandarin(text)
            if which:
                return which, which
            undecided = current if current in ("zh", "yue") else "zh"
            return undecided, undecided
        if is_hinglish(text) and self.locale_for("hi") is not None:
            return "hi", "hi"
        stt = language_key(stt_language) if stt_language else ""
        scores = self.detector.scores(matrix_words(text)) if self.detector is not None else {}
        if not scores:
            reported = "" if stt in ("", "und") else stt
            return reported, reported
        own = "zh" if current == "yue" else current

        def best(context: float) -> str:
            def weight(language: str) -> float:
                w = scores[language]
                if language == own:
                    w *= context
                if language == stt:
                    w *= STT_WEIGHT
                return w

            found = max(scores, key=weight)
            return current if found == own else found

        return best(self.context_weight), best(faded)
