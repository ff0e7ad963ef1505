# ruff: noqa: RUF002
# (full-width Chinese punctuation is what this data is about)
"""The language data set, and its index. Spoken-language detection on phone-call transcripts:
what callers say to a business (a clinic, a restaurant, a hotel, a bank, a delivery service,
an airline's desk) as a speech-to-text engine writes it, with the language each turn is in.

Seventeen languages, keyed by their BCP-47 primary subtag: ``en es fr de pt it nl zh yue ja
ko vi hi ar ru pl tr``. ``zh`` is Mandarin in Mainland Simplified characters; ``yue`` is
colloquial written Cantonese in Hong Kong Traditional characters (唔該, 係咪, 嘅, 咗, 喺, 冇, 佢,
啲, 嚟, 乜嘢); ``pt`` is mostly Brazilian (a few European turns); ``es`` is Mexican, US and
Peninsular; ``hi`` is Devanagari (Hinglish in Latin letters is only in :data:`MIXED`); ``ar``
is Modern Standard with the Gulf's everyday phone words. Normal orthography with accents and
diacritics (no Arabic vowel marks, as an STT writes it), native script, light punctuation.
Each language has its own businesses and questions: the lists are not translations of one
list. Telling Cantonese from Mandarin on colloquial text has its own set in
``tests/chinese_eval.py``; no text here repeats one of it.

The sets (each in its own module: :mod:`~bench.language.short_turns`,
:mod:`~bench.language.sentences`, :mod:`~bench.language.calls`; this one gathers them):

- :data:`SHORT`: 1 to 4 words (Chinese and Japanese: at most 8 characters), the turns a
  caller says in the middle of a call: yes, no, thanks, a time, a day, "the second one", a
  name, "how much?". Labelled with the language the caller is speaking. Words shared across
  languages are in on purpose ("No" in English, Spanish and Italian; "Perfect", "Perfecto",
  "Perfeito", "Perfetto", "Parfait"; "Como?"; "Prima"; "Taxi", "Hotel"; "喂，你好" in
  Mandarin and in Cantonese; Japanese written in kanji alone, "金曜日"): the same text may
  stand under two languages, because a detector alone cannot tell them and the call's
  context can. That is what the set measures.
- :data:`SENTENCES`: 5 to 25 words: booking, asking the hours, an address, a price, a
  complaint, spelling a name, giving a date of birth.
- :data:`AMBIGUOUS_IN_CALL`: ``(text, call_language)``: words of no language of their own
  said inside a call ("OK", "email", "WhatsApp", a brand, a person's name, digits, "hmm",
  and English fillers such as "Yes", "Sorry" or "Thank you" from a caller speaking another
  language). The call's language should be kept. Loanwords like these are never in
  :data:`SHORT`.
- :data:`MIXED`: ``(text, matrix_language)``: code-switched turns of bilingual callers
  (Spanglish, Hinglish in Devanagari and in Latin letters, Hong Kong Cantonese with English
  nouns and verbs, Franglais, German and Portuguese with English words...). The label is
  the matrix language, the one of the grammar and the function words: the language the
  agent should keep answering in. "我想 book 個 appointment" is ``yue``; "Can I get two tacos
  al pastor" is ``en``.
- :data:`CALLS`: scripted calls, turn by turn, with the locale the call should be in after
  each turn (see :class:`Call`).

How the labels of :data:`CALLS` were decided: by the rules of the system under test
(:class:`callweaver.services.language.LanguageTracker`), applied to each turn's language as
a person hears it, never to a detector's output:

1. an explicit request ("can we speak Spanish?", "¿podemos hablar en inglés?",
   "講廣東話得唔得", "说普通话", "Können wir Deutsch sprechen?", "Hindi mein baat kar sakte
   hain?") switches the call at once, to a locale the deployment allows;
2. otherwise a call moves to another language only after 2 turns in a row in that language,
   each of at least 3 words (Chinese: at least 6 characters); it moves on the second;
3. a shorter turn never moves a call; a turn in the call's own language resets the count;
4. only locales in ``allowed`` can be switched to: a language the deployment does not speak
   keeps the call where it is (the locale of a language is the first allowed one of it).

Spelled letters ("W H I T F I E L D"), e-mail addresses, phone numbers, brands and people's
names carry no language: a turn of them never moves a call nor counts towards a move. The
scripts keep the two turns that move a call next to each other (no short "OK" between them),
so that no label depends on how a short turn between them would count. A comment beside a
turn says why when its label is not plain.

Provenance: written for this data set, in one pass, before any detector was run on it; no
text or label was changed after measuring.
"""

from __future__ import annotations

from typing import Final

from bench.language.calls import CALLS, Call
from bench.language.sentences import AMBIGUOUS_IN_CALL, MIXED, SENTENCES
from bench.language.short_turns import SHORT

__all__ = ["AMBIGUOUS_IN_CALL", "CALLS", "LANGUAGES", "MIXED", "SENTENCES", "SHORT", "Call"]

#: The languages of :data:`SHORT` and :data:`SENTENCES` (BCP-47 primary subtags).
LANGUAGES: Final = (
    "en", "es", "fr", "de", "pt", "it", "nl", "zh", "yue", "ja", "ko", "vi", "hi", "ar", "ru",
    "pl", "tr",
)  # fmt: skip
