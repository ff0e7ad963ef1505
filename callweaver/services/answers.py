"""Declared answers: the offline reply source. The caller's words are matched to example
questions, and the matched answer's fixed reply is spoken.

No usable language model installs from PyPI (``MODELS.md``), so the default reply source is a
list of answers, each with one or more example phrasings of its question::

    - type: answers
      threshold: 0.55
      answers:
        - id: hours
          questions: ["what are your opening hours", "when are you open"]
          reply: We're open Monday to Friday, 8 am to 6 pm.
      file: answers.yaml        # more answers, the same ``answers:`` list

:class:`AnswerMatcher` is a thin use of :class:`callweaver.services.matcher.Matcher`, the
matcher the response cache uses too: each example question is an entry, the examples of one
answer a group. It embeds the example questions once per process (MiniLM, see
:mod:`callweaver.resources.embeddings`), then for each caller text:

1. normalizes it (:func:`callweaver.text.slots.normalize`); a text equal to an example after
   normalization is that example, score 1.0, without running the model;
2. otherwise scores every example by cosine similarity and walks them best first, down to
   ``threshold``: the first whose slots agree with the caller's (numbers, weekdays, today/
   tomorrow, clock times, opposite actions, negation: :func:`callweaver.text.slots.conflicts`)
   is the match. "Are you open on Sunday" skips "are you open Monday to Friday" and may land on
   "when are you open"; "cancel my appointment" skips "book an appointment". An example that
   asks the opposite (an action or a negation disagrees) rules out its whole answer: "I don't
   want to cancel" gets no cancellation reply from any phrasing. An example takes the actions
   its sibling phrasings state ("I won't be able to make my appointment" is a cancellation).
   A weekday never agrees with a relative day (is Monday tomorrow?). Unlike the cache
   (``unsaid_ok``), an example's day, time or quantity that the caller leaves unsaid does not
   rule it out when another phrasing of the same answer leaves it out too ("are you open"
   finds "are you open Monday to Friday" beside "when are you open"), and a day or time the
   caller says that a question about opening hours leaves out is fine when the answer's reply
   speaks to it ("are you open on Saturday" finds "when are you open", whose reply lists the
   days; a reply "we open at eight" would not answer it). A lone phrasing stays strict: on the
   matcher's four-language evaluation set (``tests/matching_eval.py``) this setting answers
   no near miss wrongly, as the cache's.
3. Nothing left above the threshold: no match, and the provider says ``no_match_reply``.

Measured on a clinic front desk (11 answers, 38 example questions; ``tests/test_answers.py``)
with 87 held-out caller phrasings: 64 that a declared answer covers and 23 near misses or
unrelated questions; 52 written lowercase without punctuation, as an ASR writes them. "hit" is
the share of the 64 given the right answer, "wrong" the share of all 87 given a wrong one (any
answer to an unrelated question is wrong):

=========  ======================  ======================
threshold  slots checked           similarity alone
=========  ======================  ======================
0.40       hit 88 %, wrong 9 %     hit 80 %, wrong 21 %
0.45       hit 81 %, wrong 1 %     hit 73 %, wrong 14 %
0.50       hit 75 %, wrong 1 %     hit 69 %, wrong 14 %
0.55       hit 67 %, wrong 1 %     hit 62 %, wrong 14 %
0.60       hit 59 %, wrong 0 %     hit 56 %, wrong 10 %
0.65       hit 50 %, wrong 0 %     hit 47 %, wrong 10 %
0.70       hit 38 %, wrong 0 %     hit 36 %, wrong 8 %
0.85       hit 16 %, wrong 0 %     hit 19 %, wrong 6 %
=========  ======================  ======================

Similarity alone sends "can I get an appointment tomorrow" to the same-day answer (0.95) and
"are you open late on Tuesday" to the Thursday one (0.91); the slot checks send both to the
general answer. The default, :data:`DEFAULT_THRESHOLD` = 0.55, gives one wrong answer in 87
while two thirds of the paraphrases land: a miss costs a "could you say that again", a wrong
answer misleads the caller. The one left is a near miss with no slot to tell it apart ("do you
do home visits" -> booking): declare an answer for it, or raise the threshold. (Before the
opening-hours topic and the group rules, the same set gave 69 % and 5 %: "what time is it" got
the opening hours.)

Matching costs one embedding (about 4 ms on one thread) and a dot product; an exact match
after normalization costs neither. Building a matcher runs the model only for questions this
process has not embedded yet, so the provider built for each call costs about a millisecond
after the first.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from callweaver.resources.embeddings import SentenceEmbedder
from callweaver.services.llm import Message
from callweaver.services.matcher import Matcher, MatchResult
from callweaver.text.languages import language_key
from callweaver.text.languages import normalize as normalize_in
from callweaver.text.slots import normalize

__all__ = [
    "DEFAULT_THRESHOLD",
    "Answer",
    "AnswerMatcher",
    "AnswersLLM",
    "AnswersParams",
    "DeclaredAnswers",
    "Match",
    "load_answers_file",
    "with_ids",
]

DEFAULT_THRESHOLD: Final = 0.55
NO_MATCH_REPLY: Final = "Sorry, I didn't catch that. Could you say it again?"


class Answer(BaseModel):
    """One declared answer: example phrasings of a question, and the reply to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(
        "",
        description="Name of the answer in metrics and logs; derived from the first question "
        "when left out",
    )
    questions: list[str] = Field(
        min_length=1,
        description="One or more ways a caller may ask the question (`question:` with a "
        "single string works too); the more phrasings, the more callers it catches",
    )
    reply: str = Field(min_length=1, description="What to say when the question is asked")

    @model_validator(mode="before")
    @classmethod
    def _single_question(cls, data: Any) -> Any:
        if isinstance(data, dict) and "question" in data:
            data = dict(data)
            single = data.pop("question")
            if not isinstance(single, str):
                raise ValueError("question: a string (use questions: for a list)")
            data["questions"] = [single, *data.get("questions", [])]
        return data

    @model_validator(mode="after")
    def _not_blank(self) -> Self:
        if not self.reply.strip():
            raise ValueError("reply is blank")
        blank = [q for q in self.questions if not normalize(q)]
        if blank:
            raise ValueError(f"questions with no words in them: {blank!r}")
        return self


