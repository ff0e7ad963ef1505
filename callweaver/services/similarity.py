"""The similarity indexes behind :class:`~callweaver.services.matcher.Matcher`: one per
matching language, every entry scored against a query at once.

- :class:`DenseIndex`: unit sentence vectors in one numpy matrix (MiniLM); a query is one
  matrix-vector product.
- :class:`NgramIndex`: TF-IDF cosine over :func:`ngrams` (Chinese characters and character
  pairs; elsewhere words and character trigrams), through postings (gram -> rows), so a query
  touches only the entries that share a gram with it. No model, well under a millisecond at
  10 000 entries.

Rows are reused after a removal; a removed row scores -1 (dense) or 0 (n-grams).
"""

from __future__ import annotations

import itertools
import math
import re
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from callweaver.resources.embeddings import SentenceEmbedder

__all__ = ["KEPT_VECTORS", "DenseIndex", "NgramIndex", "embed_cached", "ngrams", "prime_vectors"]

F32 = npt.NDArray[np.float32]

#: Sentence vectors kept per process and embedder for reuse (about 1.5 kB each).
KEPT_VECTORS: Final = 20_000

# -- similarity indexes --------------------------------------------------------------------

_VECTORS: weakref.WeakKeyDictionary[SentenceEmbedder, dict[str, F32]] = weakref.WeakKeyDictionary()


def embed_cached(embedder: SentenceEmbedder, texts: Sequence[str]) -> F32:
    """Vectors of ``texts``, each embedded once per process and embedder while among the
    :data:`KEPT_VECTORS` most recent: the answers provider is built per call, and only its
    first build runs the model; a cache's passing entries do not pile up."""
    cache = _VECTORS.setdefault(embedder, {})
    missing = sorted({t for t in texts if t not in cache})
    vectors = dict(zip(missing, embedder.embed(missing), strict=True)) if missing else {}
    for text in texts:
        vector = vectors[text] if text in vectors else cache.pop(text)
        cache[text] = vectors[text] = vector  # most recent last
    while len(cache) > KEPT_VECTORS:
        del cache[next(iter(cache))]
    if not texts:
        return np.zeros((0, embedder.dim), np.float32)
    return np.stack([vectors[t] for t in texts])


async def prime_vectors(embedder: SentenceEmbedder, texts: Sequence[str]) -> None:
    """Embed the ``texts`` :func:`embed_cached` does not hold yet, on the embedder's worker
    thread, so that adding them to an index next costs the event loop no model run."""
    cache = _VECTORS.setdefault(embedder, {})
    missing = sorted({t for t in texts if t not in cache})
    if missing:
        vectors = await embedder.embed_async(missing)
        for text, vector in zip(missing, vectors, strict=True):
            cache[text] = vector
        while len(cache) > KEPT_VECTORS:
            del cache[next(iter(cache))]


class DenseIndex:
    """Unit vectors in one matrix; a removed row scores -1."""

    def __init__(self, dim: int) -> None:
        self._matrix = np.zeros((16, dim), np.float32)
        self._alive = np.zeros(16, bool)
        self._free: list[int] = []
        self._size = 0

    def add(self, vector: F32) -> int:
        if self._free:
            row = self._free.pop()
        else:
            if self._size == len(self._matrix):
                self._matrix = np.concatenate([self._matrix, np.zeros_like(self._matrix)])
                self._alive = np.concatenate([self._alive, np.zeros_like(self._alive)])
            row = self._size
            self._size += 1
        self._matrix[row] = vector
        self._alive[row] = True
        return row

    def remove(self, row: int) -> None:
        self._matrix[row] = 0.0
        self._alive[row] = False
        self._free.append(row)

    def scores(self, vector: F32) -> F32:
        scores: F32 = self._matrix[: self._size] @ vector
        scores[~self._alive[: self._size]] = -1.0
        return scores

    def row_scores(self, row: int) -> F32:
        return self.scores(self._matrix[row].copy())


_CJK_OR_WORD: Final = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\s\u3400-\u9fff\uf900-\ufaff]+")


