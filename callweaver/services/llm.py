"""The language-model interface: a conversation in, the reply out as a stream of text pieces.

An LLM provider (any OpenAI-compatible chat-completions endpoint) implements :class:`LLM`.
The reply nodes (:mod:`callweaver.processors.llm`) keep each call's conversation and cut the
streamed pieces into sentences for speech.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a conversation."""

    role: Role
    content: str


class LLM(Protocol):
    """A chat model. ``name`` keys its circuit breaker."""

    name: str

    async def aclose(self) -> None:
        """Release what the provider holds (connections); the process-wide models stay."""
        ...

    def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        """The reply to ``messages``, as text pieces in order, the first as soon as the
        model sends it. The iterator ends only when the model says the reply is complete; a
        stream cut short raises :class:`~callweaver.errors.ProviderError`."""
        ...
