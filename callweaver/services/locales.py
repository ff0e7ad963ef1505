"""The locale table: for each BCP-47 locale, how each provider hears and speaks it.

Data, not code (``locales.yaml`` beside this module), read once per process. Each locale has:

- ``stt``: the language code each STT provider takes (Azure ``zh-HK``, Google ``yue-Hant-HK``,
  whisper's ``zh``);
- ``tts``: voices per TTS provider: Azure and Google voice names, ``elevenlabs: true`` where
  its multilingual models speak the language (none speaks Cantonese), and the offline voices
  (``espeak``, ``piper``, ``flite``);
- ``formality`` (``formal``: the polite form of address), ``clock`` (``12h``/``24h``) and
  ``dates`` (``dmy``, ``mdy``, ``ymd``): how a reply should say times and dates;
- ``prompt``: a line for the LLM's system prompt (the language, the form of address; for
  Hong Kong, Cantonese particles and Traditional characters); ``script``: the Chinese script
  replies are written in (``hk``, ``tw``, ``s``);
- ``text_only``: no voice at all (a text channel can still use it).

:meth:`LocaleTable.extend` adds or overrides locales from a config. :func:`check` says what
is wrong with a table: every locale needs one STT and one TTS path unless it is text-only,
and every voice name must be well formed for its provider.

:class:`VoiceChoice` is how a TTS provider picks its voice per request: the config's
``voices`` for the language, else its own ``voice`` when the request is in that voice's
language, else the table's voice for the locale (``other_languages: table``), else none: the
provider does not speak the language and a failover moves on without counting a failure.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from callweaver.text.languages import language_key

__all__ = [
    "Locale",
    "LocaleTable",
    "LocalizedText",
    "TableVoicesParams",
    "VoiceChoice",
    "VoicesParams",
    "check",
    "check_voices",
    "default_table",
]

_FILE: Final = Path(__file__).with_name("locales.yaml")
_AZURE_VOICE: Final = re.compile(r"^[a-z]{2,3}-[A-Z]{2}-[A-Za-z]+(Multilingual)?Neural$")
_GOOGLE_VOICE: Final = re.compile(
    r"^[a-z]{2,3}-[A-Z]{2}-(Standard|Wavenet|Neural2|Studio|Polyglot|News|Chirp3-HD)-[A-Z]$"
)
_TAG: Final = re.compile(r"^[a-z]{2,3}(-[A-Z][a-z]{3})?(-[A-Z]{2}|-\d{3})?$")
STT_PROVIDERS: Final = ("azure", "google", "whisper")
TTS_PROVIDERS: Final = ("azure", "google", "elevenlabs", "espeak", "piper", "flite")


class STTCodes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    azure: str | None = None
    google: str | None = None
    whisper: str | None = None


class TTSVoices(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    azure: tuple[str, ...] = ()
    google: tuple[str, ...] = ()
    elevenlabs: bool = False
    espeak: str | None = None
    piper: str | None = None
    flite: str | None = None

    def providers(self) -> list[str]:
        """The TTS providers that speak this locale, in the table's order."""
        return [p for p in TTS_PROVIDERS if getattr(self, p)]


class Locale(BaseModel):
    """One row of the table (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    name: str
    stt: STTCodes = Field(default_factory=STTCodes)
    tts: TTSVoices = Field(default_factory=TTSVoices)
    formality: Literal["formal", "neutral", "informal"] = "neutral"
    clock: Literal["12h", "24h"] = "24h"
    dates: Literal["dmy", "mdy", "ymd"] = "dmy"
    prompt: str = ""
    script: Literal["hk", "tw", "s", ""] = ""
    text_only: bool = False

    @property
    def language(self) -> str:
        """The primary subtag: ``es`` of ``es-MX``."""
        return self.code.split("-")[0]

    def stt_code(self, provider: str) -> str | None:
        """The code ``provider`` takes for this locale, or None when it does not hear it."""
        value = getattr(self.stt, provider, None)
        return value if isinstance(value, str) else None


class LocaleTable:
    """Locales by code, the shipped table with a config's additions."""

    def __init__(self, locales: Mapping[str, Locale]) -> None:
        self._locales = dict(locales)
        self._lower = {code.lower(): code for code in self._locales}

    def __len__(self) -> int:
        return len(self._locales)

    def __iter__(self) -> Iterator[Locale]:
        return iter(self._locales.values())

    def __contains__(self, code: object) -> bool:
        return isinstance(code, str) and code.lower() in self._lower

    def get(self, code: str) -> Locale | None:
        """The locale of ``code`` (any case), or None."""
        found = self._lower.get(code.lower())
        return self._locales[found] if found is not None else None

    def extend(self, raw: Mapping[str, Any]) -> LocaleTable:
        """A table with ``raw``'s locales added; a known code is replaced field by field (a
        config may give one locale another voice). Raises ValueError naming the locale."""
        merged = dict(self._locales)
        for code, fields in raw.items():
            base = self.get(code)
            data: dict[str, Any] = base.model_dump() if base is not None else {"code": code}
            for key, value in dict(fields).items():
                if key in ("stt", "tts") and isinstance(value, Mapping):
                    data[key] = {**data.get(key, {}), **value}
                else:
                    data[key] = value
            data["code"] = base.code if base is not None else code
            merged[data["code"]] = _locale(data["code"], data)
        return LocaleTable(merged)


