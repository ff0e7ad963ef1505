"""The bot's declared replies: naming what it said, and what a perfect transcript would get."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.corpus import edit_distance, words
from bench.offline_agent.questions import NONE
from callweaver.pipelines.config import Deployment


@dataclass(frozen=True, slots=True)
class Answers:
    """The declared replies of the config's answers node, to name what the bot said."""

    replies: dict[str, str]  # id (and NONE) -> reply
    params: Any  # the node's AnswersParams

    @classmethod
    def of(cls, dep: Deployment) -> Answers:
        from callweaver.processors.reply import AnswersReply

        for node in dep.graph.nodes.values():
            factory = node.factory
            if getattr(factory, "func", None) is AnswersReply:
                params = factory.args[0]  # type: ignore[attr-defined]
                replies = {a.id: a.reply for a in params.all_answers}
                replies[NONE] = params.no_match_reply
                return cls(replies, params)
        raise SystemExit(f"{dep.path}: no answers node")

    def name(self, said: str) -> str:
        """The id whose reply ``said`` is (or begins: a reply cut by barge-in), else other."""
        said = " ".join(said.split())
        if not said:
            return "other"
        found = [k for k, r in self.replies.items() if " ".join(r.split()).startswith(said)]
        return found[0] if len(found) == 1 else "other"

    def nearest(self, heard: str) -> tuple[str, int]:
        """The reply closest to ``heard`` in words (relative edit distance), and the edits."""
        hw = words(heard)
        best = min(
            self.replies,
            key=lambda k: edit_distance(words(self.replies[k]), hw) / len(words(self.replies[k])),
        )
        return best, edit_distance(words(self.replies[best]), hw)


def answers_for_text(answers: Answers, text: str) -> str:
    """What the answers node gives the question's own text (a perfect transcript). Building
    a matcher costs about a millisecond once the process has embedded the examples."""
    from callweaver.services.answers import AnswerMatcher

    params = answers.params
    match = AnswerMatcher(params.all_answers, threshold=params.threshold).match(text)
    return match.answer_id if match.accepted and match.answer_id else NONE


def first_pieces(dep: Deployment) -> dict[str, str]:
    """What the TTS synthesizes first of each reply: the first sentence, or its first clause
    when the TTS speaks a long one clause first."""
    from callweaver.text import sentences

    lead = getattr(sentences, "lead_clause", lambda s: [s])
    out = {}
    for k, reply in Answers.of(dep).replies.items():
        out[k] = lead(sentences.split_sentences(reply)[0].strip())[0]
    return out