def ngrams(text: str, language: str) -> frozenset[str]:
    """The features of a normalized text: Chinese characters and pairs of them (a Latin word
    counts as one character); elsewhere words and character trigrams."""
    if language in ("zh", "yue"):
        tokens = _CJK_OR_WORD.findall(text)
        pairs = {a + b for a, b in itertools.pairwise(tokens)}
        return frozenset((set(tokens) | pairs) - _ZH_STOP)
    words = [w for w in text.split() if w not in _STOP.get(language, ())]
    grams = {f"w:{w}" for w in words}
    for w in words:
        padded = f" {w} "
        grams.update(padded[i : i + 3] for i in range(len(padded) - 2))
    return frozenset(grams)


# function words that say nothing of what is asked (their n-grams only add noise)
def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ZH_STOP: Final = _words(
    "你 我 他 们 你们 我们 可以 可 以 能 想 要 有 是 在 一下 个 请 问 吗 呢 这 那 我想 我要 "
    "你们有 们有 有没"
)
_STOP: Final[Mapping[str, frozenset[str]]] = {
    "es": _words(
        "de la el los las a que en mi su un una por para con y es se me lo le al del "
        "ustedes usted tienen tiene hay puedo puede quiero quisiera necesito cual como favor"
    ),
    "en": _words(
        "the a an to do you i is are can my your for of on in at it we what how please "
        "would like want need"
    ),
}


class NgramIndex:
    """TF-IDF cosine over n-gram sets, through postings (gram -> rows).

    IDF is read at query time from the postings; each entry's norm is computed when it is
    added and all norms again whenever the number of entries has changed by a quarter."""

    def __init__(self) -> None:
        self._postings: dict[str, list[int]] = {}
        self._arrays: dict[str, npt.NDArray[np.intp]] = {}
        self._grams: list[frozenset[str]] = []
        self._norms = np.full(16, np.inf, np.float32)
        self._free: list[int] = []
        self._count = 0
        self._normed_at = 0

    def _idf(self, gram: str) -> float:
        return math.log((self._count + 1) / (len(self._postings.get(gram, ())) + 1)) + 1.0

    def _norm(self, grams: Iterable[str]) -> float:
        return math.sqrt(sum(self._idf(g) ** 2 for g in grams)) or 1.0

    def add(self, grams: frozenset[str]) -> int:
        if self._free:
            row = self._free.pop()
            self._grams[row] = grams
        else:
            row = len(self._grams)
            self._grams.append(grams)
            if row == len(self._norms):
                self._norms = np.concatenate([self._norms, np.full_like(self._norms, np.inf)])
        for g in grams:
            self._postings.setdefault(g, []).append(row)
            self._arrays.pop(g, None)
        self._count += 1
        self._norms[row] = self._norm(grams)
        self._renorm_if_due()
        return row

    def remove(self, row: int) -> None:
        for g in self._grams[row]:
            rows = self._postings[g]
            rows.remove(row)
            if not rows:
                del self._postings[g]
            self._arrays.pop(g, None)
        self._grams[row] = frozenset()
        self._norms[row] = np.inf
        self._free.append(row)
        self._count -= 1
        self._renorm_if_due()

    def _renorm_if_due(self) -> None:
        if abs(self._count - self._normed_at) * 4 <= max(self._normed_at, 8):
            return
        free = set(self._free)
        for row, grams in enumerate(self._grams):
            if row not in free:
                self._norms[row] = self._norm(grams)
        self._normed_at = self._count

    def scores(self, grams: frozenset[str]) -> F32:
        size = len(self._grams)
        scores = np.zeros(size, np.float32)
        if not grams:
            return scores
        qnorm = 0.0
        for g in grams:
            idf = self._idf(g)
            qnorm += idf * idf
            rows = self._arrays.get(g)
            if rows is None:
                posting = self._postings.get(g)
                if not posting:
                    continue
                rows = self._arrays[g] = np.fromiter(posting, np.intp, len(posting))
            scores[rows] += idf * idf
        result: F32 = scores / (self._norms[:size] * math.sqrt(qnorm))
        return result

    def row_scores(self, row: int) -> F32:
        return self.scores(self._grams[row])
