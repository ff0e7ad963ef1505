"""Declared answers on the real MiniLM model: a clinic front desk, paraphrases and near misses.

``python tests/test_answers.py`` prints the hit and wrong-answer rates per threshold (the
table in ``callweaver/services/answers.py``).
"""

import time
from pathlib import Path

import pytest

from callweaver.services.answers import (
    DEFAULT_THRESHOLD,
    NO_MATCH_REPLY,
    Answer,
    AnswerMatcher,
    AnswersLLM,
    AnswersParams,
    Match,
)
from callweaver.services.catalog import parse_spec
from callweaver.services.llm import Message

CLINIC: list[dict[str, object]] = [
    {
        "id": "hours",
        "questions": [
            "What are your opening hours?",
            "When are you open?",
            "What time do you open?",
            "What time do you close?",
            "Are you open Monday to Friday?",
            "What are your hours on weekdays?",
        ],
        "reply": "We're open Monday to Friday from 8 am to 6 pm, and until 8 pm on Thursdays. "
        "We're closed at weekends.",
    },
    {
        "id": "late-thursday",
        "questions": ["Are you open late on Thursdays?", "What time do you close on Thursday?"],
        "reply": "On Thursdays we stay open until 8 pm.",
    },
    {
        "id": "address",
        "questions": [
            "What's your address?",
            "Where are you located?",
            "Where is the clinic?",
            "How do I get to the clinic?",
        ],
        "reply": "We're at 42 Harbor Street, second floor, next to the pharmacy.",
    },
    {
        "id": "book",
        "questions": [
            "I'd like to book an appointment.",
            "Can I make an appointment?",
            "I need to see a doctor.",
            "Can I schedule a visit?",
            "Do you have any free slots?",
        ],
        "reply": "I can help you book. Which day suits you, and is it for a check-up or "
        "something specific?",
    },
    {
        "id": "same-day",
        "questions": [
            "Can I see a doctor today?",
            "Do you have any appointments today?",
            "Can I get an appointment today?",
        ],
        "reply": "We keep some same-day appointments: call at 8 am and we'll fit you in.",
    },
    {
        "id": "cancel",
        "questions": [
            "I need to cancel my appointment.",
            "Can I cancel my booking?",
            "I won't be able to make my appointment.",
        ],
        "reply": "No problem. Please tell me your name and the date of the appointment, and "
        "I'll cancel it.",
    },
    {
        "id": "reschedule",
        "questions": [
            "I need to reschedule my appointment.",
            "Can I move my appointment to another day?",
        ],
        "reply": "Sure. What's your name, and which day would suit you better?",
    },
    {
        "id": "human",
        "questions": [
            "Can I talk to a person?",
            "I want to speak to the receptionist.",
            "Put me through to someone, please.",
            "Can I speak to a real human?",
        ],
        "reply": "Of course, I'll put you through to the front desk now.",
    },
    {
        "id": "parking",
        "questions": ["Is there parking?", "Where can I park?", "Do you have a car park?"],
        "reply": "Yes, there's free parking behind the building; the entrance is on Mill Lane.",
    },
    {
        "id": "insurance",
        "questions": [
            "Do you take insurance?",
            "Which insurance do you accept?",
            "Is my insurance accepted?",
        ],
        "reply": "We accept most major insurers, including Blue Cross, Aetna and Medicare. "
        "Please bring your card to the visit.",
    },
    {
        "id": "prices",
        "questions": [
            "How much does a visit cost?",
            "What are your prices?",
            "How much is a consultation?",
        ],
        "reply": "A standard consultation is 80 dollars; a check-up with blood tests is 140 "
        "dollars.",
    },
]

