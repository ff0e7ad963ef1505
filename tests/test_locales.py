"""The locale table: 50+ locales, each heard and spoken by some provider or marked text-only,
every voice name well formed for its provider, Cantonese done as Cantonese, and a config's
additions merged in with clear errors."""

from __future__ import annotations

import pytest

from callweaver.services.locales import LocaleTable, check, default_table


def test_the_table_has_fifty_locales_each_with_an_stt_and_a_tts_path() -> None:
    table = default_table()
    assert len(table) >= 50
    assert check(table) == []
    for loc in table:
        assert loc.text_only or (loc.tts.providers() and (loc.stt.azure or loc.stt.google))
    # every locale can be spoken with no cloud key, except where espeak has no voice
    offline = [loc.code for loc in table if not (loc.tts.espeak or loc.tts.piper)]
    assert set(offline) <= {"fil-PH", "zu-ZA"}, offline


def test_cantonese_is_cantonese() -> None:
    table = default_table()
    for code in ("zh-HK", "zh-MO"):
        hk = table.get(code)
        assert hk is not None and hk.script == "hk"
        assert hk.stt.azure == "zh-HK" and hk.stt.google == "yue-Hant-HK"
        assert {"zh-HK-HiuMaanNeural", "zh-HK-WanLungNeural", "zh-HK-HiuGaaiNeural"} <= set(
            hk.tts.azure
        )
        assert hk.tts.google == ("yue-HK-Standard-A",)
        assert not hk.tts.elevenlabs  # no Cantonese voice: failover skips it
        assert "粵語" in hk.prompt and "唔該" in hk.prompt
    guangzhou = table.get("yue-CN")
    assert guangzhou is not None and guangzhou.script == "s"
    assert all(v.startswith("yue-CN-") for v in guangzhou.tts.azure)
    mandarin = table.get("zh-CN")
    assert mandarin is not None and mandarin.tts.elevenlabs and mandarin.script == "s"


def test_lookup_ignores_case() -> None:
    table = default_table()
    assert "zh-hk" in table and table.get("EN-us") is table.get("en-US")
    assert table.get("xx-XX") is None


def test_a_config_adds_and_overrides_locales() -> None:
    table = default_table().extend({
        "es-ES": {"tts": {"azure": ["es-ES-AlvaroNeural"]}},  # another voice, the rest kept
        "eu-ES": {"name": "Basque (Spain)", "stt": {"azure": "eu-ES"},
                  "tts": {"azure": ["eu-ES-AinhoaNeural"], "espeak": "eu"}},
    })  # fmt: skip
    spain = table.get("es-ES")
    assert spain is not None and spain.tts.azure == ("es-ES-AlvaroNeural",)
    assert spain.stt.google == "es-ES" and spain.formality == "formal"
    assert table.get("eu-ES") is not None and check(table) == []
    assert len(table) == len(default_table()) + 1


def test_bad_locales_get_clear_errors() -> None:
    with pytest.raises(ValueError, match="locale 'xx-YY': formality"):
        default_table().extend({"xx-YY": {"name": "X", "formality": "very"}})
    broken = LocaleTable({}).extend({
        "xx-YY": {"name": "No paths"},
        "de-DE": {"name": "German", "stt": {"azure": "de-DE"},
                  "tts": {"azure": ["Katja"], "google": ["de-DE-Katja"]}},
        "fr-FR": {"name": "French", "stt": {"azure": "fr-FR"},
                  "tts": {"azure": ["de-DE-KatjaNeural"]}},
        "notatag": {"name": "?", "text_only": True},
    })  # fmt: skip
    problems = "\n".join(check(broken))
    assert "'xx-YY': no STT provider hears it" in problems
    assert "'xx-YY': no TTS provider speaks it" in problems
    assert "'Katja' is not an Azure voice name" in problems
    assert "'de-DE-Katja' is not a Google voice name" in problems
    assert "azure voice 'de-DE-KatjaNeural' speaks another language" in problems
    assert "'notatag': not a BCP-47 tag" in problems
