"""How times, dates, numbers and money are said in a locale, from CLDR (Babel).

A voice agent that tells a Madrid caller "3:30 PM" or a Hong Kong caller "November 23" sounds
foreign; the LLM writing the reply does better when told the local forms. These functions
render values the way a reply should say (and write) them for a BCP-47 locale, from the
Unicode CLDR data that the ``babel`` package ships:

- :func:`say_time`: the locale's short time (en-US ``3:30 PM``, es-ES ``15:30``, zh-HK
  ``下午3:30``), never seconds; on the hour the locale's hour-only form where CLDR has a
  natural one (``3 PM``, ``15 Uhr``, ``15時``, ``오후 3시``), else ``15:00``. ``clock``
  (``12h``/``24h``, the locale table's value) overrides CLDR's preference.
- :func:`say_date`: the long form with the weekday (``Monday, November 23, 2026``,
  ``lunes, 23 de noviembre de 2026``, ``2026年11月23日星期一``), in the locale's script.
- :func:`say_number` and :func:`say_money`: grouping, decimal mark and currency placement.
- :func:`prompt_line`: one English line for an LLM's system prompt with today's date and the
  time in the locale's own words.

Choices made for speech rather than for print:

- Digits are always ASCII ``0-9``, even where CLDR's default numbering system is another
  (Arabic-Indic for ar-SA, Persian for fa-IR, Bengali for bn-IN): Babel writes dates and times
  only in Latin digits, one reply should not mix two systems, and every TTS engine reads
  ``0-9`` in every language. The separators are CLDR's for Latin digits.
- No-break spaces (CLDR puts U+00A0 and U+202F in French numbers and English times) become
  plain spaces, since TTS engines and LLM tokenizers treat them unevenly. Bidi marks stay.
- Where CLDR's abbreviated AM/PM is the Latin ``AM``/``PM`` but the locale has its own word
  (Korean 오전/오후, Thai, Bulgarian), the word is used: a TTS spells ``PM`` out letter by
  letter in a Korean sentence.
- A currency code or Latin-letter symbol touching the number gets a space (``USD 45.00``):
  CLDR's currency-spacing rule, which Babel does not apply.
- Dates are Gregorian: Babel has no other calendar, so fa-IR is not given the Solar Hijri
  date nor th-TH the Buddhist year.

Locale tags resolve to CLDR locales by language, script and region (``zh-HK`` ->
``zh_Hant_HK``, ``yue-CN`` -> ``yue_Hans_CN``, ``zh-yue`` -> ``yue``); a region CLDR does not
know falls back to the language (``de-JP`` -> ``de``). A language CLDR does not know raises
ValueError naming the tag. Babel reads each locale's data from its package on first use;
everything after that is cached, and a call takes a few microseconds.
"""

from __future__ import annotations

import datetime
import functools
import re
import unicodedata
from decimal import Decimal
from typing import Final, Literal, cast

from babel import Locale, UnknownLocaleError
from babel.dates import DateTimePattern, parse_pattern, tokenize_pattern
from babel.numbers import (
    UnknownCurrencyError,
    format_currency,
    format_decimal,
    get_currency_symbol,
    validate_currency,
)

__all__ = [
    "Clock",
    "babel_locale",
    "cldr_clock",
    "prompt_line",
    "say_date",
    "say_money",
    "say_number",
    "say_time",
]

Clock = Literal["12h", "24h"]

_SPACES: Final = str.maketrans({"\u00a0": " ", "\u2007": " ", "\u2009": " ", "\u202f": " "})
_QUOTED: Final = re.compile(r"'[^']*'")
_SUBTAG: Final = re.compile(r"^[A-Za-z0-9]{1,8}$")
_HOUR_FIELDS: Final = frozenset("hHkK")
# Babel caches its own locale data; this bounds our cache of resolved tags (callers' tags
# come from configs and language detection, a small set, but they are outside input).
_CACHE_SIZE: Final = 1024


