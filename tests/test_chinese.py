"""Cantonese told from Mandarin on colloquial text (tests/chinese_eval.py: 45 of each, in
both scripts, short turns included)."""

from __future__ import annotations

from chinese_eval import CANTONESE, MANDARIN

from callweaver.text.chinese import cantonese_or_mandarin, has_han


def test_colloquial_cantonese_is_told_from_mandarin() -> None:
    said = [cantonese_or_mandarin(t)[0] for t in CANTONESE]
    # measured once, unchanged since: 44 of 45; the other has no marker at all (晏晝, 得閒)
    assert said.count("yue") / len(said) >= 0.95
    assert "zh" not in said  # never called Mandarin


def test_mandarin_is_never_called_cantonese() -> None:
    said = [cantonese_or_mandarin(t)[0] for t in MANDARIN]
    # measured once: 41 of 45; the other four have no marker ("谢谢你", "没问题"): undecided,
    # the call's context decides them
    assert said.count("zh") / len(said) >= 0.9
    assert "yue" not in said


def test_no_marker_means_undecided() -> None:
    assert cantonese_or_mandarin("陳大文") == ("", 0.0)
    assert cantonese_or_mandarin("hello") == ("", 0.0)
    assert cantonese_or_mandarin("") == ("", 0.0)
    text, share = cantonese_or_mandarin("我哋喺度等緊你嘅電話，唔該")
    assert text == "yue" and share == 1.0
    assert has_han("OK 好") and not has_han("OK")


def test_replies_are_written_in_the_locale_script() -> None:
    from callweaver.text.chinese import to_script

    simplified = "我们这里没有停车场，请问你什么时候来？"
    assert to_script(simplified, "hk") == "我們這裏沒有停車場，請問你什麼時候來？"
    assert to_script("這個軟件", "tw") == "這個軟體"
    assert to_script("我們這裏", "s") == "我们这里"
    assert to_script("唔該晒，我哋喺度等你", "hk") == "唔該晒，我哋喺度等你"  # Cantonese stays
    assert to_script("OK, see you", "hk") == "OK, see you"
    assert to_script(simplified, "") == simplified
