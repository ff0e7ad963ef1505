"""Spanish slots: what two Spanish questions must agree on (pure functions).

The same :class:`~callweaver.text.slots.Slots` as the English module, found with Spanish
words: weekdays (lunes ... domingo, "de lunes a viernes", "fin de semana", "entre semana"),
relative days (hoy, esta noche, mañana, pasado mañana; "por la mañana" is a time of day, not
tomorrow), clock times ("a las siete de la tarde", "a las 9", "19:30", "y media"), quantities
in digits and words ("para dos", "doce personas"; "un"/"una" are articles, not quantities),
the same action axes (abrir/cerrar, reservar/cancelar/cambiar, pagar/reembolso) and negation
("no quiero cancelar"; a leading "no" answers the previous question). Compared with
:func:`callweaver.text.slots.conflicts`.

:func:`normalize` lowercases, drops accents (an ASR or a caller's keyboard may leave them
out: "mañana" and "manana" are one word) and punctuation (``¿ ¡`` too), keeping ``9:30``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Final

from callweaver.text.slots import WEEKDAYS, ClockTime, Slots, hours_topic

__all__ = ["ACTIONS", "extract_slots", "normalize"]

_DAYS: Final[Mapping[str, str]] = {
    "lunes": "monday", "martes": "tuesday", "miercoles": "wednesday", "jueves": "thursday",
    "viernes": "friday", "sabado": "saturday", "domingo": "sunday",
}  # fmt: skip
_DAY: Final = "lunes|martes|miercoles|jueves|viernes|sabado|domingo"

ACTIONS: Final[Mapping[str, Mapping[str, tuple[str, ...]]]] = {
    "hours": {
        "open": ("abrir", "abren", "abre", "abrimos", "abierto", "abierta", "abiertos",
                 "abiertas"),
        "close": ("cerrar", "cierran", "cierra", "cerramos", "cerrado", "cerrada", "cerrados",
                  "cerradas", "cierre"),
    },
    "appointment": {
        # not the noun "reserva": "cancelar mi reserva" books nothing
        "book": ("reservar", "reservo", "reserve", "reservarme", "hacer una reserva",
                 "hacer una reservacion", "pedir cita", "pedir una cita", "sacar cita",
                 "agendar", "apartar"),
        "cancel": ("cancelar", "cancelo", "cancele", "cancela", "cancelarla", "cancelarlo",
                   "anular", "anulo", "anule", "cancelacion"),
        "reschedule": ("cambiar", "cambiarla", "cambiarlo", "mover", "muevo", "reprogramar",
                       "aplazar", "posponer", "otra hora", "otro dia"),
    },
    "money": {
        "pay": ("pagar", "pago", "cobran", "cobrar"),
        "refund": ("reembolso", "reembolsar", "devolucion", "devolver el dinero"),
    },
}  # fmt: skip

_NEGATORS: Final = frozenset({"no", "nunca", "jamas", "nadie", "nada", "ni", "tampoco"})
_SCOPE: Final = 4
_CLAUSE_BREAKS: Final = frozenset({"pero", "y", "porque", "sino", "|"})
_HEDGES: Final = re.compile(r"\b(?:no se si|no se|no estoy seguro|o no)\b")

_UNITS: Final[Mapping[str, int]] = {
    "cero": 0, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "seis": 6, "siete": 7,
    "ocho": 8, "nueve": 9, "diez": 10, "once": 11, "doce": 12, "trece": 13, "catorce": 14,
    "quince": 15, "dieciseis": 16, "diecisiete": 17, "dieciocho": 18, "diecinueve": 19,
    "veinte": 20, "veintiuno": 21, "veintidos": 22, "veintitres": 23, "veinticuatro": 24,
    "veinticinco": 25, "treinta": 30, "cuarenta": 40, "cincuenta": 50, "sesenta": 60,
    "setenta": 70, "ochenta": 80, "noventa": 90, "cien": 100, "ciento": 100,
}  # fmt: skip
_HOURS: Final[Mapping[str, int]] = {"una": 1, "uno": 1, **{k: v for k, v in _UNITS.items()
                                                         if 0 < v <= 12}}  # fmt: skip
_HOUR: Final = rf"(\d{{1,2}}(?::\d{{2}})?|{'|'.join(_HOURS)})"
_TIME: Final = re.compile(
    rf"\b(?:a|para|desde|hasta|de|sobre) (?:las?|eso de las?) {_HOUR}"
    r"(?: y (media|cuarto|\d{1,2}))?(?: menos cuarto)?"
    r"(?: (?:de|por) la (manana|tarde|noche)| ?([ap])\.? ?m\b\.?| (?:en punto))?"
)
_BARE_TIME: Final = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_NOON: Final = re.compile(r"\b(?:mediodia|medio dia)\b")
_MIDNIGHT: Final = re.compile(r"\bmedianoche\b")

_RELATIVE: Final[tuple[tuple[re.Pattern[str], str | None], ...]] = (
    (re.compile(r"\bpasado manana\b"), "day after tomorrow"),
    (re.compile(r"\bmanana (?:por|en) la (?:manana|tarde|noche)\b"), "tomorrow"),
    (re.compile(r"\b(?:hoy|esta noche|esta tarde|esta manana|ahora|ahorita)\b"), "today"),
    (re.compile(r"\b(?:por|en|de) la manana\b"), None),  # the morning, not tomorrow
    (re.compile(r"\bmanana\b"), "tomorrow"),
    (re.compile(r"\bayer\b"), "yesterday"),
    (re.compile(r"\besta semana\b"), "this week"),
    (re.compile(r"\b(?:la )?(?:proxima semana|semana que viene|semana proxima)\b"), "next week"),
)
_WEEKDAY_RANGE: Final = re.compile(rf"\b(?:de )?({_DAY})s? (?:a|hasta|al) ({_DAY})s?\b")
_DAY_GROUPS: Final[tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]] = (
    (re.compile(r"\b(?:todos los dias|a diario|diario|toda la semana)\b"), WEEKDAYS),
    (re.compile(r"\b(?:entre semana|dias laborables|dias de semana|dias habiles)\b"),
     WEEKDAYS[:5]),
    (re.compile(r"\bfin(?:es)? de semana\b"), WEEKDAYS[5:]),
)  # fmt: skip
_ONE_DAY: Final = re.compile(rf"\b({_DAY})s?\b")

_ACTION_PATTERNS: Final[tuple[tuple[re.Pattern[str], tuple[str, str]], ...]] = tuple(
    (re.compile(rf"\b(?:{'|'.join(re.escape(p) for p in phrases)})\b"), (axis, value))
    for axis, values in ACTIONS.items()
    for value, phrases in values.items()
)
_NOT_ACTIONS: Final = re.compile(r"\bhorario de (?:apertura|cierre)\b")
_PUNCT: Final = re.compile(r"[.:,](?!\d)|(?<!\d)[.:,]|[^\w\s.:,]|_")
_SPACES: Final = re.compile(r"\s+")


def normalize(text: str) -> str:
    """``text`` as compared: lowercase, no accents, no punctuation; ``9:30`` kept."""
    s = unicodedata.normalize("NFKD", text.lower())
    s = "".join(c for c in s if not unicodedata.combining(c))
    s = re.sub(r"\b([ap])\.\s?m\b\.?", r"\1m", s)
    s = _PUNCT.sub(" ", s)
    return _SPACES.sub(" ", s).strip()


def _hour(word: str) -> tuple[int, int]:
    if word[0].isdigit():
        hour, _, minute = word.partition(":")
        return int(hour), int(minute or 0)
    return _HOURS[word], 0


def _times(s: str) -> tuple[set[ClockTime], str]:
    found: set[ClockTime] = set()
    for m in _TIME.finditer(s):
        hour, minute = _hour(m[1])
        if m[2] == "media":
            minute = 30
        elif m[2] == "cuarto":
            minute = 15
        elif m[2]:
            minute = int(m[2])
        if "menos cuarto" in m[0]:
            hour, minute = (hour - 1) or 12, 45
        meridiem = None
        if m[3]:
            meridiem = "am" if m[3] == "manana" else "pm"
        elif m[4]:
            meridiem = f"{m[4]}m"
        clock = _clock(hour, minute, meridiem)
        if clock is not None:
            found.add(clock)
    s = _TIME.sub(" ", s)
    for m in _BARE_TIME.finditer(s):
        clock = _clock(int(m[1]), int(m[2]), None)
        if clock is not None:
            found.add(clock)
    s = _BARE_TIME.sub(" ", s)
    if _NOON.search(s):
        found.add(ClockTime(12, 0, "pm"))
    if _MIDNIGHT.search(s):
        found.add(ClockTime(12, 0, "am"))
    return found, _MIDNIGHT.sub(" ", _NOON.sub(" ", s))


def _clock(hour: int, minute: int, meridiem: str | None) -> ClockTime | None:
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    if hour == 0:
        return ClockTime(12, minute, "am")
    if hour > 12:
        return ClockTime(hour - 12, minute, "pm")
    if hour == 12 and meridiem is None:
        return ClockTime(12, minute, None)
    return ClockTime(hour, minute, meridiem)


def _numbers(words: list[str]) -> list[float]:
    found: list[float] = []
    i = 0
    while i < len(words):
        word = words[i]
        if re.fullmatch(r"\d+(?:\.\d+)?", word):
            found.append(float(word))
        elif word in _UNITS:
            value = _UNITS[word]
            # "treinta y cinco", "ciento veinte"
            if i + 2 < len(words) and words[i + 1] == "y" and value >= 30:
                unit = _UNITS.get(words[i + 2])
                if unit is not None and unit < 10:
                    value += unit
                    i += 2
            elif value == 100 and i + 1 < len(words) and words[i + 1] in _UNITS:
                value += _UNITS[words[i + 1]]
                i += 1
            found.append(float(value))
        i += 1
    return found


def find_actions(
    s: str,
    patterns: tuple[tuple[re.Pattern[str], tuple[str, str]], ...],
    negators: frozenset[str],
    breaks: frozenset[str],
    scope: int,
    *,
    leading: bool = False,
) -> tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]], bool]:
    """Asserted actions, negated actions, and whether a negation bears on no action, in a
    text of space-separated words. A leading negator answers the previous question unless
    ``leading`` ("no quiero cancelar": Spanish puts its negation first)."""
    words = s.split()
    s = " ".join(words)
    negs = [i for i, w in enumerate(words) if w in negators and (i > 0 or leading)]
    asserted: set[tuple[str, str]] = set()
    denied: set[tuple[str, str]] = set()
    attached: set[int] = set()
    for pattern, key in patterns:
        for m in pattern.finditer(s):
            at = s.count(" ", 0, m.start())
            bearing = [
                j
                for j in negs
                if 0 < at - j <= scope and not breaks.intersection(words[j + 1 : at])
            ]
            (denied if bearing else asserted).add(key)
            attached.update(bearing)
    return frozenset(asserted), frozenset(denied), bool(set(negs) - attached)


_HOURS_TOPIC: Final = re.compile(
    r"\b(horario|horarios|abren|abre|abierto|abiertos|abierta|cierran|cierra|cerrado|cerrados)\b"
)


def extract_slots(text: str) -> Slots:
    """The :class:`Slots` of a Spanish ``text`` (raw or already normalized)."""
    s = normalize(text)
    times, s = _times(s)
    weekdays: set[str] = set()
    for m in _WEEKDAY_RANGE.finditer(s):
        first, last = WEEKDAYS.index(_DAYS[m[1]]), WEEKDAYS.index(_DAYS[m[2]])
        weekdays.update(WEEKDAYS[(first + i) % 7] for i in range((last - first) % 7 + 1))
    s = _WEEKDAY_RANGE.sub(" ", s)
    for pattern, days in _DAY_GROUPS:
        if pattern.search(s):
            weekdays.update(days)
            s = pattern.sub(" ", s)
    weekdays.update(_DAYS[m[1]] for m in _ONE_DAY.finditer(s))
    s = _ONE_DAY.sub(" ", s)
    relative: set[str] = set()
    for pattern, day in _RELATIVE:
        if pattern.search(s):
            if day is not None:
                relative.add(day)
            s = pattern.sub(" ", s)
    plain = _HEDGES.sub(" | ", _NOT_ACTIONS.sub(" horario ", normalize(text)))
    # "No, quiero cancelar" answers a question; "No quiero cancelar" refuses
    answer = re.match(r"\W*no\s*[,.;!]", text.lower()) is not None
    actions, negated_actions, negated = find_actions(
        plain, _ACTION_PATTERNS, _NEGATORS, _CLAUSE_BREAKS, _SCOPE, leading=not answer
    )
    return Slots(
        numbers=frozenset(_numbers(_HEDGES.sub(" ", s).split())),
        weekdays=frozenset(weekdays),
        relative_days=frozenset(relative),
        times=frozenset(times),
        actions=actions,
        negated_actions=negated_actions,
        negated=negated,
        topics=hours_topic(_HOURS_TOPIC, plain),
    )