def _locale(code: str, fields: Mapping[str, Any]) -> Locale:
    try:
        return Locale.model_validate({**fields, "code": code})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'locale'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"locale {code!r}: {problems}") from None


@functools.cache
def default_table() -> LocaleTable:
    """The shipped table (``locales.yaml``), read once."""
    raw = yaml.safe_load(_FILE.read_text(encoding="utf-8"))
    return LocaleTable({code: _locale(code, fields) for code, fields in raw.items()})


def check(table: LocaleTable) -> list[str]:
    """Every problem of ``table``: a malformed code, a locale with no STT or no TTS path that
    is not marked ``text_only``, a malformed voice name."""
    problems = []
    for loc in table:
        where = f"locale {loc.code!r}"
        if not _TAG.match(loc.code):
            problems.append(f"{where}: not a BCP-47 tag like xx-YY")
        if not loc.text_only:
            if not any(loc.stt_code(p) for p in STT_PROVIDERS):
                problems.append(f"{where}: no STT provider hears it (or mark it text_only)")
            if not loc.tts.providers():
                problems.append(f"{where}: no TTS provider speaks it (or mark it text_only)")
        for voice in loc.tts.azure:
            if not _AZURE_VOICE.match(voice):
                problems.append(f"{where}: {voice!r} is not an Azure voice name (xx-YY-NameNeural)")
        for voice in loc.tts.google:
            if not _GOOGLE_VOICE.match(voice):
                problems.append(f"{where}: {voice!r} is not a Google voice name (xx-YY-Type-X)")
        for provider in ("azure", "google"):
            for voice in getattr(loc.tts, provider):
                lang = voice.split("-")[0]
                if lang not in _SAME_LANGUAGE.get(loc.language, {loc.language}):
                    problems.append(f"{where}: {provider} voice {voice!r} speaks another language")
    return problems


# voice language codes that speak a locale's primary language
_SAME_LANGUAGE: Final[Mapping[str, frozenset[str]]] = {
    "zh": frozenset({"zh", "cmn", "yue"}),
    "yue": frozenset({"yue", "zh"}),
    "he": frozenset({"he", "iw"}),
    "nb": frozenset({"nb", "no"}),
}


_LANGUAGE_OR_TAG: Final = re.compile(r"^[a-z]{2,3}(-[A-Za-z]{4})?(-[A-Za-z]{2}|-\d{3})?$", re.I)


def check_voices(
    voices: Mapping[str, str], form: re.Pattern[str] | None = None, what: str = "a voice"
) -> dict[str, str]:
    """A provider's ``voices`` parameter, checked: each key a language or locale (``es``,
    ``es-MX``), each voice matching ``form`` (the provider's voice names, described as
    ``what``). Raises ValueError naming the entry."""
    for code, voice in voices.items():
        if not _LANGUAGE_OR_TAG.match(code):
            raise ValueError(f"voices: {code!r} is not a language or locale (es, es-MX)")
        if not voice.strip():
            raise ValueError(f"voices: {code!r} has no voice")
        if form is not None and not form.fullmatch(voice):
            raise ValueError(f"voices: {code}: {voice!r} is not {what}")
    return dict(voices)


