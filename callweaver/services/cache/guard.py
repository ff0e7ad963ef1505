"""Which LLM replies may be kept for other callers: the personal-data and context guard
(pure, no I/O).

An LLM node whose config marks its replies ``cacheable`` says they hold no personal data and
no tool results in general; this guard still refuses a turn when either side shows signs of
one caller in particular, or when the question only makes sense after the turns before it:

- ``personal``: four or more digits in a row, spaces and dashes allowed between them (phone
  and card numbers, dates of birth, booking references), the same spelled out ("five five five
  one"), an e-mail address, or a caller saying who they are or giving an account, a date of
  birth, a password or an address ("my name is", "me llamo", "我叫", "my date of birth");
- ``context``: the question points back at earlier turns ("how much is it", "and on
  Saturday?", "¿y eso?", "那个几钱"), or is too short to stand alone ("yes", "the second
  one");
- ``length``: a question over 200 characters or a reply over 600 (not a common question);
- ``dated``: either side speaks of this moment ("right now", "at the moment", "ahora mismo",
  "而家", "现在"): true for minutes, not for the next caller.

:func:`dated` also tells the exchanges that speak of a day relative to today ("are you open
today", "we close at six tonight", "mañana", "聽日"): they may be kept, but only until the
day ends (the response cache stamps them to expire at midnight).

A refused reply is still spoken, just not kept; the cache node counts each reason.

:func:`is_correction` tells the other direction: the caller's next words say the reply the
cache gave was not an answer to their question ("no, I asked about Sunday", "that's not what
I said", "eso no es lo que pregunté", "我問嘅係"): the cache node then reports a wrong hit. A
bare "no" is not one (it answers the reply's own question as often).
"""

from __future__ import annotations

import re
from typing import Final

from callweaver.text.languages import language_key, normalize

__all__ = [
    "MAX_PROMPT_CHARS",
    "MAX_REPLY_CHARS",
    "dated",
    "is_correction",
    "leans_back",
    "personal",
    "refusal",
]

MAX_PROMPT_CHARS: Final = 200
MAX_REPLY_CHARS: Final = 600

_DIGITS: Final = re.compile(r"\d(?:[\s\-./]?\d){3,}")
_EMAIL: Final = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\b\w+ at \w+ dot (?:com|org|net)\b", re.I)
# fmt: off
_DIGIT_WORDS: Final = frozenset((
    "zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
    "cero", "uno", "una", "dos", "tres", "cuatro", "cinco", "seis", "siete", "ocho", "nueve",
))
_WHO: Final = re.compile(
    r"\b(my name is|my name's|i am called|this is \w+ speaking|my (?:date of birth|birthday|"
    r"password|pin|account|card|social security|address|phone|number|email|e-mail|"
    r"policy|reference|booking number)|me llamo|mi nombre|mi (?:fecha de nacimiento|"
    r"contraseña|cuenta|tarjeta|dirección|teléfono|número|correo))\b"
    r"|我叫|我姓|我嘅名|我的名字|我个名|我的电话|我嘅電話|我的地址|我的生日|身份证|身份證|密码|密碼",
    re.I,
)
_BACK_REFERENCE: Final = {
    "en": frozenset((
        "it", "its", "that", "this", "those", "these", "them", "they", "he", "she", "him",
        "her", "his", "hers", "same", "else", "one", "ones", "former", "latter",
    )),
    "es": frozenset((
        "eso", "esa", "ese", "esos", "esas", "esto", "ello", "él", "ella", "ellos", "ellas",
        "mismo", "misma",
    )),
}
# fmt: on
_LEADS: Final = {
    "en": ("and ", "what about", "how about", "also ", "then ", "so "),
    "es": ("y ", "entonces", "también", "qué tal"),
}
_FILLERS: Final = {
    "en": frozenset(("ok", "okay", "so", "um", "uh", "well", "right", "alright", "hi", "hello")),
    "es": frozenset(("vale", "bueno", "pues", "hola", "oiga", "bien")),
}
_EXISTENTIAL: Final = re.compile(r"\b(is|are|was|were) there\b|\bthere (is|are)\b")
_BACK_ZH: Final = re.compile(
    r"这个|那个|这些|那些|呢个|嗰个|呢啲|嗰啲|它|佢|他|她|^(那|还有|咁|噉|仲有|也)"
)
_MIN_WORDS: Final = 3
_MIN_CHARS_ZH: Final = 4


