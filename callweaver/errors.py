"""Every exception callweaver raises on purpose, in one place.

Hierarchy::

    CallweaverError                 base of everything below
    +-- ConfigError                 a deployment config is invalid (carries every issue found)
    +-- RegistryError               a node type is unknown or its factory cannot be loaded
    +-- GraphError                  a graph cannot be built or cannot drain
    +-- TransportError              a transport's peer or medium failed
    |   +-- PeerGone                the peer went away (hang-up, socket closed): not our fault
    |   +-- WireError               a peer's message its protocol does not allow (per kind)
    +-- WavError                    a file is not a WAV we can read (transports/wav.py)
    +-- ProviderError               an STT/LLM/TTS provider failed; ``retryable`` says whether
    |   |                           a retry or a failover to another provider can help
    |   +-- ProvidersExhausted      every provider of a stage failed or was skipped (failover)
    +-- CacheError                  the response cache (services/cache/) cannot do what was asked
    |   +-- CacheCorrupt            stored bytes are not a cache entry or clip this version reads
    +-- ModelUnavailable            a local model or its runtime is not installed (the message
                                    names the extra to install); subclasses per model live
                                    beside it: SmartTurnUnavailable, DenoiseUnavailable

"We closed it" (an EndFrame, ``Call.cancel``) is kept apart from "the peer broke it"
(PeerGone). A processor's failure is not raised out of a call: its node's policy handles it and
the call's report records it.
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


class TransportError(CallweaverError):
    """A transport's peer or medium failed."""


class PeerGone(TransportError):
    """The peer went away (hang-up, closed socket). A normal way for a call to end."""


class WireError(TransportError):
    """A peer's message that its protocol does not allow. ``kind`` labels it for metrics
    (``bad_json``, ``unknown_event``, ``missing_field``, ``bad_field``, ``oversized``...);
    the transport counts it, skips the message and goes on."""

    def __init__(self, kind: str, message: str) -> None:
        self.kind = kind
        self.detail = message
        super().__init__(f"{kind}: {message}")


class ProviderError(CallweaverError):
    """An STT, LLM or TTS provider failed.

    ``retryable`` is True when trying again, or failing over to another provider, can help
    (timeouts, 429, 5xx, refused connections) and False when it cannot (401, bad voice name).
    """

    def __init__(self, provider: str, message: str, *, retryable: bool) -> None:
        self.provider = provider
        self.retryable = retryable
        super().__init__(f"{provider}: {message}")


class ProvidersExhausted(ProviderError):
    """No provider of a stage could serve the request; ``attempts`` says what each did."""

    def __init__(self, stage: str, attempts: Sequence[tuple[str, str]]) -> None:
        self.attempts = tuple(attempts)
        detail = "; ".join(f"{name}: {what}" for name, what in attempts) or "no providers"
        super().__init__(stage, f"every provider failed ({detail})", retryable=True)


class CacheError(CallweaverError):
    """The response cache cannot do what was asked. A shared store that goes away is not one:
    the store serves from its local copy and the call goes on."""


class CacheCorrupt(CacheError):
    """Bytes in a cache store are not an entry (or audio clip) this version can read: damaged,
    written by something else, or in a format version it does not know. Read as a miss."""


class ModelUnavailable(CallweaverError):
    """A local model or its runtime is not installed; the message names what to install."""