class VoicesParams(BaseModel):
    """The ``voices`` param a TTS provider's params share: a voice per language or locale,
    checked by :func:`check_voices` against the provider's form of voice name (the subclass's
    ``voice_form``, described as ``voice_what``)."""

    voice_form: ClassVar[re.Pattern[str] | None] = None
    voice_what: ClassVar[str] = "a voice"

    voices: dict[str, str] = Field(
        default_factory=dict,
        description="a voice per language or locale, for replies in it (a native speaker's): "
        "{es: <voice>, zh-HK: <voice>}",
    )

    @field_validator("voices")
    @classmethod
    def _voices_form(cls, voices: dict[str, str]) -> dict[str, str]:
        return check_voices(voices, cls.voice_form, cls.voice_what)


class TableVoicesParams(VoicesParams):
    """:class:`VoicesParams` for a provider with voices in the locale table (Azure, Google):
    what the languages with no ``voices`` entry get."""

    other_languages: Literal["table", "none"] = Field(
        "table",
        description="languages with no voice listed: table: the locale table's voice for the "
        "provider (Google: else Google's default voice of the language); none: left to the "
        "next provider",
    )


def _localized(value: str | dict[str, str]) -> str | dict[str, str]:
    if isinstance(value, dict):
        if not value:
            raise ValueError("give one text, or one per language: {en: ..., es: ...}")
        for code, text in value.items():
            if not _LANGUAGE_OR_TAG.match(code):
                raise ValueError(f"{code!r} is not a language or locale (es, es-MX)")
            if not text.strip():
                raise ValueError(f"{code}: empty text")
    return value


LocalizedText = Annotated[str | dict[str, str], AfterValidator(_localized)]
"""A text said to callers: one for every language, or one per language or locale (``{en:
..., es: ..., zh-HK: ...}``), picked for the call's language by
:func:`callweaver.text.languages.pick` (its locale, else its language, else the first)."""


class VoiceChoice:
    """One TTS provider's voice per request language (see the module docstring).

    ``voices`` maps locales (``es-MX``) or languages (``es``) to voices; ``default`` is the
    provider's configured voice, spoken for requests in ``default_locale``'s language (and
    for requests that name no language); ``use_table`` fills every other locale from the
    table's voices for ``provider`` (the first of them). Languages match as in
    :func:`~callweaver.text.languages.language_key`: ``en-GB`` takes an ``en-US`` voice,
    ``zh-HK`` never takes a Mandarin one."""

    def __init__(
        self,
        provider: str,
        default: str,
        default_locale: str,
        *,
        voices: Mapping[str, str] | None = None,
        use_table: bool = True,
        table: LocaleTable | None = None,
    ) -> None:
        self.provider, self.default, self.default_locale = provider, default, default_locale
        self._own = language_key(default_locale)
        self._voices = {code.lower(): voice for code, voice in (voices or {}).items()}
        self._table = (table or default_table()) if use_table else None

    def voice(self, language: str) -> str | None:
        """The voice to speak ``language`` (a locale or a language) with, or None."""
        if not language:
            return self.default
        wanted, key = language.lower(), language_key(language)
        found = self._voices.get(wanted)
        if found is None:
            found = next((v for c, v in self._voices.items() if language_key(c) == key), None)
        if found is not None:
            return found
        if key == self._own:
            return self.default
        if self._table is None:
            return None
        exact = self._table.get(language)
        rows = [exact] if exact is not None else []
        rows += [loc for loc in self._table if language_key(loc.code) == key]
        return next((v for loc in rows if (v := self._table_voice(loc)) is not None), None)

    def _table_voice(self, loc: Locale) -> str | None:
        value = getattr(loc.tts, self.provider, None)
        if isinstance(value, tuple):
            return str(value[0]) if value else None
        return value if isinstance(value, str) else None

    def languages(self) -> frozenset[str]:
        """Every locale and language this provider has a voice for (a failover's
        ``languages``): full tags and their primary subtags, Cantonese as ``yue``."""
        codes = {self.default_locale, *self._voices}
        if self._table is not None:
            codes.update(loc.code for loc in self._table if self._table_voice(loc) is not None)
        tags = set(codes)
        for code in codes:
            key = language_key(code)
            tags.add(key if key == "yue" else code.split("-")[0].lower())
        return frozenset(tags)
