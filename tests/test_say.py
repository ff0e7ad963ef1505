"""Times, dates, numbers and money as a reply says them, per locale (callweaver.text.say).

(The other ``test_spoken.py`` is about :mod:`callweaver.runtime.spoken`, what a caller heard.)

Expectations are CLDR's (Babel's data), checked by hand against each language's usage; the
table tests run every locale of the shipped locale table.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

import pytest

from callweaver.services.locales import Locale, default_table
from callweaver.text.say import (
    babel_locale,
    cldr_clock,
    prompt_line,
    say_date,
    say_money,
    say_number,
    say_time,
)

MONDAY = datetime.date(2026, 11, 23)
HALF_PAST_THREE = datetime.time(15, 30)
TABLE_CODES = [loc.code for loc in default_table()]


@pytest.mark.parametrize(
    ("locale", "half_past", "on_the_hour"),
    [
        ("en-US", "3:30 PM", "3 PM"),
        ("en-GB", "15:30", "15:00"),
        ("es-ES", "15:30", "15:00"),
        ("es-MX", "3:30 p.m.", "3 p.m."),
        ("fr-FR", "15:30", "15 h"),
        ("fr-CA", "15 h 30", "15 h"),
        ("de-DE", "15:30", "15 Uhr"),
        ("pt-BR", "15:30", "15:00"),
        ("it-IT", "15:30", "15:00"),
        ("ja-JP", "15:30", "15時"),
        ("ko-KR", "오후 3:30", "오후 3시"),
        ("zh-CN", "15:30", "15时"),
        ("zh-TW", "下午3:30", "下午3時"),
        ("zh-HK", "下午3:30", "下午3時"),
        ("zh-MO", "下午3:30", "下午3時"),
        ("yue-CN", "15:30", "15时"),
        # Latin digits on purpose (see the module docstring); م is مساءً, "p.m."
        ("ar-SA", "3:30 م", "3 م"),
        ("hi-IN", "3:30 pm", "3 pm"),
        ("ru-RU", "15:30", "15:00"),
        ("vi-VN", "15:30", "15 giờ"),
        ("da-DK", "15.30", "15.00"),
    ],
)
def test_say_time(locale: str, half_past: str, on_the_hour: str) -> None:
    assert say_time(HALF_PAST_THREE, locale) == half_past
    assert say_time(datetime.time(15, 0), locale) == on_the_hour


def test_say_time_never_says_seconds_and_drops_the_lone_hours_zero() -> None:
    assert say_time(datetime.time(15, 30, 45), "en-US") == "3:30 PM"
    assert say_time(datetime.time(15, 0, 59), "en-US") == "3 PM"
    assert say_time(datetime.time(9, 0), "de-DE") == "9 Uhr"
    assert say_time(datetime.time(9, 30), "de-DE") == "09:30"
    assert say_time(datetime.time(0, 0), "en-US") == "12 AM"
    assert say_time(datetime.time(0, 5), "en-GB") == "00:05"
    # Taiwan's flexible day periods: evening, not just p.m.
    assert say_time(datetime.time(20, 30), "zh-TW") == "晚上8:30"


def test_clock_overrides_the_locales_preference() -> None:
    assert say_time(HALF_PAST_THREE, "en-US", clock="24h") == "15:30"
    assert say_time(HALF_PAST_THREE, "en-GB", clock="12h") == "3:30 pm"
    assert say_time(HALF_PAST_THREE, "es-MX", clock="24h") == "15:30"
    assert say_time(HALF_PAST_THREE, "zh-CN", clock="12h") == "下午3:30"
    assert say_time(datetime.time(15, 0), "zh-CN", clock="12h") == "下午3时"
    assert say_time(HALF_PAST_THREE, "zh-HK", clock="24h") == "15:30"
    assert say_time(datetime.time(15, 0), "ko-KR", clock="24h") == "15시"
    assert say_time(HALF_PAST_THREE, "ja-JP", clock="12h") == "午後3:30"
    assert say_time(HALF_PAST_THREE, "es-ES", clock=None) == "15:30"


def test_cldr_clock() -> None:
    assert cldr_clock("en-US") == "12h"
    assert cldr_clock("en-GB") == "24h"
    assert cldr_clock("zh-TW") == "12h"
    assert cldr_clock("zh-CN") == "24h"


@pytest.mark.parametrize(
    ("locale", "spoken"),
    [
        ("en-US", "Monday, November 23, 2026"),
        ("en-GB", "Monday, 23 November 2026"),
        ("es-ES", "lunes, 23 de noviembre de 2026"),
        ("es-MX", "lunes, 23 de noviembre de 2026"),
        ("fr-FR", "lundi 23 novembre 2026"),
        ("de-DE", "Montag, 23. November 2026"),
        ("pt-BR", "segunda-feira, 23 de novembro de 2026"),
        ("it-IT", "lunedì 23 novembre 2026"),
        ("ja-JP", "2026年11月23日月曜日"),
        ("ko-KR", "2026년 11월 23일 월요일"),
        ("zh-CN", "2026年11月23日星期一"),
        ("zh-TW", "2026年11月23日 星期一"),
        ("zh-HK", "2026年11月23日星期一"),
        ("zh-MO", "2026年11月23日星期一"),
        ("yue-CN", "2026年11月23日星期一"),
        ("ar-SA", "الاثنين، 23 نوفمبر 2026"),
        ("hi-IN", "सोमवार, 23 नवंबर 2026"),
        ("ru-RU", "понедельник, 23 ноября 2026 г."),
        ("vi-VN", "Thứ Hai, 23 tháng 11, 2026"),
        ("fil-PH", "Lunes, Nobyembre 23, 2026"),
    ],
)
def test_say_date(locale: str, spoken: str) -> None:
    assert say_date(MONDAY, locale) == spoken


def test_say_date_without_the_weekday() -> None:
    assert say_date(MONDAY, "en-US", weekday=False) == "November 23, 2026"
    assert say_date(MONDAY, "es-ES", weekday=False) == "23 de noviembre de 2026"
    assert say_date(MONDAY, "zh-HK", weekday=False) == "2026年11月23日"


def test_chinese_script_follows_the_locale() -> None:
    # 時 is Traditional, 时 Simplified: the date's characters are the same in both scripts
    on_the_hour = datetime.time(15, 0)
    assert say_time(on_the_hour, "zh-HK", clock="12h").endswith("時")
    assert say_time(on_the_hour, "zh-TW", clock="12h").endswith("時")
    assert say_time(on_the_hour, "zh-CN", clock="12h").endswith("时")
    assert say_time(on_the_hour, "yue-CN", clock="12h").endswith("时")
    assert say_time(on_the_hour, "yue-HK", clock="12h").endswith("時")


@pytest.mark.parametrize(
    ("tag", "cldr"),
    [
        ("zh-HK", "zh_Hant_HK"),
        ("zh-TW", "zh_Hant_TW"),
        ("zh-CN", "zh_Hans_CN"),
        ("zh-MO", "zh_Hant_MO"),
        ("yue-CN", "yue_Hans_CN"),
        ("yue-HK", "yue_Hant_HK"),
        ("zh-yue", "yue"),
        ("es-419", "es_419"),
        ("fil-PH", "fil_PH"),
        ("nb-NO", "nb_NO"),
        ("he-IL", "he_IL"),
        ("iw-IL", "he_IL"),
        ("en_us", "en_US"),
        ("EN-us", "en_US"),
        ("de-JP", "de"),  # a region CLDR does not have for the language
        ("es-QQ", "es"),
        ("zh-Hant-US", "zh_Hant"),
        ("en-US-u-ca-buddhist", "en_US"),
    ],
)
def test_locale_tags_resolve(tag: str, cldr: str) -> None:
    assert str(babel_locale(tag)) == cldr


@pytest.mark.parametrize("tag", ["xx-YY", "qaa", "und", "", "en_US!", "123", "en-"])
def test_unknown_or_malformed_locale_raises_naming_it(tag: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(tag))):
        say_time(HALF_PAST_THREE, tag)
    with pytest.raises(ValueError):
        say_date(MONDAY, tag)
    with pytest.raises(ValueError):
        say_number(1, tag)


def test_bad_clock_and_currency_raise() -> None:
    with pytest.raises(ValueError, match="'13h'"):
        say_time(HALF_PAST_THREE, "en-US", clock="13h")
    with pytest.raises(ValueError, match="'XYZ'"):
        say_money(45, "XYZ", "en-US")


@pytest.mark.parametrize(
    ("locale", "spoken"),
    [
        ("en-US", "1,234,567.5"),
        ("de-DE", "1.234.567,5"),
        ("fr-FR", "1 234 567,5"),  # a narrow no-break space in CLDR, a plain space here
        ("ru-RU", "1 234 567,5"),
        ("es-ES", "1.234.567,5"),
        ("pt-BR", "1.234.567,5"),
        ("hi-IN", "12,34,567.5"),
        ("ar-SA", "1,234,567.5"),
        ("zh-HK", "1,234,567.5"),
        ("ja-JP", "1,234,567.5"),
    ],
)
def test_say_number(locale: str, spoken: str) -> None:
    assert say_number(1234567.5, locale) == spoken


def test_say_number_keeps_every_digit_and_takes_int_and_decimal() -> None:
    assert say_number(Decimal("1234.5678"), "en-US") == "1,234.5678"
    assert say_number(1234, "de-DE") == "1.234"
    assert say_number(-0.25, "fr-FR") == "-0,25"


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "spoken"),
    [
        (45, "USD", "en-US", "$45.00"),
        (Decimal("1234.5"), "EUR", "de-DE", "1.234,50 €"),
        (Decimal("1234.5"), "EUR", "fr-FR", "1 234,50 €"),
        (4500, "JPY", "ja-JP", "￥4,500"),
        (45, "usd", "es-MX", "USD 45.00"),  # CLDR's currency spacing, which Babel skips
        (45, "MXN", "es-MX", "$45.00"),
        (45.5, "BRL", "pt-BR", "R$ 45,50"),
        (45, "GBP", "en-GB", "£45.00"),
        (45, "HKD", "zh-HK", "HK$45.00"),
    ],
)
def test_say_money(amount: int | float | Decimal, currency: str, locale: str, spoken: str) -> None:
    assert say_money(amount, currency, locale) == spoken


def test_prompt_line() -> None:
    now = datetime.datetime(2026, 11, 23, 15, 30, 12)
    assert prompt_line("en-US", now) == (
        "Today is Monday, November 23, 2026 (say dates like that); "
        "the time is 3:30 PM (say times the 12-hour way)."
    )
    assert prompt_line("zh-HK", now) == (
        "Today is 2026年11月23日星期一 (say dates like that); "
        "the time is 下午3:30 (say times the 12-hour way)."
    )
    assert prompt_line("es-MX", now, clock="24h") == (
        "Today is lunes, 23 de noviembre de 2026 (say dates like that); "
        "the time is 15:30 (say times the 24-hour way)."
    )


def test_prompt_line_applies_no_time_zone() -> None:
    aware = datetime.datetime(
        2026, 11, 23, 15, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=8))
    )
    assert "下午3:30" in prompt_line("zh-HK", aware)


@pytest.mark.parametrize("code", TABLE_CODES)
def test_every_table_locale_renders(code: str) -> None:
    said = [
        say_time(HALF_PAST_THREE, code),
        say_time(datetime.time(9, 0), code),
        say_date(MONDAY, code),
        say_date(MONDAY, code, weekday=False),
        say_number(1234567.5, code),
        say_money(Decimal("45.5"), "EUR", code),
        prompt_line(code, datetime.datetime(2026, 11, 23, 15, 30)),
    ]
    for text in said:
        assert text.strip()
        assert "\u00a0" not in text and "\u202f" not in text
        assert all(c in "0123456789" for c in text if c.isdigit()), text
    assert "2026" in said[2] and "23" in said[2]


@pytest.mark.parametrize("loc", list(default_table()), ids=TABLE_CODES)
def test_the_tables_clock_is_how_times_are_said(loc: Locale) -> None:
    said = say_time(HALF_PAST_THREE, loc.code, clock=loc.clock)
    if loc.clock == "12h":
        assert "3" in said and "15" not in said, said
    else:
        assert "15" in said, said