# Held out: none of these was used to write the example questions above. 52 of the 87 are
# written the way an ASR transcribes (lowercase, no punctuation). None = nothing declared
# answers it (out of scope, or a near miss of a declared question).
HELD_OUT: list[tuple[str, str | None]] = [
    ("hi what time do you guys open in the morning", "hours"),
    ("How late are you open today?", "hours"),
    ("are you open on saturdays", "hours"),  # the hours reply says: closed on weekends
    ("When do you close?", "hours"),
    ("are you open late on tuesday", "hours"),  # not the Thursday answer
    ("What time do you close on Friday?", "hours"),
    ("when do you close on thursdays", "late-thursday"),
    ("do you open on sundays", "hours"),
    ("what are your business hours", "hours"),
    ("whats the address of the clinic", "address"),
    ("Where exactly are you?", "address"),
    ("how do i find you", "address"),
    ("Which street are you on?", "address"),
    ("i want to make an appointment with doctor patel", "book"),
    ("Can I come in to see the doctor tomorrow morning?", "book"),
    ("id like to get a checkup next week", "book"),
    ("I need an appointment, please.", "book"),
    ("can i book a visit for my son", "book"),
    ("can i get an appointment tomorrow", "book"),  # not the same-day answer
    ("Is there any chance of seeing a doctor today?", "same-day"),
    ("i cant make it tomorrow i need to cancel", "cancel"),
    ("Please cancel my appointment on Thursday.", "cancel"),
    ("I have to call off my visit.", "cancel"),
    ("cancel my booking", "cancel"),
    ("can i change my appointment to friday", "reschedule"),
    ("I'd like to move my appointment to a later date.", "reschedule"),
    ("let me talk to a real person", "human"),
    ("Can I speak with someone at the front desk?", "human"),
    ("i want a human", "human"),
    ("transfer me to reception please", "human"),
    ("where do i leave my car", "parking"),
    ("Is parking free?", "parking"),
    ("can i park at the clinic", "parking"),
    ("do you accept medicare", "insurance"),
    ("Will my insurance cover the visit?", "insurance"),
    ("are you in network with aetna", "insurance"),
    ("how much do you charge for a consultation", "prices"),
    ("What's the price of a check-up?", "prices"),
    ("how much will it cost me", "prices"),
    ("what's the weather like today", None),
    ("Can you recommend a good restaurant nearby?", None),
    ("what is the capital of france", None),
    ("Do you sell dog food?", None),
    ("i'd like to order a pizza", None),
    ("How do I reset my password?", None),
    ("can you tell me a joke", None),
    ("I don't want to cancel my appointment.", None),
    ("i dont want to book an appointment i just have a question", None),
    ("are you hiring nurses", None),
    ("Do you do home visits?", None),
    ("can i get my test results", None),
    ("Do you have a pharmacy?", None),
    ("do you treat children", None),
    ("hello", None),
    # a second set, written after the matcher was tuned on the first and measured once, unchanged
    ("what time does the clinic open tomorrow", "hours"),
    ("are you guys open right now", "hours"),
    ("how early can i come in on monday", "hours"),
    ("are you open on thursday evening", "late-thursday"),
    ("What's the street address?", "address"),
    ("how do i get there from the train station", "address"),
    ("where is your office", "address"),
    ("I'd like to schedule a check-up.", "book"),
    ("can i get in to see someone next monday", "book"),
    ("i need to book my daughter in for a physical", "book"),
    ("Do you have any openings on Wednesday?", "book"),
    ("Can someone see me this afternoon?", "same-day"),
    ("I want to cancel tomorrow's appointment.", "cancel"),
    ("please cancel it im sick", "cancel"),
    ("I'm not going to make it on Friday, can you cancel?", "cancel"),
    ("can we push my appointment back a week", "reschedule"),
    ("I need a different time for my appointment.", "reschedule"),
    ("can i talk to a nurse", "human"),
    ("get me a real person", "human"),
    ("is there somewhere to park nearby", "parking"),
    ("Do I have to pay for parking?", "parking"),
    ("do you take united healthcare", "insurance"),
    ("Is Cigna accepted?", "insurance"),
    ("how much is a visit without insurance", "prices"),
    ("whats the cost of an appointment", "prices"),
    ("can you book me a flight to boston", None),
    ("What's the wifi password?", None),
    ("do you have a dentist", None),
    ("I'm not cancelling, I just want to check my appointment time.", None),
    ("can i pay my bill over the phone", None),
    ("what time is it", None),
    ("who won the game last night", None),
    ("Can I get a prescription refill?", None),
]


