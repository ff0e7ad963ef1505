"""The response cache's storage: replies per prompt, and their audio per voice.

What is stored: a :class:`CacheEntry` per (scope, normalized prompt): the caller's words, the
reply's text, where the reply came from (a declared answer or the LLM), when it expires; and
a :class:`CachedAudio` per (entry, voice, audio format): the reply as spoken, so a hit can
skip the TTS as well as the LLM.

Keys (:mod:`.keys`): a :class:`Scope` holds the deployment, the language, the conversation's
flow state and the prompt version (a hash of the system prompt and declared answers, from
:func:`prompt_version`); :func:`entry_id` hashes the scope with the normalized prompt, and
:func:`audio_key` adds the reply's text, the voice and the format. A change of prompt, answers
or voice therefore never serves old material: the old keys are simply never asked for again.

Stores (:mod:`.store`, :mod:`.redis_store`), behind one :class:`CacheStore` contract:
:class:`MemoryStore` in-process (LRU by count for entries and by bytes for audio, TTL, stats),
and :class:`RedisStore`, shared by every worker on one Redis, with the memory store as its
local copy and fallback: when Redis goes away the calls go on locally, and sharing resumes when
it is back. :class:`CacheStoreParams` is the config of either (``type: memory | redis``).
``RedisStore`` needs ``pip install 'callweaver[cache]'`` and is imported only when used.
"""

from callweaver.services.cache.entry import CachedAudio, CacheEntry, EntrySource
from callweaver.services.cache.keys import (
    Scope,
    audio_key,
    entry_id,
    normalize_prompt,
    prompt_version,
)
from callweaver.services.cache.store import CacheStats, CacheStore, CacheStoreParams, MemoryStore

__all__ = [
    "CacheEntry",
    "CacheStats",
    "CacheStore",
    "CacheStoreParams",
    "CachedAudio",
    "EntrySource",
    "MemoryStore",
    "Scope",
    "audio_key",
    "entry_id",
    "normalize_prompt",
    "prompt_version",
]
