"""The parts of a question that must agree before an answer serves it (pure text, no model)."""

import pytest

from callweaver.text.slots import (
    WEEKDAYS,
    ClockTime,
    Slots,
    conflicts,
    extract_slots,
    inherit_actions,
    normalize,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What's your ADDRESS??", "what is your address"),
        ("I can't  make it,\tsorry!", "i can not make it sorry"),
        ("i dont want to cancel", "i do not want to cancel"),  # ASR, no apostrophe
        ("whats the address", "what is the address"),
        ("id like a checkup", "i would like a checkup"),
        ("my patient id please", "my patient id please"),
        ("I won\u2019t be there, we\u2019re away", "i will not be there we are away"),
        ("the doctor's office", "the doctor office"),
        ("Open 9 a.m. to 5 p.m.", "open 9 am to 5 pm"),
        ("open 8am-6pm", "open 8 am to 6 pm"),
        ("nine a m", "nine am"),
        ("Monday-Friday", "monday to friday"),
        ("It's $1,250.50", "it is 1250.50 dollars"),
        ("call 555-1234", "call 555 1234"),
        ("at 9:30.", "at 9:30"),
        ("ten o'clock", "ten o clock"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected
    assert normalize(expected) == expected  # idempotent


def test_numbers_in_digits_and_words() -> None:
    def numbers(text: str) -> set[float]:
        return set(extract_slots(text).numbers)

    assert numbers("a table for two") == {2}
    assert numbers("a table for 6 people") == {6}
    assert numbers("twenty five dollars") == {25}
    assert numbers("one hundred and twenty five") == {125}
    assert numbers("two thousand five hundred") == {2500}
    assert numbers("room 12 or 14") == {12, 14}
    assert numbers("the 3rd of march") == {3}
    assert numbers("which one is it, no one knows") == set()  # pronouns
    assert numbers("two and four") == {2, 4}
    assert numbers("at 9 am") == set()  # a time, not a quantity
    assert numbers("in 2 weeks") == {2}


@pytest.mark.parametrize(
    ("text", "times"),
    [
        ("at 9 am", {ClockTime(9, 0, "am")}),
        ("9:30 pm", {ClockTime(9, 30, "pm")}),
        ("14:30", {ClockTime(2, 30, "pm")}),
        ("nine thirty a m", {ClockTime(9, 30, "am")}),
        ("ten o'clock", {ClockTime(10)}),
        ("at noon", {ClockTime(12, 0, "pm")}),
        ("midnight", {ClockTime(12, 0, "am")}),
        ("half past two", {ClockTime(2, 30)}),
        ("quarter to nine", {ClockTime(8, 45)}),
        ("can I come at 3", {ClockTime(3)}),
        ("open from 8 to 6", {ClockTime(8), ClockTime(6)}),
        ("between nine am and five pm", {ClockTime(9, 0, "am"), ClockTime(5, 0, "pm")}),
        ("after 2 weeks", set()),
        ("at one of your clinics", set()),
    ],
)
def test_clock_times(text: str, times: set[ClockTime]) -> None:
    assert set(extract_slots(text).times) == times


def test_days() -> None:
    assert extract_slots("are you open on Sundays").weekdays == {"sunday"}
    assert extract_slots("open Monday to Friday").weekdays == set(WEEKDAYS[:5])
    assert extract_slots("open Friday through Monday").weekdays == {
        "friday", "saturday", "sunday", "monday"
    }  # fmt: skip
    assert extract_slots("on weekdays").weekdays == set(WEEKDAYS[:5])
    assert extract_slots("at the weekend").weekdays == {"saturday", "sunday"}
    assert extract_slots("open seven days a week").weekdays == set(WEEKDAYS)
    assert extract_slots("open seven days a week").numbers == frozenset()
    assert extract_slots("are you open tonight").relative_days == {"today"}
    assert extract_slots("the day after tomorrow").relative_days == {"day after tomorrow"}
    assert extract_slots("tomorrow morning").relative_days == {"tomorrow"}


def test_actions_and_negation() -> None:
    def actions(text: str) -> tuple[set[tuple[str, str]], set[tuple[str, str]], bool]:
        s = extract_slots(text)
        return set(s.actions), set(s.negated_actions), s.negated

    assert actions("what are your opening hours") == (set(), set(), False)
    assert actions("when do you close") == ({("hours", "close")}, set(), False)
    assert actions("I'd like to book an appointment") == ({("appointment", "book")}, set(), False)
    assert actions("cancel my booking") == ({("appointment", "cancel")}, set(), False)
    assert actions("I don't want to cancel my appointment") == (
        set(), {("appointment", "cancel")}, False
    )  # fmt: skip
    # the negation bears on "make it", not on the cancellation
    assert actions("i cant make it tomorrow i need to cancel") == (
        {("appointment", "cancel")}, set(), True
    )  # fmt: skip
    assert actions("is there no parking") == (set(), set(), True)
    assert actions("no, I want to reschedule") == ({("appointment", "reschedule")}, set(), False)
    assert actions("I'm not sure if you take my insurance") == (set(), set(), False)  # a hedge


def test_a_weekday_outside_the_examples_days_conflicts() -> None:
    week = extract_slots("are you open Monday to Friday")
    (sunday,) = conflicts(extract_slots("are you open on Sunday"), week)
    assert sunday.kind == "weekday" and not sunday.opposite
    assert str(sunday) == "weekday: sunday vs monday,tuesday,wednesday,thursday,friday"
    assert conflicts(extract_slots("are you open on wednesday"), week) == ()


def test_an_unsaid_slot_does_not_conflict_either_way() -> None:
    general, monday = extract_slots("are you open"), extract_slots("are you open on monday")
    assert conflicts(general, monday) == ()
    assert conflicts(monday, general) == ()


@pytest.mark.parametrize(
    ("caller", "example", "kind"),
    [
        ("a table for two", "a table for six", "number"),
        ("can I come today", "can I come tomorrow", "day"),
        ("can I come at 9 pm", "can I come at 9 am", "time"),
        ("when do you close", "when do you open", "action"),
        ("cancel my appointment", "book an appointment", "action"),
        ("I don't want to cancel", "I want to cancel", "action"),
        ("is there no parking", "is there parking", "negation"),
    ],
)
def test_near_misses_conflict(caller: str, example: str, kind: str) -> None:
    found = conflicts(extract_slots(caller), extract_slots(example))
    assert [c.kind for c in found] == [kind]
    assert found[0].opposite == (kind in ("action", "negation"))


@pytest.mark.parametrize(
    ("caller", "example"),
    [
        ("a table for 2", "a table for two"),
        ("can I come at 9", "can I come at 9 am"),
        ("can I come at nine in the morning", "can I come at 9 am"),
        ("i cant make it tomorrow i need to cancel", "I need to cancel my appointment"),
        ("I'm not sure if you take my insurance", "do you take my insurance"),
        ("when do you open and close", "when do you close"),
    ],
)
def test_paraphrases_agree(caller: str, example: str) -> None:
    assert conflicts(extract_slots(caller), extract_slots(example)) == ()


def test_an_example_takes_the_actions_of_its_siblings() -> None:
    paraphrase = extract_slots("I won't be able to make my appointment")
    sibling = extract_slots("I need to cancel my appointment")
    inherited = inherit_actions(paraphrase, [paraphrase, sibling])
    assert inherited.axis("appointment") == {"cancel"}
    caller = extract_slots("I have to cancel")
    assert [c.kind for c in conflicts(caller, paraphrase)] == ["negation"]
    assert conflicts(caller, inherited) == ()  # the agreed action outweighs the stray negation
    assert conflicts(extract_slots("I want to book"), inherited)[0].kind == "action"
    # an axis the example states itself is not overridden
    book = extract_slots("book an appointment")
    assert inherit_actions(book, [sibling]) is book


def test_empty_text_has_no_slots() -> None:
    assert extract_slots("") == Slots()
    assert normalize("  ?! ") == ""