def refusal(prompt: str, reply: str, language: str) -> str | None:
    """Why the exchange (the caller's ``prompt``, the bot's ``reply``) must not be kept for
    other callers (``"personal"``, ``"context"``, ``"length"``, ``"dated"``), or None when it
    may."""
    if len(prompt) > MAX_PROMPT_CHARS or len(reply) > MAX_REPLY_CHARS:
        return "length"
    if personal(prompt) or personal(reply):
        return "personal"
    if leans_back(prompt, language):
        return "context"
    return "dated" if dated(prompt, reply) == "moment" else None


# fmt: off
_MOMENT: Final = re.compile(
    r"\b(right now|at the moment|at present|at this time|currently|just now|"
    r"(open|closed|busy|available|free) now|now (open|closed)\b(?! on| every| at weekends)|"
    r"ahora mismo|ahorita|en este momento|en estos momentos|actualmente)\b"
    r"|現在|现在|而家|宜家|目前|此刻|依家",
    re.I,
)
_DAY: Final = re.compile(
    r"\b(today|tonight|tomorrow|yesterday|this (morning|afternoon|evening|week|weekend)|"
    r"hoy|ayer|esta (noche|tarde|semana|mañana)|este fin de semana|pasado mañana|"
    r"(?<!la )(?<!las )(?<!esta )mañana)\b"
    r"|今天|今日|今晚|今朝|明天|明日|聽日|听日|昨天|昨日|琴日|尋日|寻日|後日|后日|后天|"
    r"今個星期|今个星期|這個星期|这个星期|本周|本週|這週|这周",
    re.I,
)
# fmt: on


def dated(prompt: str, reply: str) -> str | None:
    """Does the exchange hold only for now (``"moment"``: "right now", "而家") or for today
    (``"day"``: "today", "tomorrow", "hoy", "聽日"), by either side's words? None when it holds
    any day. English, Spanish and Chinese words (they do not collide: no language is needed)."""
    text = f"{prompt}\n{reply}"
    if _MOMENT.search(text):
        return "moment"
    return "day" if _DAY.search(text) else None


def leans_back(prompt: str, language: str) -> bool:
    """Does the question need the turns before it ("how much is it", "and on Saturday?",
    "is there parking there", "yes please")? Such a question is neither kept nor looked up:
    the cache's keys hold no conversation."""
    lang = language_key(language)
    norm = normalize(prompt, lang)
    if lang in ("zh", "yue"):
        return len(norm.replace(" ", "")) < _MIN_CHARS_ZH or bool(_BACK_ZH.search(norm))
    words = norm.split()
    while words and words[0] in _FILLERS.get(lang, ()):
        words = words[1:]  # "ok and what time..." leads with "and"
    if len(words) < _MIN_WORDS:
        return True
    rest = " ".join(words)
    if any(w in _BACK_REFERENCE.get(lang, ()) for w in words) or rest.startswith(
        _LEADS.get(lang, ())
    ):
        return True
    # "there" points back unless it only says something exists ("is there parking")
    return lang == "en" and "there" in _EXISTENTIAL.sub(" ", rest).split()


def personal(text: str) -> bool:
    """Does ``text`` show signs of one person's data (see the module docstring)?"""
    return bool(
        _DIGITS.search(text) or _EMAIL.search(text) or _WHO.search(text) or _spelled_digits(text)
    )


def _spelled_digits(text: str) -> bool:
    run = 0
    for word in re.findall(r"[a-záéíóúñ]+", text.lower()):
        run = run + 1 if word in _DIGIT_WORDS else 0
        if run >= 4:
            return True
    return False


_CORRECTION: Final = re.compile(
    r"\b(not what i (asked|said|meant)|i did not (ask|say|mean)|that is not what|"
    r"you misunderstood|i asked about|i was asking about|wrong answer|that is wrong)\b"
    r"|\b(eso no es lo que|no pregunté|no te pregunté|no he preguntado|"
    r"no es lo que (pregunté|dije)|te pregunté por|me refiero a|no me entendiste)\b"
    r"|我问的是|我問嘅係|我问嘅系|我是问|我系问|我係問|"
    r"我说的是|你听错|你聽錯",
    re.I,
)


def is_correction(text: str, language: str) -> bool:
    """Do the caller's words say the last reply missed their question?"""
    raw = text.strip()
    if _CORRECTION.search(raw):
        return True
    lang = language_key(language)
    return lang not in ("zh", "yue") and bool(_CORRECTION.search(normalize(raw, lang)))
