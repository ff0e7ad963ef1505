"""The call's language: one ambiguous word never flips it, an explicit request switches at
once, a run of turns in another language moves it, Cantonese and Mandarin are told apart, the
number dialled picks Hong Kong or Macau, and a 20-turn call does not flap."""

from __future__ import annotations

import pytest

from callweaver.services.language import LanguageTracker, requested_language, word_count


def test_one_ambiguous_word_never_flips_the_call() -> None:
    call = LanguageTracker("en-US")
    assert call.observe("OK", stt_language="pt").locale == "en-US"
    assert call.observe("Sim", stt_language="pt").reason == "short"
    assert call.locale == "en-US"


def test_an_explicit_request_switches_at_once() -> None:
    call = LanguageTracker("en-US", allowed=["en-US", "es-MX", "zh-HK"])
    decision = call.observe("Hi, can we speak Spanish please?", stt_language="en")
    assert (decision.locale, decision.switched, decision.reason) == ("es-MX", True, "explicit")
    assert call.observe("¿Podemos hablar en inglés?").locale == "en-US"
    assert call.observe("唔該，可唔可以講廣東話").locale == "zh-HK"
    # a language the deployment does not offer is not switched to
    assert call.observe("can we speak German").locale == "zh-HK"


@pytest.mark.parametrize(
    ("text", "language"),
    [("can we speak spanish", "es"), ("hablamos en inglés?", "en"), ("我想讲普通话", "zh"),
     ("in English please", "en"), ("what is your address", None), ("en el centro", None),
     ("Können wir vielleicht Deutsch sprechen?", "de"), ("Hindi mein baat kar sakte hain?", "hi"),
     ("日本語で大丈夫ですか？", "ja"), ("영어로 해도 될까요?", "en"),
     # a language named, not asked for
     ("Ah, et il aura besoin d'un reçu en anglais, c'est possible ?", None),
     ("I need the receipt in English for my company", None)],
)  # fmt: skip
def test_requests_are_read_in_several_languages(text: str, language: str | None) -> None:
    assert requested_language(text) == language


def test_two_turns_in_another_language_move_the_call() -> None:
    call = LanguageTracker("en-US", allowed=["en-US", "es-ES"])
    first = call.observe("quisiera saber a qué hora abren", stt_language="es")
    assert (first.locale, first.heard) == ("en-US", "es")
    back = call.observe("what time do you open", stt_language="en")
    assert back.reason == "kept"  # the run is broken
    call.observe("quisiera saber a qué hora abren", stt_language="es")
    moved = call.observe("y también dónde están ubicados", stt_language="es")
    assert (moved.locale, moved.switched, moved.reason) == ("es-ES", True, "detected")


def test_cantonese_and_mandarin_are_told_apart_and_follow_the_number_dialled() -> None:
    call = LanguageTracker("en-US", parameters={"To": "+852 2345 6789"})
    assert call.locale == "zh-HK"  # a Hong Kong number: Cantonese from the start
    for text in ("你们几点开门？我想问一下今天开不开", "有没有地方停车，我想知道"):
        decision = call.observe(text)
    assert decision.locale == "zh-CN" and decision.heard == "zh"
    macau = LanguageTracker("en-US", parameters={"To": "+85328000000"})
    assert macau.locale == "zh-MO"
    assert macau.observe("唔該，你哋幾點開門呀？").locale == "zh-MO"


def test_indic_words_are_counted_whole() -> None:
    assert word_count("बिल्कुल") == 1 and word_count("ठीक है") == 2
    assert word_count("जी, मुझे अपने बेटे के लिए appointment चाहिए।") == 8


def test_a_language_parameter_from_an_ivr_picks_the_first_locale() -> None:
    allowed = ["en-US", "es-US", "zh-HK"]
    assert (
        LanguageTracker("en-US", allowed=allowed, parameters={"language": "es-US"}).locale
        == "es-US"
    )
    # a locale the deployment does not speak, or no locale at all, leaves the default
    assert (
        LanguageTracker("en-US", allowed=allowed, parameters={"language": "fr-FR"}).locale
        == "en-US"
    )
    assert LanguageTracker("en-US", parameters={"language": "2"}).locale == "en-US"


def test_a_twenty_turn_call_with_short_answers_does_not_flap() -> None:
    call = LanguageTracker("es-ES", allowed=["es-ES", "en-US", "pt-BR"])
    turns = [
        ("hola buenos días", "es"), ("OK", "en"), ("quiero pedir una cita", "es"), ("sí", "es"),
        ("Sim", "pt"), ("para el martes por la mañana", "es"), ("OK", "en"), ("vale", "es"),
        ("Thank you", "en"), ("mi nombre es Ana Ruiz", "es"), ("no", "es"), ("yes", "en"),
        ("perfecto muchas gracias", "es"), ("bye", "en"), ("hasta luego", "es"), ("OK", "en"),
        ("una pregunta más", "es"), ("sorry", "en"), ("dónde aparco el coche", "es"),
        ("gracias", "es"),
    ]  # fmt: skip
    locales = [call.observe(text, stt_language=lang).locale for text, lang in turns]
    assert set(locales) == {"es-ES"}


def test_an_unknown_locale_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown locale 'xx-XX'"):
        LanguageTracker("xx-XX")
