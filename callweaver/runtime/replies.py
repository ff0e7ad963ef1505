"""The replies a call's reply node completed, for a node upstream of it to learn from.

A graph runs one way: the response cache node (:mod:`callweaver.processors.cache`) sits
before the reply node and cannot see its output. The reply node therefore hands each reply
it completes to the call's reply log (:attr:`CallContext.replies`), which passes it to the
nodes that listen (:meth:`ReplyLog.listen`): the cache node keeps the reusable replies to the
turns it missed. A listener runs in the reply node's task once the reply is out (its
``ReplyEndFrame`` sent), so the caller never waits for it, and the last turn of a call is
learned too though the cache node has already seen the end of the stream. A reply that failed
over to the fallback text, or was cancelled by a barge-in before it was complete, is never
handed over.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("callweaver.call")


@dataclass(frozen=True, slots=True)
class CompletedReply:
    """The whole reply to one turn: the caller's words and the bot's, and whether the node
    says its replies may be given to other callers asking the same (``reusable``: fixed text,
    or an LLM the config marks cacheable: no personal data, no tool results)."""

    turn: int
    prompt: str
    reply: str
    language: str
    reusable: bool
    source: str  # "llm" or "declared"
    version: str = ""  # the reply node's version (:attr:`ReplyLog.version`)


Listener = Callable[[CompletedReply], Awaitable[None]]


class ReplyLog:
    """Where completed replies go (see the module docstring)."""

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self.version = ""
        """What the reply node's replies depend on (a hash of its system prompt, model and
        declared answers), set when it starts: a cache keys what it learns with it."""

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def add(self, reply: CompletedReply) -> None:
        """Hand ``reply`` to every listener; a listener's failure is logged, never raised
        into the reply node."""
        for listener in self._listeners:
            try:
                await listener(reply)
            except Exception:
                log.exception("a reply listener failed on turn %d", reply.turn)