def clinic(threshold: float = DEFAULT_THRESHOLD, *, check_slots: bool = True) -> AnswerMatcher:
    answers = [Answer.model_validate(a) for a in CLINIC]
    return AnswerMatcher(answers, threshold=threshold, check_slots=check_slots)


def rates(matcher: AnswerMatcher) -> tuple[float, float]:
    """(hit rate over the answerable phrasings, wrong-answer rate over all of them)."""
    hits = wrong = 0
    for text, expected in HELD_OUT:
        match = matcher.match(text)
        got = match.answer_id if match.accepted else None
        hits += got is not None and got == expected
        wrong += got is not None and got != expected
    answerable = sum(e is not None for _, e in HELD_OUT)
    return hits / answerable, wrong / len(HELD_OUT)


THRESHOLDS = (0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.85)


def table() -> str:
    lines = ["threshold  slots checked           similarity alone"]
    for threshold in THRESHOLDS:
        (hit, wrong), (hit0, wrong0) = (
            rates(clinic(threshold)),
            rates(clinic(threshold, check_slots=False)),
        )
        lines.append(
            f"{threshold:<9.2f}  hit {hit:4.0%}, wrong {wrong:3.0%}   "
            f"hit {hit0:4.0%}, wrong {wrong0:3.0%}"
        )
    return "\n".join(lines)


# -- matching ------------------------------------------------------------------------------


def test_held_out_phrasings_at_the_default_threshold() -> None:
    assert len(HELD_OUT) >= 30
    hit, wrong = rates(clinic())
    assert hit >= 0.66, hit  # measured: 67 % (43 of 64)
    assert wrong <= 0.02, wrong  # measured: 1 % (1 of 87)
    # the slot checks are what keeps near misses out: similarity alone answers more wrongly
    hit_alone, wrong_alone = rates(clinic(check_slots=False))
    assert wrong_alone >= wrong + 0.05, (wrong_alone, wrong)  # measured: 14 %
    assert hit >= hit_alone  # measured: 62 %


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I need to cancel my appointment", "cancel"),
        ("cancel my appointment", "cancel"),
        ("book an appointment", "book"),
        ("I'd like to book an appointment for next Tuesday", "book"),
        ("where's the clinic", "address"),
        ("can i speak to the receptionist please", "human"),
        ("what time do you close on thursday", "late-thursday"),
    ],
)
def test_paraphrases_find_their_answer(text: str, expected: str) -> None:
    match = clinic().match(text)
    assert match.accepted and match.answer_id == expected, match


@pytest.mark.parametrize(
    "text",
    [
        "what's the weather",
        "what's the weather like tomorrow",
        "I don't want to cancel my appointment",
        "can you order me a taxi",
        "uh huh",
    ],
)
def test_unrelated_questions_and_near_misses_get_no_answer(text: str) -> None:
    match = clinic().match(text)
    assert not match.accepted and match.reply is None, match


def test_a_day_the_examples_do_not_cover_is_not_answered() -> None:
    weekdays = [
        Answer(
            id="weekdays",
            questions=["Are you open Monday to Friday?", "Are you open on weekdays?"],
            reply="Yes, we're open Monday to Friday, 8 to 6.",
        ),
        Answer(id="parking", questions=["Where can I park?"], reply="Behind the building."),
    ]
    match = AnswerMatcher(weekdays).match("are you open on Sunday")
    assert not match.accepted
    assert match.answer_id == "weekdays" and match.score > 0.8  # similar, yet not that answer
    assert match.reason.startswith("weekday: sunday vs monday")
    # similarity alone would have said yes
    assert AnswerMatcher(weekdays, check_slots=False).match("are you open on Sunday").accepted
    assert AnswerMatcher(weekdays).match("are you open on wednesday").answer_id == "weekdays"