def babel_locale(tag: str) -> Locale:
    """The CLDR locale of a BCP-47 tag (any case, ``-`` or ``_``): ``zh-HK`` ->
    ``zh_Hant_HK``; an unknown region falls back to the language. Raises ValueError naming
    the tag when it is malformed or its language is not in CLDR."""
    return _resolve(tag)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _resolve(tag: str) -> Locale:
    parts = tag.strip().replace("_", "-").split("-")
    if not all(_SUBTAG.match(p) for p in parts):
        raise ValueError(f"locale {tag!r} is not a BCP-47 tag like es-MX")
    for i, part in enumerate(parts[1:], start=1):
        if len(part) == 1:  # an extension (-u-ca-...) or private use (-x-...): not ours
            parts = parts[:i]
            break
    language = parts[0].lower()
    rest = parts[1:]
    if rest and len(rest[0]) == 3 and rest[0].isalpha():  # extlang: zh-yue is yue
        language = rest.pop(0).lower()
    if not (2 <= len(language) <= 3 and language.isalpha()) or language == "und":
        raise ValueError(f"locale {tag!r} names no known language (a tag like es-MX)")
    script = rest.pop(0).title() if rest and len(rest[0]) == 4 and rest[0].isalpha() else ""
    region = ""
    if rest and ((len(rest[0]) == 2 and rest[0].isalpha()) or rest[0].isdigit()):
        region = rest[0].upper()
    candidates = [
        "_".join(p for p in (language, script, region) if p),
        "_".join(p for p in (language, region) if p),
        "_".join(p for p in (language, script) if p),
        language,
    ]
    for candidate in dict.fromkeys(candidates):
        try:
            return Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
    raise ValueError(f"unknown locale {tag!r}: CLDR has no data for the language {language!r}")


def cldr_clock(locale: str) -> Clock:
    """Whether CLDR says ``locale`` writes times with the 12- or the 24-hour clock (by its
    short time format: ``h:mm a`` or ``HH:mm``)."""
    return _cldr_clock(locale)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _cldr_clock(locale: str) -> Clock:
    pattern = str(_resolve(locale).time_formats["short"].pattern)
    return "12h" if set(_QUOTED.sub("", pattern)) & {"h", "K"} else "24h"


def say_time(value: datetime.time, locale: str, clock: str | None = None) -> str:
    """``value`` as a reply in ``locale`` says it: en-US ``3:30 PM``, es-MX ``3:30 p.m.``,
    en-GB and es-ES ``15:30``, zh-HK ``下午3:30``; on the hour ``3 PM``, ``15 Uhr`` or
    ``15:00``. Seconds are never said. ``clock`` (``12h``/``24h``) overrides CLDR's
    preference for the locale. Raises ValueError for an unknown locale or clock."""
    resolved = _check_clock(clock) or _cldr_clock(locale)
    pattern = _time_pattern(locale, resolved, value.minute == 0)
    return _spaces(pattern.apply(value, _resolve(locale)))


def _check_clock(clock: str | None) -> Clock | None:
    if clock is None or clock == "":
        return None
    if clock == "12h":
        return "12h"
    if clock == "24h":
        return "24h"
    raise ValueError(f"clock {clock!r} is not '12h' or '24h'")


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _time_pattern(locale: str, clock: Clock, on_the_hour: bool) -> DateTimePattern:
    loc = _resolve(locale)
    skeletons = loc.datetime_skeletons
    if clock == _cldr_clock(locale):
        text = str(loc.time_formats["short"].pattern)
    else:
        text = str(skeletons["hm" if clock == "12h" else "Hm"].pattern)
    if on_the_hour:
        hour = skeletons.get("h" if clock == "12h" else "H")
        if hour is not None and not _bare_hour(str(hour.pattern)):
            # a lone hour needs no leading zero: "9 Uhr", "9 h", not "09 Uhr"
            text = re.sub(r"HH|hh", lambda m: m.group()[0], str(hour.pattern))
    return parse_pattern(_spoken_day_period(text, loc))


def _bare_hour(pattern: str) -> bool:
    """True when an hour-only pattern is just the number (``HH``): "15" alone is no time."""
    for kind, token in tokenize_pattern(pattern):
        if kind == "field" and token[0] not in _HOUR_FIELDS:
            return False
        if kind == "chars" and any(unicodedata.category(c)[0] in "LS" for c in str(token)):
            return False
    return True


