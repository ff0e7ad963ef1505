"""What two questions must agree on before one's answer can serve the other (pure functions).

Sentence embeddings say how close two questions are in meaning, but near misses that need a
different answer score as high as true paraphrases, or higher: "are you open on Sunday" and
"are you open on Monday", "cancel my appointment" and "book an appointment", "for two" and "for
six" (see ``MODELS.md``). So a match by similarity is accepted only if the parts that change
the answer agree. This module finds those parts in a text and compares them:

- :func:`normalize`: lowercase, contractions expanded ("what's" -> "what is", "can't" -> "can
  not"), ``a.m.`` -> ``am``, ``$40`` -> ``40 dollars``, punctuation dropped (except inside
  numbers: ``9:30``, ``12.50``), whitespace collapsed. Idempotent.
- :func:`extract_slots`: the :class:`Slots` of a text: quantities (digits and number words),
  weekdays ("Monday to Friday", "weekdays", "every day" expand to the days they cover),
  relative days (today/tonight, tomorrow, next week...), clock times ("9 am", "nine thirty",
  "noon", "half past two", "at 9"), actions on opposing axes (open/close; book/cancel/
  reschedule; ...) and negation.
- :func:`conflicts`: how the caller's slots rule out a known question's answer (empty when
  they agree); an *opposite* conflict (action, negation) means the known question is another
  question, not a more specific or general form of the caller's.

A slot counts only when both texts mention its kind: "are you open" agrees with "are you open
on Monday" and the other way round (an answer declared for the general question covers the
particular one). Where both mention it, the caller's values must lie within the example's (a
caller's "Wednesday" fits "Monday to Friday", "Sunday" does not; "9" fits "9 am").

Actions are compared per axis both mention: they agree when both assert a common value, and
not when one negates what the other asserts ("I don't want to cancel" against "cancel my
appointment") or they assert different values. A negation bears on an action up to four words
after it, within its clause. A negation that bears on no action ("is there no parking", "I
can't make it") must be on both sides or neither, unless the texts agree on an action:
"I can't make it tomorrow, I need to cancel" is still a cancellation. An example can take the
actions of the other examples of its answer (:func:`inherit_actions`).

Numbers inside times are times, not quantities ("9 am" holds no quantity 9).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Final

__all__ = [
    "ACTIONS",
    "WEEKDAYS",
    "ClockTime",
    "Conflict",
    "Slots",
    "conflicts",
    "extract_slots",
    "inherit_actions",
    "normalize",
]

WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

#: Actions that change the answer, as axis -> value -> phrases (normalized). Two texts that
#: both mention an axis must share a value on it.
ACTIONS: Final[Mapping[str, Mapping[str, tuple[str, ...]]]] = {
    "hours": {
        "open": ("open", "opens", "opened", "opening"),
        "close": ("close", "closes", "closed", "closing", "shut", "shuts"),
    },
    "appointment": {
        # not "booking", "booked", "reservation": "cancel my booking" books nothing
        "book": (
            "book", "books", "schedule", "schedules", "scheduling", "reserve",
            "make a booking", "make a reservation", "arrange", "set up an appointment",
            "make an appointment", "make a new appointment", "get an appointment",
            "new appointment",
        ),
        "cancel": (
            "cancel", "cancels", "cancelling", "canceling", "cancelled", "canceled",
            "cancellation", "call off",
        ),
        "reschedule": (
            "reschedule", "rescheduling", "rescheduled", "postpone", "push back",
            "move my appointment", "move the appointment", "change my appointment",
            "change the appointment", "different time", "different day",
            "change my reservation", "change the reservation", "change my booking",
            "change the booking", "move my reservation", "move the reservation",
            "move my booking", "move the booking", "another time", "another day",
        ),
    },
    "switch": {
        "on": ("turn on", "switch on", "enable", "start"),
        "off": ("turn off", "switch off", "disable", "stop"),
    },
    "change": {
        "add": ("add", "include"),
        "remove": ("remove", "delete", "take off"),
    },
    "money": {
        "pay": ("pay", "payment", "charge"),
        "refund": ("refund", "reimburse", "reimbursement", "money back"),
    },
}  # fmt: skip

_NEGATORS: Final = frozenset({"not", "never", "nobody", "nothing", "none", "neither", "nor"})
# a negation bears on an action up to this many words after it, within its clause
_NEGATION_SCOPE: Final = 4
_CLAUSE_BREAKS: Final = frozenset({"but", "and", "so", "because", "just", "i", "|"})
# a doubt about the question is not a negation of it: "not sure if you take my insurance"
# asks what "do you take my insurance" asks
_HEDGES: Final = re.compile(
    r"\b(?:not sure|not certain|do not know|did not know|no idea|or not|if not)\b"
)
# phrases in which an action word names no action: "opening hours" -> "hours"
_NOT_ACTIONS: Final = re.compile(r"\b(?:opening|closing) (hours?|times?|days?)\b")


# -- normalization -------------------------------------------------------------------------

_APOSTROPHES: Final = re.compile(r"[\u2018\u2019\u02bc`\u00b4]")
_CONTRACTIONS: Final = (
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\bshan't\b"), "shall not"),
    (re.compile(r"\bain't\b"), "is not"),
    (re.compile(r"\blet's\b"), "let us"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"\b(it|that|what|where|when|who|how|there|here|he|she|this|why)'s\b"), r"\1 is"),
    (re.compile(r"'s\b"), ""),  # possessive: "the doctor's office" -> "the doctor office"
    # as an ASR may write them, without the apostrophe
    (re.compile(r"\b(do|does|did|is|are|was|were|have|has|had|could|should|would|must)nt\b"),
     r"\1 not"),
    (re.compile(r"\bwont\b"), "will not"),
    (re.compile(r"\bcant\b"), "can not"),
    (re.compile(r"\b(what|that|there|here|where|who|how)s\b"), r"\1 is"),
    (re.compile(r"\bim\b"), "i am"),
    (re.compile(r"\bive\b"), "i have"),
    (re.compile(r"\b(you|they)re\b"), r"\1 are"),
    (re.compile(r"\bid (like|love|prefer|rather)\b"), r"i would \1"),
)  # fmt: skip
_HOUR_WORDS: Final = "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve"
_DAY: Final = "|".join(WEEKDAYS)
_DOTTED_MERIDIEM: Final = re.compile(r"\b([ap])\.\s?m\b\.?")
_GLUED_MERIDIEM: Final = re.compile(r"\b(\d{1,2}(?::\d{2})?)(am|pm)\b")
# ASR writes "nine a m"; only after something that can end a time, so "a m" stays elsewhere
_SPACED_MERIDIEM: Final = re.compile(
    rf"(\d|\b(?:{_HOUR_WORDS}|o clock|thirty|fifteen|forty five)) ([ap]) m\b"
)
_DAY_DASH: Final = re.compile(rf"\b({_DAY})(s?) ?[-\u2013\u2014/] ?({_DAY})")
# "8-6", "8am-6pm", "9:30-10": a range of hours; "555-1234" stays two numbers
_NUMBER_DASH: Final = re.compile(
    r"(\b\d{1,2}(?::\d{2})?(?: ?[ap]m)?) ?[-\u2013\u2014] ?(?=\d{1,2}(?::\d{2})?(?: ?[ap]m)?\b)"
)
_CURRENCY: Final = re.compile(r"[$\u00a3\u20ac] ?(\d+(?:\.\d+)?)")
_THOUSANDS: Final = re.compile(r"(?<=\d),(?=\d{3}\b)")
_PUNCT_OUTSIDE_NUMBERS: Final = re.compile(r"[.:,](?!\d)|(?<!\d)[.:,]")
_OTHER: Final = re.compile(r"[^\w\s.:,']|_|'")
_SPACES: Final = re.compile(r"\s+")


def normalize(text: str) -> str:
    """``text`` as compared: lowercase, contractions expanded, punctuation and extra spaces
    gone; digits keep their ``:`` and ``.`` (``9:30``, ``12.50``). Idempotent."""
    s = _APOSTROPHES.sub("'", text).lower()
    for pattern, repl in _CONTRACTIONS:
        s = pattern.sub(repl, s)
    s = s.replace("o'clock", "o clock").replace("oclock", "o clock")
    s = _DOTTED_MERIDIEM.sub(r"\1m", s)
    s = _THOUSANDS.sub("", s)
    s = _CURRENCY.sub(r"\1 dollars", s)
    s = s.replace("%", " percent ").replace("&", " and ").replace("+", " plus ")
    s = _DAY_DASH.sub(r"\1\2 to \3", s)
    s = _NUMBER_DASH.sub(r"\1 to ", s)
    s = _PUNCT_OUTSIDE_NUMBERS.sub(" ", s)
    s = _OTHER.sub(" ", s)
    s = _SPACES.sub(" ", s).strip()
    s = _GLUED_MERIDIEM.sub(r"\1 \2", s)
    return _SPACED_MERIDIEM.sub(r"\1 \2m", s)


# -- slots ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClockTime:
    """A time of day, ``hour`` 1-12. ``meridiem`` ("am"/"pm") is None when the text did not
    say ("at 9", "nine thirty")."""

    hour: int
    minute: int = 0
    meridiem: str | None = None

    def fits(self, other: ClockTime) -> bool:
        """The same time, reading an unspecified am/pm as either."""
        if (self.hour, self.minute) != (other.hour, other.minute):
            return False
        return self.meridiem is None or other.meridiem is None or self.meridiem == other.meridiem

    def __str__(self) -> str:
        return f"{self.hour}:{self.minute:02d}" + (f" {self.meridiem}" if self.meridiem else "")


def _clock(hour: int, minute: int = 0, meridiem: str | None = None) -> ClockTime | None:
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    if hour == 0:
        hour, meridiem = 12, "am"
    elif hour > 12:
        hour, meridiem = hour - 12, "pm"
    return ClockTime(hour, minute, meridiem)


@dataclass(frozen=True, slots=True)
class Slots:
    """The answer-changing parts of one text (see the module docstring).

    ``actions`` and ``negated_actions`` hold ``(axis, value)`` pairs of :data:`ACTIONS`, the
    second those a negation bears on ("I don't want to *cancel*"); ``negated`` says the text
    holds a negation that bears on no action ("is there no parking", "I can't make it")."""

    numbers: frozenset[float] = frozenset()
    weekdays: frozenset[str] = frozenset()
    relative_days: frozenset[str] = frozenset()
    times: frozenset[ClockTime] = frozenset()
    actions: frozenset[tuple[str, str]] = frozenset()
    negated_actions: frozenset[tuple[str, str]] = frozenset()
    negated: bool = False
    topics: frozenset[str] = frozenset()
    """What the text is about when that alone changes the answer: ``"hours"`` for opening and
    closing ("is the clinic open right now" is not "where is the clinic")."""

    def axis(self, name: str) -> frozenset[str]:
        """The values this text asserts on one action axis."""
        return frozenset(v for a, v in self.actions if a == name)

    def negated_axis(self, name: str) -> frozenset[str]:
        """The values this text negates on one action axis."""
        return frozenset(v for a, v in self.negated_actions if a == name)

    @property
    def axes(self) -> frozenset[str]:
        """The action axes the text mentions, asserted or negated."""
        return frozenset(a for a, _ in self.actions | self.negated_actions)


def inherit_actions(slots: Slots, siblings: Iterable[Slots]) -> Slots:
    """``slots`` of one example phrasing, with the actions its sibling phrasings (other
    examples of the same answer) assert on the axes it leaves unsaid: in an answer whose
    examples say "cancel", "I won't be able to make my appointment" is a cancellation too."""
    own = slots.axes
    extra = {pair for s in siblings for pair in s.actions if pair[0] not in own}
    return replace(slots, actions=slots.actions | extra) if extra else slots


_UNITS: Final[Mapping[str, int]] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS: Final[Mapping[str, int]] = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
# "one" after these is a pronoun ("which one", "no one"), not a quantity
_ONE_IS_PRONOUN_AFTER: Final = frozenset(
    {"the", "this", "that", "which", "no", "any", "every", "each", "some", "another", "other",
     "a", "last", "next", "right", "wrong"}
)  # fmt: skip
_DIGITS: Final = re.compile(r"^(\d+(?:\.\d+)?)(?:st|nd|rd|th)?$")

# -- times ---------------------------------------------------------------------------------

_MINUTE_WORDS: Final[Mapping[str, int]] = {
    "o five": 5, "ten": 10, "fifteen": 15, "twenty": 20, "twenty five": 25, "thirty": 30,
    "forty": 40, "forty five": 45, "fifty": 50, "fifty five": 55,
}  # fmt: skip
_MINUTES: Final = "|".join(sorted(_MINUTE_WORDS, key=len, reverse=True))
# an hour in digits ("9", "9:30") or in words, optionally with its minutes in words
_AT: Final = rf"(\d{{1,2}}(?::\d{{2}})?|(?:{_HOUR_WORDS})(?: (?:{_MINUTES}))?)"
_NOT_A_TIME_AFTER: Final = (
    r"(?! (?:weeks?|days?|months?|years?|hours?|minutes?|people|persons?|patients?|dollars"
    r"|percent|times|of|or)\b)"
)
_Maker = Callable[[re.Match[str]], Iterable[ClockTime | None]]


def _parse(at: str, meridiem: str | None = None) -> ClockTime | None:
    """``"9"``, ``"9:30"``, ``"nine"``, ``"nine thirty"`` (and am/pm) -> a clock time."""
    if at[0].isdigit():
        hour, _, minute = at.partition(":")
        return _clock(int(hour), int(minute or 0), meridiem)
    hour, _, minute = at.partition(" ")
    return _clock(_UNITS[hour], _MINUTE_WORDS[minute] if minute else 0, meridiem)


def _shift(clock: ClockTime | None, minutes: int) -> ClockTime | None:
    """``clock`` moved by ``minutes`` ("quarter to nine" is 8:45)."""
    if clock is None:
        return None
    hour, minute = divmod(((clock.hour % 12) * 60 + clock.minute + minutes) % 720, 60)
    return ClockTime(hour or 12, minute, clock.meridiem)


_TIME_PATTERNS: Final[tuple[tuple[re.Pattern[str], _Maker], ...]] = (
    (re.compile(r"\b(?:noon|midday)\b"), lambda m: [ClockTime(12, 0, "pm")]),
    (re.compile(r"\bmidnight\b"), lambda m: [ClockTime(12, 0, "am")]),
    (
        re.compile(rf"\b(half|quarter) past {_AT}(?: (am|pm))?\b"),
        lambda m: [_shift(_parse(m[2], m[3]), 30 if m[1] == "half" else 15)],
    ),
    (
        re.compile(rf"\bquarter to {_AT}(?: (am|pm))?\b"),
        lambda m: [_shift(_parse(m[1], m[2]), -15)],
    ),
    (  # "from 8 to 6", "between 9 am and 5 pm"
        re.compile(
            rf"\b(?:from|between) {_AT}(?: o clock)?(?: (am|pm))? (?:to|and|till|until) "
            rf"{_AT}(?: o clock)?(?: (am|pm))?\b{_NOT_A_TIME_AFTER}"
        ),
        lambda m: [_parse(m[1], m[2]), _parse(m[3], m[4])],
    ),
    (re.compile(rf"\b{_AT}(?: o clock)? (am|pm)\b"), lambda m: [_parse(m[1], m[2])]),
    (re.compile(rf"\b{_AT} o clock\b"), lambda m: [_parse(m[1])]),
    (re.compile(r"\b(\d{1,2}:\d{2})\b"), lambda m: [_parse(m[1])]),
    (
        re.compile(rf"\b((?:{_HOUR_WORDS}) (?:{_MINUTES}))\b{_NOT_A_TIME_AFTER}"),
        lambda m: [_parse(m[1])],
    ),
    (
        re.compile(rf"\b(?:at|around|by|after|before|until|till) {_AT}\b{_NOT_A_TIME_AFTER}"),
        lambda m: [_parse(m[1])],
    ),
)

# -- days ----------------------------------------------------------------------------------

_WEEKDAY_RANGE: Final = re.compile(
    rf"\b(?:from )?({_DAY})s? (?:to|through|thru|till|until) ({_DAY})s?\b"
)
_DAY_GROUPS: Final[tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]] = (
    (re.compile(r"\b(?:every ?day|daily|(?:7|seven) days a week|all week)\b"), WEEKDAYS),
    (re.compile(r"\bweekdays?\b"), WEEKDAYS[:5]),
    (re.compile(r"\bweekends?\b"), WEEKDAYS[5:]),
    (re.compile(rf"\b({_DAY})s?\b"), ()),  # the day it names
)
_RELATIVE_DAYS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"\b(?:the )?day after tomorrow\b"), "day after tomorrow"),
    (re.compile(r"\b(?:today|tonight|this (?:morning|afternoon|evening))\b"), "today"),
    (re.compile(r"\btomorrow\b"), "tomorrow"),
    (re.compile(r"\byesterday\b"), "yesterday"),
    (re.compile(r"\bthis week\b"), "this week"),
    (re.compile(r"\bnext week\b"), "next week"),
)
_ACTION_PATTERNS: Final[tuple[tuple[re.Pattern[str], tuple[str, str]], ...]] = tuple(
    (re.compile(rf"\b(?:{'|'.join(re.escape(p) for p in phrases)})\b"), (axis, value))
    for axis, values in ACTIONS.items()
    for value, phrases in values.items()
)


def extract_slots(text: str) -> Slots:
    """The :class:`Slots` of ``text`` (raw or already normalized)."""
    s = normalize(text)
    times: set[ClockTime] = set()
    for pattern, make in _TIME_PATTERNS:  # times first: their numbers are not quantities
        for m in pattern.finditer(s):
            times.update(t for t in make(m) if t is not None)
        s = pattern.sub(" ", s)
    weekdays: set[str] = set()
    for m in _WEEKDAY_RANGE.finditer(s):
        first, last = WEEKDAYS.index(m[1]), WEEKDAYS.index(m[2])
        weekdays.update(WEEKDAYS[(first + i) % 7] for i in range((last - first) % 7 + 1))
    s = _WEEKDAY_RANGE.sub(" ", s)
    for pattern, days in _DAY_GROUPS:
        for m in pattern.finditer(s):
            weekdays.update(days or (m[1],))
        s = pattern.sub(" ", s)
    relative: set[str] = set()
    for pattern, day in _RELATIVE_DAYS:
        if pattern.search(s):
            relative.add(day)
            s = pattern.sub(" ", s)
    words = _HEDGES.sub(" ", s).split()
    actions, negated_actions, negated = _actions(_HEDGES.sub(" | ", normalize(text)))
    return Slots(
        numbers=frozenset(_numbers(words)),
        weekdays=frozenset(weekdays),
        relative_days=frozenset(relative),
        times=frozenset(times),
        actions=actions,
        negated_actions=negated_actions,
        negated=negated,
        topics=hours_topic(_HOURS_TOPIC, normalize(text)),
    )


_HOURS_TOPIC: Final = re.compile(r"\b(open|opens|opening|close|closes|closing|closed|hours)\b")
_AMOUNTS: Final = frozenset(("few", "couple", "many", "several", "two", "three", "four"))


def hours_topic(pattern: re.Pattern[str], text: str) -> frozenset[str]:
    """``{"hours"}`` when ``pattern`` finds opening or closing in ``text`` (not a duration,
    "two hours", nor a place, "close by")."""
    for m in pattern.finditer(text):
        word = m.group(0)
        before = text[: m.start()].split()[-1:]
        after = text[m.end() :].split()[:1]
        if word == "hours" and before and (before[0].isdigit() or before[0] in _AMOUNTS):
            continue
        if word.startswith("clos") and after and after[0] in ("by", "to"):
            continue
        return frozenset({"hours"})
    return frozenset()


def _actions(
    s: str,
) -> tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]], bool]:
    """Asserted actions, negated actions, and whether a negation bears on no action."""
    words = _NOT_ACTIONS.sub(r"\1", s).split()
    s = " ".join(words)  # one space between words: counting spaces counts words
    negators = [
        i for i, w in enumerate(words) if w in _NEGATORS or (w == "no" and i > 0)
    ]  # a leading "no" answers the previous question
    asserted: set[tuple[str, str]] = set()
    denied: set[tuple[str, str]] = set()
    attached: set[int] = set()
    for pattern, key in _ACTION_PATTERNS:
        for m in pattern.finditer(s):
            at = s.count(" ", 0, m.start())  # word index of the action
            scope = [
                j
                for j in negators
                if 0 < at - j <= _NEGATION_SCOPE
                and not _CLAUSE_BREAKS.intersection(words[j + 1 : at])
            ]
            (denied if scope else asserted).add(key)
            attached.update(scope)
    return frozenset(asserted), frozenset(denied), bool(set(negators) - attached)


def _numbers(words: list[str]) -> list[float]:
    """Quantities in digits ("2", "12.50", "3rd") or words ("twenty five", "one hundred and
    ten", "two thousand")."""
    found: list[float] = []
    total: int | None = None  # None: not inside a number in words
    current = 0
    previous = ""
    for word in [*words, ""]:
        unit = None if word == "one" and previous in _ONE_IS_PRONOUN_AFTER else _UNITS.get(word)
        tens = _TENS.get(word)
        if total is not None:
            rest = current % 100
            round_ = rest == 0 and (current > 0 or total > 0)  # "hundred", "thousand" before
            if unit is not None and (round_ or (rest >= 20 and rest % 10 == 0)):
                current += unit  # "twenty" "five", "hundred" "and" "five"
                previous = word
                continue
            if tens is not None and round_:
                current += tens
                previous = word
                continue
            if word == "hundred":
                current = max(current, 1) * 100
                previous = word
                continue
            if word == "thousand":
                total, current = total + max(current, 1) * 1000, 0
                previous = word
                continue
            if word == "and":
                previous = word
                continue
            found.append(float(total + current))
            total, current = None, 0
        digits = _DIGITS.match(word)
        if digits:
            found.append(float(digits[1]))
        elif unit is not None or tens is not None:
            total, current = 0, unit if unit is not None else tens or 0
        previous = word
    return found


# -- agreement -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Conflict:
    """One way two texts disagree. ``kind`` is ``number``, ``weekday``, ``day``, ``time``,
    ``action`` or ``negation``; ``detail`` shows the values (``"sunday vs monday,...,friday"``).

    An ``opposite`` conflict (an action or a negation) means the example asks another
    question, the reverse of the caller's, so no other phrasing of its answer serves the
    caller either; the other kinds are details that a more general phrasing may still
    cover."""

    kind: str
    detail: str

    @property
    def opposite(self) -> bool:
        return self.kind in ("action", "negation")

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def conflicts(caller: Slots, example: Slots) -> tuple[Conflict, ...]:
    """How an answer declared (or cached) for ``example`` fails to answer ``caller``; empty
    when they agree. See the module docstring for the rules."""
    found: list[Conflict] = []
    for kind, mine, theirs in (
        ("number", caller.numbers, example.numbers),
        ("weekday", caller.weekdays, example.weekdays),
        ("day", caller.relative_days, example.relative_days),
    ):
        if mine and theirs and not mine <= theirs:
            found.append(Conflict(kind, f"{_show(mine)} vs {_show(theirs)}"))
    if (
        caller.times
        and example.times
        and not all(any(t.fits(e) for e in example.times) for t in caller.times)
    ):
        found.append(Conflict("time", f"{_show(caller.times)} vs {_show(example.times)}"))
    agreed = False  # on an action both mention
    for axis in sorted(caller.axes & example.axes):
        mine, theirs = caller.axis(axis), example.axis(axis)
        not_mine, not_theirs = caller.negated_axis(axis), example.negated_axis(axis)
        if mine & not_theirs or not_mine & theirs:
            agree = False
        elif mine or theirs:
            agree = bool(mine & theirs)
        else:
            agree = bool(not_mine & not_theirs)
        if agree:
            agreed = True
        else:
            found.append(
                Conflict("action", f"{_signed(mine, not_mine)} vs {_signed(theirs, not_theirs)}")
            )
    # a stray negation ("I can't make it, I need to cancel") does not outweigh an action that
    # both texts assert
    if caller.negated != example.negated and not agreed:
        found.append(Conflict("negation", "caller" if caller.negated else "example"))
    return tuple(found)


def _signed(asserted: frozenset[str], negated: frozenset[str]) -> str:
    return ",".join([*sorted(asserted), *(f"not {v}" for v in sorted(negated))])


def _show(values: Iterable[object]) -> str:
    """Values for a message, in a stable order (weekdays in week order)."""

    def key(v: object) -> tuple[float, str]:
        if isinstance(v, str) and v in WEEKDAYS:
            return (WEEKDAYS.index(v), v)
        if isinstance(v, ClockTime):
            return ((v.hour % 12) * 60 + v.minute + (720 if v.meridiem == "pm" else 0), str(v))
        if isinstance(v, float):
            return (v, "")
        return (0, str(v))

    return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in sorted(values, key=key))