def test_a_slot_mismatch_falls_back_to_the_general_phrasing() -> None:
    """Tomorrow is not the same-day answer; the booking answer covers it."""
    match = clinic().match("can i get an appointment tomorrow")
    assert match.accepted and match.answer_id == "book"
    assert match.second_score > match.score  # same-day scored higher, and was skipped
    match = clinic().match("are you open late on tuesday")
    assert match.answer_id == "hours"


def test_exact_questions_skip_the_model() -> None:
    matcher = clinic()
    before = matcher.embedder.texts
    match = matcher.match("WHAT'S your address??")
    assert match == Match(
        text="what is your address",
        accepted=True,
        answer_id="address",
        example="What's your address?",
        score=1.0,
        second_score=match.second_score,
        reply=CLINIC[2]["reply"],  # type: ignore[arg-type]
        reason="exact",
    )
    assert 0 < match.second_score < 0.9
    assert matcher.embedder.texts == before


async def test_async_match_equals_sync_match() -> None:
    matcher = clinic()
    for text in ("when do you guys close", "Is parking free?", "", "what are your prices"):
        assert await matcher.match_async(text) == matcher.match(text)


def test_empty_text_matches_nothing() -> None:
    match = clinic().match("  ... ")
    assert match == Match("", False, None, None, 0.0, 0.0, None, "empty")


def test_second_construction_reuses_the_embeddings() -> None:
    answers = [Answer.model_validate(a) for a in CLINIC]
    first = AnswerMatcher(answers)
    texts = first.embedder.texts
    started = time.perf_counter()
    for _ in range(10):
        AnswerMatcher(answers)
    per_build = (time.perf_counter() - started) / 10
    assert first.embedder.texts == texts  # nothing embedded again
    assert per_build < 0.02, per_build  # measured: about 1.3 ms for 38 questions


# -- params and files ----------------------------------------------------------------------


