"""Cutting streamed reply text into sentences."""

from callweaver.text.sentences import SentenceSplitter, lead_clause, split_sentences


def test_sentences_come_out_as_soon_as_complete() -> None:
    s = SentenceSplitter()
    assert s.push("We're open Mon") == []
    assert s.push("day to Friday. We clo") == ["We're open Monday to Friday."]
    assert s.push("se at six!") == []  # the mark may still be followed by more ("!?")
    assert s.push(" Call us") == ["We close at six!"]
    assert s.flush() == ["Call us"]
    assert s.flush() == []


def test_abbreviations_and_decimals_do_not_end_a_sentence() -> None:
    text = "Dr. Smith sees patients at 3.30 p.m. on Mondays. Mr. Jones e.g. does not. Ok."
    assert split_sentences(text) == [
        "Dr. Smith sees patients at 3.30 p.m. on Mondays.",
        "Mr. Jones e.g. does not.",
        "Ok.",
    ]


def test_chinese_marks_end_at_once() -> None:
    assert split_sentences("我哋九點開門。星期日休息！好") == [
        "我哋九點開門。",
        "星期日休息！",
        "好",
    ]


def test_questions_newlines_and_semicolons() -> None:
    assert split_sentences("Is it urgent? Yes\nthen come in; we will see") == [
        "Is it urgent?",
        "Yes",
        "then come in;",
        "we will see",
    ]


def test_a_run_on_sentence_is_cut_at_a_comma_or_space() -> None:
    s = SentenceSplitter(max_chars=40)
    out = s.push("one two three four five, six seven eight nine ten eleven twelve")
    assert out and all(len(x) <= 40 for x in out)
    assert out[0].endswith(",")
    rest = s.flush()
    assert " ".join(out + rest).split() == (
        [
            "one",
            "two",
            "three",
            "four",
            "five,",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
        ]
    )


def test_nothing_is_lost_whatever_the_piece_boundaries() -> None:
    text = "Hello there. How are you? I'm fine! Thanks; bye."
    for size in (1, 2, 3, 7):
        s = SentenceSplitter()
        out: list[str] = []
        for i in range(0, len(text), size):
            out += s.push(text[i : i + size])
        out += s.flush()
        assert out == ["Hello there.", "How are you?", "I'm fine!", "Thanks;", "bye."]


def test_a_long_first_sentence_is_spoken_clause_first() -> None:
    long = (
        "We're open Monday to Friday from 8 in the morning to 6 in the evening, and on "
        "Saturday from 9 to 1."
    )
    assert lead_clause(long) == [
        "We're open Monday to Friday from 8 in the morning to 6 in the evening,",
        "and on Saturday from 9 to 1.",
    ]
    assert lead_clause("Of course, I can book you in.") == ["Of course, I can book you in."]
    no_comma = "We are at forty two Harbour Street on the second floor next to the pharmacy."
    assert lead_clause(no_comma) == [no_comma]
    # a comma too early (a short clause would sound clipped) is passed over
    assert lead_clause("Yes, " + no_comma)[0].startswith("Yes, We are at forty two Harbour")
