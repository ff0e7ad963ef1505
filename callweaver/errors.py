"""Every exception callweaver raises on purpose, in one place.

Hierarchy::

    CallweaverError                 base of everything below
    +-- ConfigError                 a deployment config is invalid (carries every issue found)
    +-- RegistryError               a node type is unknown or its factory cannot be loaded
    +-- GraphError                  a graph cannot be built or cannot drain
    +-- CallError                   something went wrong inside one call
    |   +-- ProcessorError          a processor raised; carries the node name and the policy
    |   +-- CallCancelled           the call was cancelled (by us, on purpose) before it ended
    +-- TransportError              a transport's peer or medium failed
    |   +-- PeerGone                the peer went away (hang-up, socket closed): not our fault
    |   +-- ProtocolViolation       the peer sent something the wire protocol does not allow
    +-- ProviderError               an STT/LLM/TTS provider failed; ``retryable`` says whether
    |                               a retry or a failover to another provider can help
    +-- ModelUnavailable            a local model or its runtime is not installed (the message
                                    names the extra to install)

"We closed it" (EndFrame, CallCancelled) is kept apart from "the peer broke it" (PeerGone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class CallweaverError(Exception):
    """Base class of every error callweaver raises on purpose."""


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a config: where it is and what is wrong."""

    file: str
    line: int | None
    node: str | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = self.file + (f":{self.line}" if self.line is not None else "")
        parts = [where]
        if self.node:
            parts.append(f"node {self.node!r}")
        if self.key:
            parts.append(f"key {self.key!r}")
        return f"{': '.join(parts)}: {self.message}"


class ConfigError(CallweaverError):
    """A deployment config is invalid. ``issues`` lists every problem found, not just the first."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


class RegistryError(CallweaverError):
    """A node type is unknown, or its factory cannot be imported."""


class GraphError(CallweaverError):
    """A graph cannot be built (missing node or port) or cannot drain (cycle, dead end)."""


class CallError(CallweaverError):
    """Something went wrong inside one call."""


class ProcessorError(CallError):
    """A processor raised; the node's policy decided what happened next."""

    def __init__(self, node: str, policy: str, cause: BaseException) -> None:
        self.node = node
        self.policy = policy
        self.cause = cause
        super().__init__(f"node {node!r} failed ({policy}): {cause!r}")


class CallCancelled(CallError):
    """The call was cancelled on purpose before it ended by itself."""


class TransportError(CallweaverError):
    """A transport's peer or medium failed."""


class PeerGone(TransportError):
    """The peer went away (hang-up, closed socket). A normal way for a call to end."""


class ProtocolViolation(TransportError):
    """The peer sent something its wire protocol does not allow."""


class ProviderError(CallweaverError):
    """An STT, LLM or TTS provider failed.

    ``retryable`` is True when trying again, or failing over to another provider, can help
    (timeouts, 429, 5xx, refused connections) and False when it cannot (401, bad voice name).
    """

    def __init__(self, provider: str, message: str, *, retryable: bool) -> None:
        self.provider = provider
        self.retryable = retryable
        super().__init__(f"{provider}: {message}")


class ModelUnavailable(CallweaverError):
    """A local model or its runtime is not installed; the message names what to install."""