def test_params_take_single_questions_and_derive_ids() -> None:
    params = AnswersParams.model_validate(
        {"answers": [{"question": "Where can I park?", "reply": "Behind the building."}]}
    )
    (answer,) = params.all_answers
    assert answer.id == "where-can-i-park"
    assert answer.questions == ["Where can I park?"]
    assert params.threshold == DEFAULT_THRESHOLD
    assert params.no_match_reply == NO_MATCH_REPLY


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "at least one answer"),
        ({"answers": []}, "at least one answer"),
        ({"answers": [{"questions": [], "reply": "x"}]}, "at least 1 item"),
        ({"answers": [{"questions": ["?!"], "reply": "x"}]}, "no words"),
        ({"answers": [{"questions": ["hi"], "reply": " "}]}, "reply is blank"),
        ({"answers": [{"questions": ["hi"], "reply": "x", "extra": 1}]}, "Extra inputs"),
        ({"answers": [{"questions": ["hi"]}]}, "Field required"),
        ({"answers": [{"question": "hi", "reply": "x"}], "threshold": 1.5}, "less than"),
        (
            {"answers": [{"id": "a", "question": "hi", "reply": "x"}] * 2},
            "two answers have the id 'a'",
        ),
    ],
)
def test_bad_params_are_refused(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AnswersParams.model_validate(raw)


def test_a_question_listed_by_two_answers_is_refused() -> None:
    a = Answer(id="a", questions=["Where can I park?"], reply="x")
    b = Answer(id="b", questions=["where can i park"], reply="y")
    with pytest.raises(ValueError, match="'a' and 'b' both list the question"):
        AnswerMatcher([a, b])


def test_answers_file_is_merged_after_the_inline_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "faq.yaml").write_text(
        "answers:\n"
        "  - id: parking\n"
        "    questions: ['Where can I park?', 'Is there parking?']\n"
        "    reply: Behind the building.\n"
        "  - question: Do you take insurance?\n"
        "    reply: Most of them.\n"
    )
    monkeypatch.chdir(tmp_path)  # a relative path is read from the current directory
    params = AnswersParams.model_validate(
        {
            "answers": [{"id": "hours", "question": "When are you open?", "reply": "8 to 6."}],
            "file": "faq.yaml",
        }
    )
    assert [a.id for a in params.all_answers] == ["hours", "parking", "do-you-take-insurance"]
    llm = AnswersLLM(params)
    assert llm.matcher.match("where do i park my car").answer_id == "parking"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        ("answers: [\n  - id: x", "not valid YAML"),
        ("- question: hi\n  reply: x\n", "a mapping with an 'answers:' list"),
        ("answers: []\n", "list is empty"),
        ("answers:\n  - question: hi\n", r"answers\[0\]: reply: Field required"),
        ("answers:\n  - question: hi\n    reply: x\n    colour: red\n", r"answers\[0\]: colour"),
    ],
)
def test_a_bad_answers_file_is_named_in_the_error(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "faq.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=message) as caught:
        AnswersParams.model_validate({"file": str(path)})
    assert str(path) in str(caught.value)


def test_the_catalog_builds_it_and_reports_file_errors(tmp_path: Path) -> None:
    spec = parse_spec(
        "llm",
        {"type": "answers", "name": "faq", "answers": [CLINIC[0]], "threshold": 0.6},
    )
    llm = spec.build()
    assert isinstance(llm, AnswersLLM) and llm.name == "faq"
    assert llm.matcher.threshold == 0.6
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ValueError, match=f"llm provider 'answers'.*{missing}.*no such file"):
        parse_spec("llm", {"type": "answers", "file": str(missing)})


# -- the provider --------------------------------------------------------------------------


def clinic_llm(**params: object) -> AnswersLLM:
    return AnswersLLM(AnswersParams.model_validate({"answers": CLINIC, **params}))


async def reply(llm: AnswersLLM, *messages: Message) -> list[str]:
    return [piece async for piece in llm.stream(messages)]


async def test_stream_speaks_the_matched_reply_sentence_by_sentence() -> None:
    llm = clinic_llm()
    pieces = await reply(
        llm,
        Message("system", "You are the front desk of a clinic."),
        Message("user", "Where are you?"),
        Message("assistant", "We're at 42 Harbor Street."),
        Message("user", "and when do you guys close"),
    )
    assert pieces == [
        "We're open Monday to Friday from 8 am to 6 pm, and until 8 pm on Thursdays. ",
        "We're closed at weekends.",
    ]
    assert "".join(pieces) == CLINIC[0]["reply"]
    assert llm.last_match is not None and llm.last_match.answer_id == "hours"
    assert llm.last_match.accepted and llm.last_match.score > DEFAULT_THRESHOLD
    await llm.aclose()


@pytest.mark.parametrize("text", ["", "   ", "what is the capital of france"])
async def test_no_match_says_the_no_match_reply(text: str) -> None:
    llm = clinic_llm()
    assert await reply(llm, Message("user", text)) == [
        "Sorry, I didn't catch that. ",
        "Could you say it again?",
    ]
    assert llm.last_match is not None and not llm.last_match.accepted


async def test_custom_no_match_reply_and_no_user_message() -> None:
    llm = clinic_llm(no_match_reply="Let me get someone for you.")
    assert await reply(llm, Message("system", "hi")) == ["Let me get someone for you."]
    assert llm.last_match is not None and llm.last_match.reason == "empty"


if __name__ == "__main__":
    print(table())
