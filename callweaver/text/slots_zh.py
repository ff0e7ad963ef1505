"""Chinese slots, Mandarin and Cantonese: what two questions must agree on (pure functions).

Both languages are matched in one script: :func:`normalize` converts Traditional and Hong Kong
characters to Simplified with OpenCC (``opencc``, the ``multilingual`` extra), full-width
forms to ASCII, and drops punctuation, spaces and sentence particles (吗 呢 吧 啊 呀 啦 嘛;
Cantonese 㗎 喎 囉 咩 吖 噃 啫 喇) and the particles 的/嘅 and 了/咗. It also undoes the
A-not-A question form, which holds a negator but negates nothing: 开不开门, 开唔开门 -> 开门;
有没有, 有冇 -> 有; 可唔可以 -> 可以; 系咪 -> 系. Fixed phrases with a negator in them
(不好意思, 对不起, 唔该 "please", 唔好意思, 没问题) go too, and a hedge (不知道, 唔知 "I wonder")
is not a negation.

:func:`extract_slots` finds the same :class:`~callweaver.text.slots.Slots` as the English
module:

- weekdays: 星期一 / 周一 / 礼拜一 (禮拜一) ... 星期日 / 星期天 / 礼拜日, ranges (周一到周五,
  星期一至星期五), 工作日 / 平日, 周末, 每天 / 天天 / 日日;
- relative days: 今天 / 今日 / 今晚 -> today, 明天 / 听日 (聽日) / 明晚 / 听晚 -> tomorrow,
  后天 / 后日 (後日) -> the day after, 下周 / 下个礼拜 -> next week;
- clock times: 七点 / 7点 / 七点半 / 七点十五分 / 三点两个字 (Cantonese, 3:10), with
  上午 / 早上 / 朝早 -> am and 下午 / 晚上 / 夜晚 / 今晚 -> pm; 一点 alone is "a bit";
- quantities: digits, and Chinese numerals (一 ... 十二, 两 / 兩, 二十五) before a classifier
  (两个人, 两位, 六位, 十二个人, 三号);
- actions: open (开门, 营业, 开) / close (关门, 闩门, 打烊, 收铺, 休息); book (订, 预约, 预订,
  book) / cancel (取消, 退订, cancel) / reschedule (改, 改期, 推迟); pay / refund. A
  cancellation or a change of a booking names the booking (取消预订, 改预约时间): the booking
  words then book nothing;
- negation: 不 没 别 无 唔 冇 未 up to four characters before an action negate it (我不想取消,
  我唔想改时间); a negator that bears on no action sets ``negated``.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Final

from callweaver.errors import ModelUnavailable
from callweaver.text.slots import WEEKDAYS, ClockTime, Slots, hours_topic

__all__ = ["extract_slots", "normalize", "to_simplified"]

_INSTALL: Final = "Chinese matching needs OpenCC: pip install 'callweaver[multilingual]'"


@functools.cache
def _converter() -> Any:
    try:
        import opencc
    except ImportError:
        raise ModelUnavailable(_INSTALL) from None
    return opencc.OpenCC("hk2s")


def to_simplified(text: str) -> str:
    """Traditional (Taiwan or Hong Kong) characters as Simplified; full-width forms as ASCII,
    lowercase. Cantonese characters with no Simplified form (嘅 咗 喺 㗎) stay."""
    s = unicodedata.normalize("NFKC", text).lower()
    return str(_converter().convert(s)).replace("枱", "台").replace("檯", "台")


_FIXED: Final = re.compile(
    r"不好意思|对不起|对唔住|唔好意思|唔该|不客气|不用谢|唔使客气|没问题|冇问题|没关系|"
    r"唔紧要|不错|差不多|不如"
)
_HEDGES: Final = re.compile(r"不知道|不知|唔知|不确定|唔确定|不清楚|唔清楚|是否")
_BUTS: Final = re.compile(r"不过|但是|但|可是|而且")
_A_NOT_A: Final = re.compile(r"(.{1,2})[不没唔冇](\1)")
_A_NOT_AB: Final = re.compile(r"(.)[不唔](\1.)")  # 可不可以, 可唔可以
_QUESTION_TAILS: Final = re.compile(
    r"(?:有冇|有没|系咪|是咪)(?=.)|(?:咗未|了没有?|未呀)(?=\s|\||$)"
)
_PARTICLES: Final = re.compile(r"[吗呢吧啊呀啦嘛哦喔㗎喎啰咩吖噃啫喇嘞咧呐哇]+(?=\s|$|\|)")
_FILLERS: Final = re.compile(r"请问|想问下|想问一下|我想问|你好|唔该|麻烦你|麻烦")
_SOFT: Final = re.compile(r"[的嘅咗了]")
_PUNCT: Final = re.compile(r"[^\w\s:]|_")
_NUMBERS_ONLY_COLON: Final = re.compile(r":(?!\d)|(?<!\d):")
_CJK: Final = r"\u3400-\u9fff"
_SPACE_IN_CJK: Final = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")


def _clean(text: str) -> str:
    """Simplified, A-not-A undone, fixed phrases and hedges out; punctuation as ``|``."""
    s = to_simplified(text)
    s = _FIXED.sub(" ", s)
    s = _HEDGES.sub(" | ", s)
    s = _BUTS.sub(" | ", s)
    s = _PUNCT.sub(" | ", s)
    s = _NUMBERS_ONLY_COLON.sub(" | ", s)
    s = _A_NOT_AB.sub(r"\2", s)
    s = _A_NOT_A.sub(r"\1", s)
    return _QUESTION_TAILS.sub(lambda m: m[0][0] if m[0][0] == "有" else "", s)


# one word for each of the many ways Mandarin and Cantonese say the same thing, so that
# paraphrases share characters: 几时 / 什么时候 -> 几点, 边度 -> 哪里, 闩门 / 收铺 -> 关门
_SYNONYMS: Final[tuple[tuple[str, str], ...]] = (
    (r"什么时候|几时|几点钟", "几点"),
    (r"什么地方|哪儿|边度|边处|边到|喺边", "哪里"),
    (r"乜嘢|咩嘢", "什么"),
    (r"你哋", "你们"), (r"我哋", "我们"), (r"佢哋", "他们"),
    (r"喺", "在"), (r"冇", "没"), (r"唔", "不"), (r"系", "是"),
    (r"闩门|收铺|收档|打烊|收工", "关门"),
    (r"营业|开铺", "开门"),
    (r"泊车", "停车"),
    (r"(?:订|book)(?:个|张|一张)?(?:台|座|位子|位)|预订|预定|预约|booking|book", "订位"),
    (r"斋菜|斋嘢食|素菜|斋", "素食"),
    (r"碌卡", "刷卡"), (r"俾钱|畀钱", "付钱"),
    (r"外卖送|送外卖|外送|送餐", "外卖"),
    (r"今日", "今天"), (r"听日|明日", "明天"), (r"后日", "后天"),
    (r"礼拜|星期", "周"), (r"周天", "周日"),
    (r"夜晚", "晚上"), (r"朝早", "早上"),
    (r"点样", "怎么"), (r"cancel", "取消"), (r"change", "改"),
)  # fmt: skip
_SYNONYM_PATTERNS: Final = tuple((re.compile(a), b) for a, b in _SYNONYMS)


def normalize(text: str) -> str:
    """``text`` as compared: Simplified, Cantonese words as their Mandarin synonyms, no
    punctuation, particles, fillers or spaces between Chinese characters; Latin words
    lowercase, one space apart. Idempotent."""
    s = _clean(text)
    s = _PARTICLES.sub(" ", s)
    s = _FILLERS.sub(" ", s)
    s = _SOFT.sub("", s)
    for pattern, repl in _SYNONYM_PATTERNS:
        s = pattern.sub(repl, s)
    s = s.replace("|", " ")
    s = re.sub(r"\s+", " ", s).strip()
    return _SPACE_IN_CJK.sub("", s)


# -- slots ---------------------------------------------------------------------------------

_DAY_CHARS: Final[Mapping[str, str]] = {
    "一": "monday", "二": "tuesday", "三": "wednesday", "四": "thursday", "五": "friday",
    "六": "saturday", "日": "sunday", "天": "sunday", "1": "monday", "2": "tuesday",
    "3": "wednesday", "4": "thursday", "5": "friday", "6": "saturday", "7": "sunday",
}  # fmt: skip
_WEEK: Final = r"(?:星期|礼拜|周|拜)"
_WEEKDAY_RANGE: Final = re.compile(
    rf"{_WEEK}([一二三四五六日天1-7])\s*(?:到|至|-|~|–)\s*{_WEEK}?([一二三四五六日天1-7])"
)
_ONE_DAY: Final = re.compile(rf"{_WEEK}([一二三四五六日天1-7])")
_DAY_GROUPS: Final[tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]] = (
    (re.compile(r"每天|天天|每日|日日|全周|成个礼拜"), WEEKDAYS),
    (re.compile(r"工作日|平日|周中"), WEEKDAYS[:5]),
    (re.compile(r"周末|礼拜六日|星期六日"), WEEKDAYS[5:]),
)
_RELATIVE: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    (re.compile(r"后天|后日|後日"), "day after tomorrow"),
    (re.compile(r"今天|今日|今晚|今早|今朝|今夜|今个晚上|而家|现在"), "today"),
    (re.compile(r"明天|明日|明晚|明早|听日|听晚|听朝"), "tomorrow"),
    (re.compile(r"昨天|昨日|琴日|寻日|昨晚|琴晚"), "yesterday"),
    (re.compile(r"下周|下星期|下个星期|下个礼拜|下礼拜|下一周|下个周"), "next week"),
    (re.compile(r"这周|这个星期|这个礼拜|今个星期|今个礼拜|呢个礼拜|呢个星期|本周"), "this week"),
)

_NUM: Final = r"[0-9]+|[零一二两三四五六七八九十百千]+"
_AM: Final = r"上午|早上|早晨|朝早|凌晨|今早|明早|听朝|清早"
_PM: Final = r"下午|晚上|夜晚|今晚|傍晚|晏昼|夜里|明晚|听晚|今夜|晚|夜"
_TIME: Final = re.compile(
    rf"(?:({_AM})|({_PM})|(中午))?\s*({_NUM})\s*点\s*(?:钟)?\s*"
    rf"(?:(半)|({_NUM})\s*(个字)|({_NUM})\s*分?)?"
)
_COLON_TIME: Final = re.compile(rf"(?:({_AM})|({_PM}))?\s*(\d{{1,2}}):(\d{{2}})")
_CLASSIFIERS: Final = "个位人张份桌台号岁次块元蚊条间名碗杯支只"
_QUANTITY: Final = re.compile(rf"({_NUM})\s*(?=[{_CLASSIFIERS}])|([0-9]+(?:\.[0-9]+)?)")
_DIGITS: Final[Mapping[str, int]] = {
    "零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8,
    "九": 9,
}  # fmt: skip

_ACTION_PATTERNS: Final[tuple[tuple[re.Pattern[str], tuple[str, str]], ...]] = (
    (re.compile(r"营业|开门|开铺|开到|开(?=\s|\||$|[吗么呀啊㗎嘛先])|有开|开始营业"),
     ("hours", "open")),
    (re.compile(r"关门|闩门|打烊|收铺|收档|收工|休息|关(?=\s|\||$|[吗么呀啊㗎])|闩(?=\s|\||$)"),
     ("hours", "close")),
    (re.compile(r"预约|预订|预定|挂号|订(?!单|外卖|餐)|(?<![a-z])(?:book(?:ing)?|reserve)(?![a-z])"),
     ("appointment", "book")),
    (re.compile(r"取消|退订|(?<![a-z])cancel(?![a-z])"), ("appointment", "cancel")),
    (re.compile(r"改期|改(?!善|进)|换个?时间|推迟|延期|延后|押后|(?<![a-z])change(?![a-z])"),
     ("appointment", "reschedule")),
    (re.compile(r"付款|付钱|俾钱|畀钱|交钱|买单|埋单|刷卡|碌卡|(?<![a-z])pay(?![a-z])"),
     ("money", "pay")),
    (re.compile(r"退款|退钱|回钱|(?<![a-z])refund(?![a-z])"), ("money", "refund")),
)  # fmt: skip
_NEGATOR: Final = re.compile(r"没有|不|没|别|无|唔|冇|未|莫|勿")
# words with an action in them that name no action: 营业时间 are the opening hours
_NOT_ACTIONS: Final = re.compile(r"营业时间|开门时间|开放时间|订单|外卖")
_SCOPE: Final = 4  # characters between a negator and the action it negates


def _number(text: str) -> int | None:
    """``"12"``, ``"十二"``, ``"二十五"``, ``"两"``, ``"一百二"`` -> int."""
    if text.isdigit():
        return int(text)
    total = current = 0
    last_unit = 1
    for ch in text:
        if ch in _DIGITS:
            current = _DIGITS[ch]
        elif ch in "十百千":
            unit = {"十": 10, "百": 100, "千": 1000}[ch]
            total += (current or 1) * unit
            current = 0
            last_unit = unit
        else:
            return None
    if current and last_unit >= 100 and total and text[-1] not in "十百千":
        return total + current * last_unit // 10  # 一百二 = 120
    return total + current


def _meridiem_clock(hour: int, minute: int, meridiem: str | None) -> ClockTime | None:
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    if hour == 0:
        return ClockTime(12, minute, "am")
    if hour > 12:
        return ClockTime(hour - 12, minute, "pm")
    return ClockTime(hour, minute, meridiem)


def _times(s: str) -> tuple[set[ClockTime], str]:
    found: set[ClockTime] = set()

    def one(m: re.Match[str]) -> str:
        am, pm, noon, hour_text = m[1], m[2], m[3], m[4]
        hour = _number(hour_text)
        tail = m[0][m.end(4) - m.start(0) :]
        if hour is None or (hour == 1 and not (am or pm or noon) and tail.strip() == "点"):
            return m[0]  # 一点: "a bit"
        minute = 0
        if m[5]:
            minute = 30
        elif m[6] and m[7]:
            minute = 5 * (_number(m[6]) or 0)
        elif m[8]:
            minute = _number(m[8]) or 0
        meridiem = "am" if am else "pm" if (pm or (noon and hour < 6)) else None
        clock = _meridiem_clock(hour, minute, meridiem)
        if clock is not None:
            found.add(clock)
        return " | " if not (am or pm) else f" {am or pm} | "

    s = _TIME.sub(one, s)

    def colon(m: re.Match[str]) -> str:
        meridiem = "am" if m[1] else "pm" if m[2] else None
        clock = _meridiem_clock(int(m[3]), int(m[4]), meridiem)
        if clock is not None:
            found.add(clock)
        return f" {m[1] or m[2] or ''} | "

    return found, _COLON_TIME.sub(colon, s)


def _actions(
    s: str,
) -> tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]], bool]:
    s = _NOT_ACTIONS.sub(lambda m: "_" * len(m[0]), s)  # same length: positions hold
    negators = [m.start() for m in _NEGATOR.finditer(s)]
    asserted: set[tuple[str, str]] = set()
    denied: set[tuple[str, str]] = set()
    attached: set[int] = set()
    spans: list[tuple[int, tuple[str, str]]] = []
    for pattern, key in _ACTION_PATTERNS:
        spans.extend((m.start(), key) for m in pattern.finditer(s))
    keys = {key for _, key in spans}
    if ("appointment", "cancel") in keys or ("appointment", "reschedule") in keys:
        # 取消预订, 改预约时间: the booking is what is cancelled or changed
        spans = [(at, key) for at, key in spans if key != ("appointment", "book")]
    for at, key in spans:
        bearing = [j for j in negators if 0 < at - j <= _SCOPE and "|" not in s[j:at]]
        (denied if bearing else asserted).add(key)
        attached.update(bearing)
    return frozenset(asserted), frozenset(denied), bool(set(negators) - attached)


_HOURS_TOPIC: Final = re.compile(  # on the normalized text (Cantonese read as Mandarin)
    r"开门|开铺|有开|开吗|开不开|营业|关门|收工|收铺|几点开|几点关|开到|开放时间"
)


def extract_slots(text: str) -> Slots:
    """The :class:`Slots` of a Mandarin or Cantonese ``text`` (any script)."""
    s = _clean(text)
    s = _PARTICLES.sub(" ", s)
    s = _SOFT.sub("", s)
    plain = s
    weekdays: set[str] = set()
    for m in _WEEKDAY_RANGE.finditer(s):
        first, last = WEEKDAYS.index(_DAY_CHARS[m[1]]), WEEKDAYS.index(_DAY_CHARS[m[2]])
        weekdays.update(WEEKDAYS[(first + i) % 7] for i in range((last - first) % 7 + 1))
    s = _WEEKDAY_RANGE.sub(" | ", s)
    for pattern, days in _DAY_GROUPS:
        if pattern.search(s):
            weekdays.update(days)
            s = pattern.sub(" | ", s)
    weekdays.update(_DAY_CHARS[m[1]] for m in _ONE_DAY.finditer(s))
    s = _ONE_DAY.sub(" | ", s)
    times, s = _times(s)
    relative: set[str] = set()
    for pattern, day in _RELATIVE:
        if pattern.search(s):
            relative.add(day)
            s = pattern.sub(" | ", s)
    numbers: set[float] = set()
    for m in _QUANTITY.finditer(s):
        value = _number(m[1]) if m[1] else float(m[2])
        if value is not None:
            numbers.add(float(value))
    actions, negated_actions, negated = _actions(plain)
    return Slots(
        numbers=frozenset(numbers),
        weekdays=frozenset(weekdays),
        relative_days=frozenset(relative),
        times=frozenset(times),
        actions=actions,
        negated_actions=negated_actions,
        negated=negated,
        topics=hours_topic(_HOURS_TOPIC, normalize(text)),
    )