class DeclaredAnswers(BaseModel):
    """Declared answers in a node's params: ``answers`` inline and ``file``, merged, each with
    its id (the ``answers`` node's, and the ``cache`` node's)."""

    model_config = ConfigDict(extra="forbid")

    answers: list[Answer] = Field(
        default_factory=list, description="The declared answers (inline in the config)"
    )
    file: str | None = Field(
        None,
        description="A YAML file with more answers (`answers:`, the same list), added after "
        "the inline ones; a relative path is read from the current directory",
    )
    _all: list[Answer] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _load(self) -> Self:
        merged = list(self.answers)
        if self.file is not None:
            merged += load_answers_file(self.file)
        self._all = with_ids(merged)
        return self

    @property
    def all_answers(self) -> list[Answer]:
        """The inline answers, then the file's, each with its id."""
        return list(self._all)


class AnswersParams(DeclaredAnswers):
    """Parameters of the ``answers`` reply provider."""

    threshold: float = Field(
        DEFAULT_THRESHOLD,
        ge=0.0,
        le=1.0,
        description="Least cosine similarity between the caller's words and an example "
        "question for its answer to be given (the slots must agree as well)",
    )
    no_match_reply: str = Field(
        NO_MATCH_REPLY,
        min_length=1,
        description="What to say when no answer matches (or the caller said nothing)",
    )

    @model_validator(mode="after")
    def _some(self) -> Self:
        if not self.all_answers:
            raise ValueError("declare at least one answer (answers: or file:)")
        return self


def load_answers_file(path: str | Path) -> list[Answer]:
    """The ``answers:`` list of a YAML file. Raises ValueError naming the file."""
    file = Path(path).expanduser()
    where = f"answers file {str(path)!r}"
    if not file.is_absolute():
        where += f" (read from {Path.cwd()})"
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{where}: cannot be read: {exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"{where}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("answers"), list):
        raise ValueError(f"{where}: expected a mapping with an 'answers:' list")
    answers: list[Answer] = []
    for i, item in enumerate(raw["answers"]):
        try:
            answers.append(Answer.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in exc.errors()
            )
            raise ValueError(f"{where}: answers[{i}]: {problems}") from None
    if not answers:
        raise ValueError(f"{where}: the 'answers:' list is empty")
    return answers


def with_ids(answers: Iterable[Answer]) -> list[Answer]:
    """Explicit ids must be unique; a missing one is the slug of the first question."""
    answers = list(answers)
    taken = {a.id for a in answers if a.id}
    seen: set[str] = set()
    out: list[Answer] = []
    for answer in answers:
        if answer.id:
            if answer.id in seen:
                raise ValueError(f"two answers have the id {answer.id!r}")
            seen.add(answer.id)
            out.append(answer)
            continue
        base = "-".join(normalize(answer.questions[0]).split()[:8])[:48].strip("-") or "answer"
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}-{n}"
        taken.add(slug)
        out.append(answer.model_copy(update={"id": slug}))
    return out


