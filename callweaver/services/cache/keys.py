"""Cache keys: what a cached reply depends on, as stable strings (pure, no I/O).

A reply is looked up by its :class:`Scope` (deployment, language, conversation state, version
of the system prompt and declared answers) and the caller's normalized prompt; its audio
additionally by the voice and the audio format, and by the reply's own text. Every part that
could make old material wrong is inside the key, so a new prompt, new answers or a new voice
never serve what was cached before them: they simply miss (the old entries age out).
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from callweaver.text.slots import normalize

if TYPE_CHECKING:
    from callweaver.services.cache.entry import CacheEntry

_VERSION_CHARS = 12
_ID_BYTES = 16


def _digest(*parts: str, size: int) -> str:
    h = hashlib.blake2b(digest_size=size)
    for part in parts:
        data = part.encode()
        h.update(len(data).to_bytes(4, "big"))  # length-prefixed: ("ab", "c") != ("a", "bc")
        h.update(data)
    return h.hexdigest()


def prompt_version(*parts: object) -> str:
    """A short hash of what shapes the replies: the system prompt, the declared answers, the
    model... (anything JSON can write; mappings are read with sorted keys). Put it in the
    :class:`Scope`, and a change to any part makes every earlier entry unreachable."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return _digest(text, size=16)[:_VERSION_CHARS]


def normalize_prompt(text: str) -> str:
    """The caller's words as the cache compares them: Unicode NFKC, then the answers
    matcher's normalization (lowercase, contractions expanded, punctuation gone)."""
    return normalize(unicodedata.normalize("NFKC", text))


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """Where a reply is valid. Two prompts share an entry only within one scope.

    ``flow_state`` is the conversation's state when the flow has one ("" otherwise): the same
    words can need another reply at another step. ``prompt_version`` comes from
    :func:`prompt_version`.
    """

    deployment: str
    language: str
    flow_state: str = ""
    prompt_version: str = ""

    def key(self) -> str:
        """The stable string form, ``deployment/language/flow_state/prompt_version`` with each
        part percent-encoded (so no part can run into the next); :meth:`parse` reads it."""
        parts = (self.deployment, self.language, self.flow_state, self.prompt_version)
        return "/".join(quote(p, safe="") for p in parts)

    @classmethod
    def parse(cls, key: str) -> Scope:
        parts = key.split("/")
        if len(parts) != 4:
            raise ValueError(f"not a cache scope: {key!r}")
        deployment, language, flow_state, version = (unquote(p) for p in parts)
        return cls(
            deployment=deployment,
            language=language,
            flow_state=flow_state,
            prompt_version=version,
        )

    def __str__(self) -> str:
        return self.key()


def entry_id(scope: Scope, normalized_prompt: str) -> str:
    """The id of the entry for ``normalized_prompt`` in ``scope``: 32 hex digits, the same on
    every worker and machine (a hash, not a counter)."""
    return _digest(scope.key(), normalized_prompt, size=_ID_BYTES)


def audio_key(entry: CacheEntry, voice: str, audio_format: str) -> str:
    """The key of ``entry``'s reply spoken by ``voice`` in ``audio_format`` (``pcm16@8000``,
    ``mulaw@8000``...): ``<entry id>:<hash of reply, voice, format>``.

    It takes the entry, not only its id, because the reply under one id can change (two
    workers answering the same new prompt at once, an entry replaced after a wrong-hit
    report): audio of another reply's text is then under another key and cannot be served.
    """
    return f"{entry.id}:{_digest(entry.reply, voice, audio_format, size=8)}"
