"""Google Cloud Text-to-Speech's wire facts, pure: the language codes it has voices for (and
which one a BCP-47 tag maps to), and what its gRPC status codes mean for a retry. No I/O, no
SDK here: :mod:`callweaver.services.google_tts` speaks to Google."""

from __future__ import annotations

__all__ = ["LANGUAGES", "LOST_STATUS", "RETRYABLE", "google_locale"]

# grpc-python (grpc/grpc#36066) replaces the server's status with INTERNAL and this text when
# the server ends a stream while the client is still sending it: what Google does at once with a
# bad key, a voice it does not have or an exhausted quota. Seen before any audio, the status is
# lost; the same request as a unary call gets it (or the audio).
LOST_STATUS = "Internal error from Core"
RETRYABLE = frozenset({
    "UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL", "UNKNOWN", "DEADLINE_EXCEEDED", "ABORTED",
    "DATA_LOSS", "CANCELLED",  # CANCELLED by the server, or by a proxy on the way
})  # fmt: skip

# -- languages ------------------------------------------------------------------------------

# Locales Google TTS has voices for; the first of each language is its default locale.
_LOCALES = (
    "af-ZA", "ar-XA", "bg-BG", "bn-IN", "ca-ES", "cmn-CN", "cmn-TW", "cs-CZ", "da-DK", "de-DE",
    "el-GR", "en-US", "en-GB", "en-AU", "en-IN", "es-ES", "es-US", "et-EE", "eu-ES", "fi-FI",
    "fil-PH", "fr-FR", "fr-CA", "gl-ES", "gu-IN", "he-IL", "hi-IN", "hr-HR", "hu-HU", "id-ID",
    "is-IS", "it-IT", "ja-JP", "kn-IN", "ko-KR", "lt-LT", "lv-LV", "ml-IN", "mr-IN", "ms-MY",
    "nb-NO", "nl-NL", "nl-BE", "pa-IN", "pl-PL", "pt-BR", "pt-PT", "ro-RO", "ru-RU", "sk-SK",
    "sr-RS", "sv-SE", "ta-IN", "te-IN", "th-TH", "tr-TR", "uk-UA", "ur-IN", "vi-VN", "yue-HK",
)  # fmt: skip
# Other names for them (lower case): Chinese tags to Google's Mandarin and Cantonese codes
_ALIASES = {
    "zh": "cmn-CN", "zh-cn": "cmn-CN", "zh-sg": "cmn-CN", "zh-hans": "cmn-CN",
    "zh-tw": "cmn-TW", "zh-hant": "cmn-TW",
    "yue": "yue-HK", "zh-hk": "yue-HK", "zh-hant-hk": "yue-HK", "zh-mo": "yue-HK",
    "zh-yue": "yue-HK", "no": "nb-NO", "tl": "fil-PH", "iw": "he-IL",
}  # fmt: skip
_BY_TAG = {
    **{locale.split("-")[0]: locale for locale in reversed(_LOCALES)},  # the first one wins
    **{locale.lower(): locale for locale in _LOCALES},
    **_ALIASES,
}

#: What Google serves: every locale above, each primary subtag, and the Chinese tags.
LANGUAGES = frozenset(
    {*_LOCALES, *(locale.split("-")[0] for locale in _LOCALES), "zh", "zh-CN", "zh-TW", "zh-HK"}
)


def google_locale(language: str) -> str | None:
    """The Google language code for a BCP-47 tag (``zh-HK`` -> ``yue-HK``, ``en-NZ`` ->
    ``en-US``, ``fr`` -> ``fr-FR``), or None when Google has no voice for its language."""
    parts = language.replace("_", "-").strip().lower().split("-")
    while parts:
        found = _BY_TAG.get("-".join(parts))
        if found is not None:
            return found
        parts.pop()
    return None