# -- matching ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Match:
    """How a caller's text matched the declared answers.

    ``answer_id``, ``example`` and ``score`` are the accepted match, or when nothing was
    accepted the most similar example (None on empty input). ``second_score`` is the best score
    of any *other* answer (the margin is ``score - second_score``). ``reason`` says why:
    ``"exact"``, ``"similar"``, ``"below threshold"``, ``"empty"`` or the slots that disagreed
    (``"weekday: sunday vs monday,tuesday,..."``)."""

    text: str
    accepted: bool
    answer_id: str | None
    example: str | None
    score: float
    second_score: float
    reply: str | None
    reason: str


class AnswerMatcher:
    """Matches caller texts to declared answers: a thin use of
    :class:`~callweaver.services.matcher.Matcher` (each example question an entry, the
    examples of one answer a group); see the module docstring."""

    def __init__(
        self,
        answers: Sequence[Answer],
        *,
        threshold: float = DEFAULT_THRESHOLD,
        embedder: SentenceEmbedder | None = None,
        check_slots: bool = True,
        language: str = "en",
    ) -> None:
        """``check_slots=False`` accepts the most similar example above the threshold whatever
        its slots (similarity alone, for comparison). ``threshold`` is the least similarity
        in ``language`` (MiniLM's cosine for English, the n-gram score for Spanish and
        Chinese: see :mod:`callweaver.services.matcher`)."""
        if not answers:
            raise ValueError("an answer matcher needs at least one answer")
        self.answers = with_ids(answers)
        self.threshold = threshold
        self.check_slots = check_slots
        self.language = language
        lang = language_key(language)
        self._matcher = Matcher(
            embedder=embedder,
            thresholds={lang: threshold},
            check_slots=check_slots,
            unsaid_ok=True,  # "are you open" finds "are you open Monday to Friday"
        )
        self._examples: dict[str, tuple[int, str]] = {}  # entry key -> (answer, question)
        owner: dict[str, int] = {}
        for index, answer in enumerate(self.answers):
            items: list[tuple[str, str, str]] = []
            for question in answer.questions:
                norm = normalize_in(question, lang)
                if norm in owner:
                    if owner[norm] != index:
                        first = self.answers[owner[norm]].id
                        raise ValueError(
                            f"answers {first!r} and {answer.id!r} both list the question "
                            f"{question!r}"
                        )
                    continue
                owner[norm] = index
                key = f"{index}:{len(items)}"
                self._examples[key] = (index, question)
                items.append((key, question, language))
            self._matcher.add_many(items, group=str(index))
            self._matcher.describe(str(index), answer.reply, language)

    @property
    def embedder(self) -> SentenceEmbedder:
        return self._matcher.embedder

    def match(self, text: str) -> Match:
        """Synchronous: the match for ``text`` (embeds it on this thread unless it is exact)."""
        return self._result(self._matcher.match_sync(text, self.language))

    async def match_async(self, text: str) -> Match:
        """:meth:`match`, embedding on the embedder's worker thread."""
        return self._result(await self._matcher.match(text, self.language))

    def _result(self, result: MatchResult) -> Match:
        if result.reason == "empty":
            return Match(result.text, False, None, None, 0.0, 0.0, None, "empty")
        key = result.key or result.best_key
        if key is None:
            return Match(result.text, False, None, None, 0.0, 0.0, None, result.reason)
        index, question = self._examples[key]
        answer = self.answers[index]
        accepted = result.key is not None
        return Match(
            text=result.text,
            accepted=accepted,
            answer_id=answer.id,
            example=question,
            score=result.score,
            second_score=result.second_score,
            reply=answer.reply if accepted else None,
            reason=result.reason,
        )


# -- the provider --------------------------------------------------------------------------

_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+")


class AnswersLLM:
    """An :class:`~callweaver.services.llm.LLM` that replies with declared answers.

    The last user message is matched (:class:`AnswerMatcher`); the reply streams one sentence
    per piece (the pieces join back into the declared reply). ``last_match`` keeps the latest
    :class:`Match`, for the reply node to report its score."""

    Params = AnswersParams

    def __init__(
        self,
        params: AnswersParams,
        *,
        name: str = "answers",
        embedder: SentenceEmbedder | None = None,
    ) -> None:
        self.name = name
        self.params = params
        self.matcher = AnswerMatcher(
            params.all_answers, threshold=params.threshold, embedder=embedder
        )
        self.last_match: Match | None = None

    async def aclose(self) -> None:
        """Nothing to release: the embedder is the process's."""

    async def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        text = next((m.content for m in reversed(messages) if m.role == "user"), "")
        match = await self.matcher.match_async(text)
        self.last_match = match
        reply = match.reply if match.accepted and match.reply else self.params.no_match_reply
        for piece in _sentences(reply):
            yield piece


def _sentences(text: str) -> list[str]:
    """``text`` cut after each sentence end, the spaces kept with the sentence before them."""
    pieces: list[str] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        pieces.append(text[start : m.end()])
        start = m.end()
    if start < len(text):
        pieces.append(text[start:])
    return pieces
