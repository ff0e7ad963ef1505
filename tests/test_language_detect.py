"""Text detection (lingua's real models) and how the tracker weighs it with the call's
language: a caller heard without any STT report, short words kept in the call's language,
Japanese not taken for Chinese, and the language node following a caller through a call."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from callweaver.errors import ModelUnavailable
from callweaver.frames.text import LanguageFrame, TranscriptFrame
from callweaver.pipelines.call import Call
from callweaver.pipelines.graph import Graph, Node
from callweaver.processors.language import LanguageNode, LanguageParams
from callweaver.services.language import LanguageTracker, matrix_words, word_count, words_of
from callweaver.services.language_detect import TextDetector, detector, lingua_languages
from callweaver.testing import ListIO

LANGUAGES = ("en", "es", "pt", "it", "fr", "de", "ja", "zh")


@pytest.fixture(scope="module")
def text_detector() -> TextDetector:
    return detector(LANGUAGES)


def test_scores_are_confidences_over_the_languages_asked_for(text_detector: TextDetector) -> None:
    scores = text_detector.scores("Quisiera cambiar mi cita para el jueves por la tarde")
    assert next(iter(scores)) == "es" and scores["es"] > 0.8
    assert set(scores) <= set(LANGUAGES) and sum(scores.values()) == pytest.approx(1.0)
    assert text_detector.scores("2 3 4 ...") == {}  # no letters: nothing to tell
    assert detector(reversed(LANGUAGES)) is text_detector  # one per process and set


def test_bad_language_sets_are_refused() -> None:
    assert {"en", "es", "zh", "fil", "nb"} <= lingua_languages()
    with pytest.raises(ValueError, match="lingua lacks it"):
        TextDetector(["en", "tlh"])
    with pytest.raises(ValueError, match="at least two"):
        TextDetector(["en-US", "en-GB"])


def test_without_an_stt_report_the_text_decides(text_detector: TextDetector) -> None:
    tracker = LanguageTracker("en-US", allowed=["en-US", "es-US", "pt-BR"], detector=text_detector)
    assert tracker.observe("Hola, necesito una cita con la doctora").reason == "kept"
    decision = tracker.observe("mi hijo tiene fiebre desde ayer")
    assert (decision.locale, decision.switched, decision.heard) == ("es-US", True, "es")


@pytest.mark.parametrize(
    ("locale", "word", "heard"),
    [("pt-BR", "Sim", "pt"), ("it-IT", "Sì", "it"), ("es-US", "Vale", "es"),
     ("fr-FR", "Oui", "fr"), ("de-DE", "Genau", "de")],
)  # fmt: skip
def test_a_short_word_is_heard_in_the_calls_language(
    text_detector: TextDetector, locale: str, word: str, heard: str
) -> None:
    allowed = ["en-US", "es-US", "pt-BR", "it-IT", "fr-FR", "de-DE"]
    tracker = LanguageTracker(locale, allowed=allowed, detector=text_detector)
    assert tracker.heard(word) == heard
    # without the call's language to lean on, lingua alone may say otherwise
    alone = LanguageTracker(locale, allowed=allowed, detector=text_detector, context_weight=1.0)
    assert alone.heard(word) in LANGUAGES


def test_an_english_word_in_a_spanish_call_never_moves_it(text_detector: TextDetector) -> None:
    tracker = LanguageTracker("es-US", allowed=["en-US", "es-US"], detector=text_detector)
    for turn in ("OK", "email", "OK", "WhatsApp", "okay", "Uber"):
        assert tracker.observe(turn).locale == "es-US"


def test_a_whole_sentence_outweighs_the_calls_language(text_detector: TextDetector) -> None:
    tracker = LanguageTracker("es-US", allowed=["en-US", "es-US"], detector=text_detector)
    assert tracker.heard("I would like to book an appointment for Thursday") == "en"
    assert tracker.heard("yes please", "en") == "en"  # the STT agrees with the letters


def test_japanese_is_not_taken_for_chinese(text_detector: TextDetector) -> None:
    tracker = LanguageTracker("en-US", allowed=["en-US", "ja-JP", "zh-CN"], detector=text_detector)
    assert tracker.heard("明日の午後三時に予約をお願いします") == "ja"
    assert tracker.heard("我想预约明天下午三点") == "zh"
    assert word_count("明日の午後三時に予約をお願いします") == 9
    assert word_count("book 咗個 appointment") == 3


def test_a_turn_mixing_scripts_is_heard_by_its_own_script() -> None:
    """English words borrowed into Hindi, Korean or Russian: the turn is in the language of
    its words in the other script (lingua heard the Hindi one as English), and Korean
    one-syllable words are words, not spelled letters."""
    mixed = detector(["en", "hi", "ko", "ru"])
    tracker = LanguageTracker("en-US", allowed=["en-US", "hi-IN", "ko-KR", "ru-RU"], detector=mixed)
    assert tracker.heard("मुझे अपना appointment reschedule करना है, Monday को possible है?") == "hi"
    assert tracker.heard("예약 confirm 메일이 아직 안 왔는데 확인 좀 해 주세요.") == "ko"
    assert tracker.heard("Я сделал payment, но не получил receipt") == "ru"
    assert tracker.heard("I booked it on 예약") == "en"  # one word: the Latin ones still count
    assert words_of("확인 좀 해 주세요") == "확인 좀 해 주세요"
    assert words_of("It's W H I T F I E L D").split() == ["It's"]
    assert matrix_words("Order कब तक deliver होगा?") == "कब तक होगा?"


async def test_the_node_follows_a_caller_the_stt_does_not_label() -> None:
    params = LanguageParams(default="en-US", allowed=["en-US", "pt-BR"])
    graph = Graph([Node.of("language", LanguageNode, params)])
    turns = ["Bom dia, eu queria marcar uma consulta", "para a próxima semana, se possível",
             "Sim", "OK", "de manhã, por favor"]  # fmt: skip
    said = [TranscriptFrame(call_id="c", turn_id=i, text=t) for i, t in enumerate(turns, 1)]
    io = ListIO(said)
    await Call(graph).run(io)
    switches = [(f.locale, f.reason) for f in io.written if isinstance(f, LanguageFrame)]
    assert switches == [("en-US", "start"), ("pt-BR", "detected")]
    stamped = [f.language for f in io.written if isinstance(f, TranscriptFrame)]
    assert stamped == ["en-US", "pt-BR", "pt-BR", "pt-BR", "pt-BR"]


def test_the_node_detects_among_its_allowed_languages() -> None:
    assert LanguageParams(allowed=["en-US", "zh-HK", "es-MX"]).detected_languages() == [
        "en", "es", "zh"]  # fmt: skip
    common = LanguageParams(default="nl-NL").detected_languages()
    assert "nl" in common and "es" in common and len(common) == 14
    assert LanguageParams(detect=False).detected_languages() == []


def test_without_lingua_the_config_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import callweaver.processors.language as node

    def missing() -> frozenset[str]:
        raise ModelUnavailable("text language detection needs pip install 'callweaver[x]'")

    monkeypatch.setattr(node, "lingua_languages", missing)
    with pytest.raises(ValidationError, match=r"pip install .*or set detect: false"):
        LanguageParams(allowed=["en-US", "es-US"])
    assert LanguageParams(allowed=["en-US", "es-US"], detect=False).detected_languages() == []
