"""How well the language node's tracker tells each turn's language, with and without the
call's context, and what it costs per turn.

Every figure runs the real :class:`~callweaver.services.language.LanguageTracker` with lingua's
models (high accuracy) over the data set's languages, and no STT report: what the text alone
says, the way a fixed-language STT leaves it.

- ``short``: 1-4 word turns. *Without context* lingua decides alone (the call's language
  counts no more than any other); *with context* the call is already in the turn's language
  (the caller has been speaking it), which is how a short answer arrives mid-call; *against
  context* the call is in another language (a caller who switches with a single word), the
  cost of leaning on the context, which hysteresis makes harmless: such a turn never moves a
  call (``min_words``).
- ``sentences``: 5-25 word turns, without context.
- ``mixed``: code-switched turns; right when the matrix language is heard.
- ``ambiguous``: words of no language ("OK", "email", a name) inside a call: right when the
  call stays where it is.
- ``calls``: scripted calls turn by turn, the call's locale after each turn against the label;
  a flap is a switch the script does not have.
- ``chinese``: Cantonese told from Mandarin on tests/chinese_eval.py's colloquial turns.
- ``timing``: :meth:`LanguageTracker.observe` per turn over every text, µs.
"""

from __future__ import annotations

import resource
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from bench.language.utterances import AMBIGUOUS_IN_CALL, CALLS, MIXED, SENTENCES, SHORT
from callweaver.services.language import LanguageTracker
from callweaver.services.language_detect import TextDetector, detector
from callweaver.services.locales import default_table
from callweaver.text.chinese import cantonese_or_mandarin
from callweaver.text.languages import language_key

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from chinese_eval import CANTONESE, MANDARIN  # noqa: E402

LANGUAGES = sorted({lang for _, lang in SHORT} | {lang for _, lang in SENTENCES})


def locale_of(language: str) -> str:
    """The table's first locale of a matching language (``yue`` -> zh-HK)."""
    return next(loc.code for loc in default_table() if language_key(loc.code) == language)


ALLOWED = [locale_of(lang) for lang in LANGUAGES]


def tracker(
    language: str, det: TextDetector, *, context: bool = True, allowed: Sequence[str] = ()
) -> LanguageTracker:
    kwargs: dict[str, Any] = {} if context else {"context_weight": 1.0}
    return LanguageTracker(
        locale_of(language), allowed=list(allowed) or ALLOWED, detector=det, **kwargs
    )


def _share(right: int, total: int) -> float:
    return right / total if total else 0.0


def _per_language(rows: Iterable[tuple[str, bool]]) -> dict[str, Any]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for lang, right in rows:
        counts[lang][0] += right
        counts[lang][1] += 1
    right = sum(c[0] for c in counts.values())
    total = sum(c[1] for c in counts.values())
    return {
        "accuracy": _share(right, total),
        "n": total,
        "by_language": {k: _share(*v) for k, v in sorted(counts.items())},
    }


def _heard(
    data: Sequence[tuple[str, str]], det: TextDetector, how: str
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    rows, misses = [], []
    for text, lang in data:
        if how == "with":
            t = tracker(lang, det)
        elif how == "against":
            t = tracker("es" if lang == "en" else "en", det)
        else:
            t = tracker("en", det, context=False)
        heard = t.heard(text)
        rows.append((lang, heard == lang))
        if heard != lang:
            misses.append((text, lang, heard))
    return _per_language(rows), misses


def _ambiguous(det: TextDetector) -> dict[str, Any]:
    rows = []
    for text, locale_or_lang in AMBIGUOUS_IN_CALL:
        lang = language_key(locale_or_lang)
        t = tracker(lang, det)
        before = t.locale
        rows.append((lang, t.observe(text).locale == before))
    return _per_language(rows)


def _calls(det: TextDetector) -> dict[str, Any]:
    turns = right = flaps = whole = 0
    wrong: list[dict[str, Any]] = []
    for call in CALLS:
        t = LanguageTracker(call.default, allowed=list(call.allowed), detector=det)
        ok = True
        for i, (text, expected) in enumerate(call.turns, 1):
            before = t.locale
            got = t.observe(text).locale
            turns += 1
            if got == expected:
                right += 1
            else:
                ok = False
                wrong.append({"call": call.name, "turn": i, "text": text, "expected": expected,
                              "got": got})  # fmt: skip
            if got != before and got != expected:
                flaps += 1
        whole += ok
    return {"turns": turns, "turn_accuracy": _share(right, turns), "calls": len(CALLS),
            "calls_right": whole, "flaps": flaps, "wrong": wrong}  # fmt: skip


def _chinese(det: TextDetector) -> dict[str, Any]:
    """Per side: told right by the markers alone (undecided when there is none), and heard
    right in a call already in that language, and in a call in the other."""
    out: dict[str, Any] = {}
    for name, texts, want, other in (("cantonese", CANTONESE, "yue", "zh"),
                                     ("mandarin", MANDARIN, "zh", "yue")):  # fmt: skip
        verdicts = Counter(cantonese_or_mandarin(t)[0] or "undecided" for t in texts)
        out[name] = {
            "n": len(texts), "right": verdicts[want], "undecided": verdicts["undecided"],
            "wrong": len(texts) - verdicts[want] - verdicts["undecided"],
            "with_context": _share(sum(tracker(want, det).heard(t) == want for t in texts),
                                   len(texts)),
            "against_context": _share(sum(tracker(other, det).heard(t) == want for t in texts),
                                      len(texts)),
        }  # fmt: skip
    return out


def _timing(det: TextDetector, rounds: int = 5) -> dict[str, float]:
    texts = [t for t, _ in (*SHORT, *SENTENCES, *MIXED)]
    t = tracker("en", det)
    took = []
    for _ in range(rounds):
        for text in texts:
            start = time.perf_counter_ns()
            t.observe(text)
            took.append((time.perf_counter_ns() - start) / 1000)
    took.sort()
    n = len(took)
    return {"n": n, "p50_us": took[n // 2], "p95_us": took[int(n * 0.95)],
            "p99_us": took[int(n * 0.99)], "mean_us": statistics.fmean(took)}  # fmt: skip


def measure() -> dict[str, Any]:
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    det = detector(LANGUAGES)
    load_s = time.perf_counter() - start
    rss_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    short = {how: _heard(SHORT, det, how) for how in ("without", "with", "against")}
    sentences = _heard(SENTENCES, det, "without")
    mixed = {how: _heard(MIXED, det, how) for how in ("without", "with")}
    return {
        "languages": LANGUAGES,
        "detector": {"languages": len(det.languages), "load_s": load_s, "rss_mb": rss_mb},
        "short": {how: r for how, (r, _) in short.items()},
        "short_misses_with_context": short["with"][1],
        "short_misses_without_context": short["without"][1][:40],
        "sentences": sentences[0],
        "sentence_misses": sentences[1],
        "mixed": {how: r for how, (r, _) in mixed.items()},
        "mixed_misses_with_context": mixed["with"][1],
        "ambiguous": _ambiguous(det),
        "calls": _calls(det),
        "chinese": _chinese(det),
        "timing": _timing(det),
    }