def _spoken_day_period(pattern: str, loc: Locale) -> str:
    """``pattern`` with AM/PM (``a``) in the wide form where the abbreviated one is the Latin
    ``AM``/``PM`` and the wide one the locale's own word (Korean 오전/오후)."""
    if "a" not in _QUOTED.sub("", pattern):
        return pattern
    periods = loc.day_periods.get("format", {})
    short, wide = periods.get("abbreviated", {}), periods.get("wide", {})
    names = [(str(short.get(p, "")), str(wide.get(p, ""))) for p in ("am", "pm")]
    if not all(s.isascii() and w and not w.isascii() and len(w) >= 2 for s, w in names):
        return pattern
    pieces = re.split(r"('[^']*')", pattern)
    return "".join(p if p.startswith("'") else re.sub(r"a+", "aaaa", p) for p in pieces)


def say_date(value: datetime.date, locale: str, *, weekday: bool = True) -> str:
    """``value`` in the long form a reply in ``locale`` says: en-US ``Monday, November 23,
    2026``, es-ES ``lunes, 23 de noviembre de 2026``, zh-HK ``2026年11月23日星期一``; without
    the weekday if ``weekday`` is false. Raises ValueError for an unknown locale."""
    pattern = _date_pattern(locale, weekday)
    return _spaces(pattern.apply(value, _resolve(locale)))


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _date_pattern(locale: str, weekday: bool) -> DateTimePattern:
    # Babel types its locale data as Any; a date format is always a DateTimePattern
    return cast(DateTimePattern, _resolve(locale).date_formats["full" if weekday else "long"])


def say_number(value: int | float | Decimal, locale: str) -> str:
    """``value`` with ``locale``'s grouping and decimal mark, every digit kept: en
    ``1,234.5``, de ``1.234,5``, fr ``1 234,5``, hi ``12,34,567``. Raises ValueError for an
    unknown locale."""
    text = format_decimal(value, locale=_resolve(locale), decimal_quantization=False)
    return _spaces(text)


def say_money(amount: int | float | Decimal, currency: str, locale: str) -> str:
    """``amount`` of ``currency`` (ISO 4217: ``USD``) as ``locale`` writes it, with the
    currency's usual decimals: en-US ``$45.00``, de-DE ``45,00 $``, ja-JP ``￥4,500``.
    Raises ValueError for an unknown currency or locale."""
    loc = _resolve(locale)
    code = currency.strip().upper()
    try:
        validate_currency(code)
    except UnknownCurrencyError:
        raise ValueError(f"unknown currency {currency!r} (an ISO 4217 code like USD)") from None
    text = format_currency(amount, code, locale=loc)
    return _spaces(_currency_spacing(text, get_currency_symbol(code, locale=loc)))


def _currency_spacing(text: str, symbol: str) -> str:
    """A space between the number and a symbol that does not end (or start) in a symbol
    character: ``USD45.00`` -> ``USD 45.00``, ``US$45.00`` unchanged."""
    at = text.find(symbol) if symbol else -1
    if at < 0:
        return text
    end = at + len(symbol)
    if end < len(text) and text[end].isdigit() and not _is_symbol(symbol[-1]):
        text = f"{text[:end]} {text[end:]}"
    if at > 0 and text[at - 1].isdigit() and not _is_symbol(symbol[0]):
        text = f"{text[:at]} {text[at:]}"
    return text


def _is_symbol(char: str) -> bool:
    return unicodedata.category(char)[0] in "SZ"


def prompt_line(locale: str, now: datetime.datetime, clock: str | None = None) -> str:
    """A line for an LLM's system prompt, in English, with today's date and the time in
    ``locale``'s own format and script, and which clock to say times with: "Today is Monday,
    November 23, 2026 (say dates like that); the time is 3:30 PM (say times the 12-hour
    way)." ``now`` is the wall-clock time where the caller is (convert it before: no time
    zone is applied). ``clock`` overrides CLDR's preference, as in :func:`say_time`."""
    resolved = _check_clock(clock) or _cldr_clock(locale)
    date = say_date(now.date(), locale)
    time = say_time(now.time(), locale, resolved)
    hours = "12" if resolved == "12h" else "24"
    return (
        f"Today is {date} (say dates like that); "
        f"the time is {time} (say times the {hours}-hour way)."
    )


def _spaces(text: str) -> str:
    return text.translate(_SPACES)
