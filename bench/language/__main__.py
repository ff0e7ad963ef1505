"""CLI: ``python -m bench.language [--quick]``: how well the language node tells each turn's
language (section 4 of the language adapter's goals); writes its section of
docs/benchmarks.md and bench/results/language.json (``--quick``: nothing written)."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.docs import publish
from bench.language import accuracy

ROOT = Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- language:begin -->", "<!-- language:end -->"
GOALS = {"short_with": 0.98, "chinese": 0.95, "turn_us": 2000.0}


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _by_language(rows: dict[str, dict[str, Any]], hows: Sequence[str]) -> list[str]:
    langs = sorted(rows[hows[0]]["by_language"])
    head = "| | " + " | ".join(langs) + " |"
    out = [head, "|---|" + "---|" * len(langs)]
    for how in hows:
        cells = (f"{100 * rows[how]['by_language'][lang]:.0f}" for lang in langs)
        out.append(f"| {how} | " + " | ".join(cells) + " |")
    return out


def render(r: dict[str, Any]) -> str:
    short, mixed, calls, zh, timing = r["short"], r["mixed"], r["calls"], r["chinese"], r["timing"]
    det = r["detector"]
    yue, cmn = zh["cantonese"], zh["mandarin"]
    lines = [
        BEGIN,
        "## Language detection",
        "",
        f"`python -m bench.language` on {r['date']}, {r['cores']} cores, Python {r['python']} "
        f"({r['seconds']:.0f} s). The language node's tracker, lingua at high accuracy over "
        f"the data set's {det['languages']} text languages (Cantonese by its written markers), "
        "no STT report: the text alone. Data: `bench/language/utterances.py` (real phone "
        "turns written for it, none changed after measuring) and `tests/chinese_eval.py`.",
        "",
        "| set | without context | with context | goal |",
        "|---|---|---|---|",
        f"| short turns, 1-4 words (n={short['with']['n']}) | "
        f"{_pct(short['without']['accuracy'])} | **{_pct(short['with']['accuracy'])}** | "
        f">= {_pct(GOALS['short_with'])} with context |",
        f"| short turns, the call in another language | - | "
        f"{_pct(short['against']['accuracy'])} | (never moves a call: `min_words`) |",
        f"| sentences, 5-25 words (n={r['sentences']['n']}) | "
        f"{_pct(r['sentences']['accuracy'])} | - | |",
        f"| mixed-language turns: the matrix language (n={mixed['with']['n']}) | "
        f"{_pct(mixed['without']['accuracy'])} | {_pct(mixed['with']['accuracy'])} | |",
        f"| words of no language (OK, email, names) keep the call (n={r['ambiguous']['n']}) | "
        f"- | {_pct(r['ambiguous']['accuracy'])} | |",
        f"| colloquial Cantonese told from Mandarin (n={yue['n']}) | "
        f"**{_pct(yue['right'] / yue['n'])}** | {_pct(yue['with_context'])} | "
        f">= {_pct(GOALS['chinese'])} |",
        f"| colloquial Mandarin told from Cantonese (n={cmn['n']}) | "
        f"{_pct(cmn['right'] / cmn['n'])} | {_pct(cmn['with_context'])} | |",
        "",
        f"Without context Chinese is told by its written markers alone: Cantonese "
        f"{yue['right']}/{yue['n']} right, {yue['undecided']} undecided (no marker at all), "
        f"{yue['wrong']} called Mandarin; Mandarin {cmn['right']}/{cmn['n']}, "
        f"{cmn['undecided']} undecided, {cmn['wrong']} called Cantonese. An undecided turn "
        "keeps the call's language: in a call in the other one it is heard wrong "
        f"(Cantonese {_pct(yue['against_context'])}, Mandarin {_pct(cmn['against_context'])} "
        "right there), and being short or one turn alone it does not move the call.",
        "",
        f"**Calls** ({calls['calls']} scripted calls, {calls['turns']} turns, up to 20+ each): "
        f"the call's locale is right after {_pct(calls['turn_accuracy'])} of the turns; "
        f"{calls['calls_right']}/{calls['calls']} calls right at every turn; "
        f"**{calls['flaps']} flaps** (a switch the script does not have). The first "
        "measurement of these calls found 96.3 % of turns, 11/15 calls and 1 flap; four "
        "rules came of what it got wrong, so these calls are no longer held out: a request "
        'with its verb after the name ("Deutsch sprechen", "Hindi mein baat"), or a '
        'preposition only in a short turn (not "a receipt in English"); e-mail addresses, '
        "numbers and spelled letters are no words; a turn shorter than `min_words` neither "
        "counts towards a switch nor resets the count; the call's language weighs less on "
        "a turn the longer it is (full under `min_words`, half at it, a quarter one word "
        "longer, then nothing).",
        "",
        f"**Per turn:** `observe` takes {timing['p50_us']:.0f} / {timing['p95_us']:.0f} / "
        f"{timing['p99_us']:.0f} µs p50 / p95 / p99 over {timing['n']} turns (goal <= 2 ms). "
        f"Loading the {det['languages']} languages' models: {det['load_s']:.1f} s and "
        f"{det['rss_mb']:.0f} MB, once per process, at the first call's start (the server's "
        "warm call).",
        "",
        "Short turns by language (% right):",
        "",
        *_by_language(short, ("without", "with")),
        "",
        _misses(r),
        END,
    ]
    return "\n".join(lines)


def _misses(r: dict[str, Any]) -> str:
    def listed(misses: list[list[str]]) -> str:
        return ", ".join(f"“{t}” ({want} heard as {got})" for t, want, got in misses[:12])

    short, mixed = r["short_misses_with_context"], r["mixed_misses_with_context"]
    lines = [f"Short turns heard wrong with context: {listed(short) or 'none'}."]
    lines.append(f"Mixed turns heard wrong with context: {listed(mixed) or 'none'}.")
    lines.append(
        "Two rules came of the mixed turns' first measurement (80.0 % without context, 90.0 % "
        "with: lingua read every Hindi one as English), so this set no longer holds them out: "
        "Hindi written in Latin letters is told by its function words (`text/hinglish.py`: two "
        "different ones, a quarter of the words), and a turn with two or more words in a "
        "script other than Latin is judged by those. `tests/test_hinglish.py` has 12 Hinglish "
        'turns and 14 look-alikes in other languages (Italian and Vietnamese "hai", German '
        '"mein", Indonesian "ke") written after the rules: all told right.'
    )
    return "\n\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--quick", action="store_true", help="print only; no writes")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    results = accuracy.measure()
    publish(results, render, name="language", started=started, out=args.out,
            begin=BEGIN, end=END, write=not args.quick)  # fmt: skip


if __name__ == "__main__":
    main()
