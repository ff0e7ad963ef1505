"""The spoken log: what the caller heard of a reply cut by a barge-in."""

from callweaver.runtime.spoken import SpokenLog, estimate_words, words_from_boundaries


def test_a_reply_not_cut_has_no_heard_text() -> None:
    log = SpokenLog()
    log.add(1, "We're open from eight to six.", 2000)
    assert log.heard(1) is None and log.cut_ms(1) is None
    assert log.spoken_ms(1) == 2000


def test_the_cut_keeps_whole_pieces_and_the_words_started_before_it() -> None:
    log = SpokenLog()
    log.add(1, "We're open from eight to six.", 2000)
    log.add(1, "Is there anything else?", 1500)
    log.cut(1, 2000 + 600)  # 0.6 s into the second sentence
    heard = log.heard(1)
    assert heard is not None
    assert heard.startswith("We're open from eight to six. Is")
    assert "else" not in heard
    log.cut(1, 3400)  # the first cut of a turn counts
    assert log.heard(1) == heard


def test_a_cut_before_any_audio_heard_nothing() -> None:
    log = SpokenLog()
    log.add(2, "Hello there.", 800)
    log.cut(2, 0)
    assert log.heard(2) == ""
    log.cut(3, 1)
    assert log.heard(3) == ""  # nothing was said in turn 3


def test_what_is_added_after_the_cut_point_was_not_heard() -> None:
    log = SpokenLog()
    log.add(1, "One.", 500)
    log.cut(1, 500)
    log.add(1, "Two.", 500)  # sent just before the barge-in, never played
    assert log.heard(1) == "One."


def test_provider_word_boundaries_place_the_cut() -> None:
    text = "Your appointment is confirmed for Tuesday."
    # a slow start: the provider says "Tuesday" starts at 1900 ms, not where length would
    bounds = [(0, "Your"), (300, "appointment"), (1100, "is"), (1300, "confirmed"),
              (1600, "for"), (1900, "Tuesday")]  # fmt: skip
    log = SpokenLog()
    log.add(1, text, 2400, bounds)
    log.cut(1, 1850)
    assert log.heard(1) == "Your appointment is confirmed for"
    words = words_from_boundaries(text, bounds, 2400)
    assert [w.start_ms for w in words] == [0, 300, 1100, 1300, 1600, 1900]


def test_boundaries_that_do_not_match_the_text_fall_back_to_estimates() -> None:
    words = words_from_boundaries("Hello there.", [(10, "zzz")], 1000)
    assert words == estimate_words("Hello there.", 1000)


def test_chinese_is_cut_by_character_and_joined_without_spaces() -> None:
    log = SpokenLog()
    log.add(1, "我哋星期一至五開。", 900)  # 9 characters, 100 ms each
    log.add(1, "仲有冇其他嘢？", 700)
    log.cut(1, 900 + 250)
    assert log.heard(1) == "我哋星期一至五開。仲有冇"


def test_estimated_words_start_in_proportion_to_their_length() -> None:
    words = estimate_words("aa bbbb cc", 800)
    assert [round(w.start_ms) for w in words] == [0, 200, 600]
    assert [w.end_char for w in words] == [2, 7, 10]


def test_a_far_end_that_speaks_itself_reports_the_heard_text() -> None:
    log = SpokenLog()
    log.add(1, "We're open from eight to six. Is there anything else?", 0)
    log.cut_text(1, " We're open from eight ")
    assert log.heard(1) == "We're open from eight"
    assert log.cut_ms(1) == 0
