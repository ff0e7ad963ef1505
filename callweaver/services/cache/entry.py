"""What the cache stores: a reply (:class:`CacheEntry`) and its audio (:class:`CachedAudio`),
with their byte forms for a shared store (pure, no I/O).

Entries are versioned JSON, so another worker or a later release can read them or say clearly
that it cannot (:class:`~callweaver.errors.CacheCorrupt`, counted as a miss). Audio is a
small binary header and the PCM as is: no base64, no copy beyond the one bytes object.

Times are wall-clock seconds (``time.time()``), not the call's monotonic clock: entries are
shared between processes and machines, where only wall time means the same.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from callweaver.errors import CacheCorrupt
from callweaver.services.cache.keys import Scope, entry_id, normalize_prompt

ENTRY_FORMAT = 1
"""Version of :meth:`CacheEntry.to_bytes`; :meth:`CacheEntry.from_bytes` reads this one."""

_AUDIO_MAGIC = b"CWA1"
_AUDIO_HEADER = struct.Struct(">4sId")  # magic, sample rate, expires_at (0: never)


class EntrySource(StrEnum):
    """Where a reply came from: a declared answer of the deployment, or the LLM."""

    DECLARED = "declared"
    LLM = "llm"


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheEntry:
    """One cached reply: what the caller said (``prompt`` normalized, ``original_prompt`` as
    heard), in which :class:`Scope`, and the reply's text. ``id`` is
    :func:`~callweaver.services.cache.keys.entry_id` of the scope and the normalized prompt.
    ``expires_at`` is None for an entry that lives until evicted."""

    id: str
    scope: Scope
    prompt: str
    original_prompt: str
    reply: str
    language: str
    created_at: float
    expires_at: float | None
    source: EntrySource

    @classmethod
    def new(
        cls,
        *,
        scope: Scope,
        prompt: str,
        reply: str,
        source: EntrySource | str,
        now: float,
        ttl_s: float | None = None,
        language: str | None = None,
    ) -> CacheEntry:
        """An entry for ``prompt`` (as the caller said it; normalized here) made at ``now``,
        expiring ``ttl_s`` later (never: None); ``language`` defaults to the scope's."""
        normalized = normalize_prompt(prompt)
        return cls(
            id=entry_id(scope, normalized),
            scope=scope,
            prompt=normalized,
            original_prompt=prompt,
            reply=reply,
            language=scope.language if language is None else language,
            created_at=now,
            expires_at=None if ttl_s is None else now + ttl_s,
            source=EntrySource(source),
        )

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def text_bytes(self) -> int:
        """The UTF-8 size of the texts it holds (what the stats call ``text_bytes``)."""
        return (
            len(self.prompt.encode())
            + len(self.original_prompt.encode())
            + len(self.reply.encode())
        )

    def to_bytes(self) -> bytes:
        doc = {
            "v": ENTRY_FORMAT,
            "id": self.id,
            "scope": self.scope.key(),
            "prompt": self.prompt,
            "original_prompt": self.original_prompt,
            "reply": self.reply,
            "language": self.language,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "source": self.source.value,
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> CacheEntry:
        """Read :meth:`to_bytes`; anything else raises :class:`CacheCorrupt` saying what."""
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, ValueError) as e:
            raise CacheCorrupt(f"cache entry is not JSON: {e}") from None
        if not isinstance(doc, dict):
            raise CacheCorrupt("cache entry is not a JSON object")
        if doc.get("v") != ENTRY_FORMAT:
            raise CacheCorrupt(
                f"cache entry format {doc.get('v')!r} (this version reads {ENTRY_FORMAT})"
            )
        try:
            scope = Scope.parse(_field(doc, "scope", str))
            entry = cls(
                id=_field(doc, "id", str),
                scope=scope,
                prompt=_field(doc, "prompt", str),
                original_prompt=_field(doc, "original_prompt", str),
                reply=_field(doc, "reply", str),
                language=_field(doc, "language", str),
                created_at=_number(doc, "created_at"),
                expires_at=None if doc.get("expires_at") is None else _number(doc, "expires_at"),
                source=EntrySource(_field(doc, "source", str)),
            )
        except (ValueError, KeyError) as e:
            raise CacheCorrupt(f"cache entry: {e}") from None
        if entry.id != entry_id(scope, entry.prompt):
            raise CacheCorrupt(f"cache entry {entry.id}: id does not match its scope and prompt")
        return entry


def _field(doc: dict[str, Any], key: str, kind: type[str]) -> str:
    value = doc.get(key)
    if not isinstance(value, kind):
        raise ValueError(f"{key!r} is {type(value).__name__}, not {kind.__name__}")
    return value


def _number(doc: dict[str, Any], key: str) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key!r} is not a finite number")
    return float(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedAudio:
    """A reply's synthesized audio: 16-bit mono PCM (or the bytes of the format its key
    names) at ``sample_rate``."""

    pcm: bytes
    sample_rate: int
    expires_at: float | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def to_bytes(self) -> bytes:
        header = _AUDIO_HEADER.pack(_AUDIO_MAGIC, self.sample_rate, self.expires_at or 0.0)
        return header + self.pcm

    @classmethod
    def from_bytes(cls, data: bytes) -> CachedAudio:
        if len(data) < _AUDIO_HEADER.size:
            raise CacheCorrupt(f"cached audio of {len(data)} bytes has no header")
        magic, rate, expires_at = _AUDIO_HEADER.unpack_from(data)
        if magic != _AUDIO_MAGIC:
            raise CacheCorrupt(f"cached audio starts with {magic!r}, not {_AUDIO_MAGIC!r}")
        if not 1000 <= rate <= 384_000 or not math.isfinite(expires_at):
            raise CacheCorrupt(f"cached audio header is damaged (rate {rate})")
        return cls(
            pcm=data[_AUDIO_HEADER.size :],
            sample_rate=rate,
            expires_at=expires_at or None,
        )
