"""Reply sentences as spoken, kept per voice and format: a sentence said before (a declared
answer, a cached reply) plays from the store the next time instead of being synthesized.

The key hashes the voice, the format the TTS node plays (``pcm16@<rate>``) and the sentence's
text, so another voice, rate or wording never gets this audio. The voice is the TTS node's
first provider with its params: audio is kept only when that provider spoke the sentence
whole, never audio a failover provider made in another voice.

Stores are shared by every call of the process that names the same store config
(:func:`shared_store`): built once, on first use.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from callweaver.services.cache.store import CacheStore, CacheStoreParams

_stores: dict[str, CacheStore] = {}


def shared_store(params: CacheStoreParams) -> CacheStore:
    """The process's store for ``params`` (one per distinct config)."""
    key = params.model_dump_json()
    store = _stores.get(key)
    if store is None:
        store = _stores[key] = params.build()
    return store


async def close_shared_stores() -> None:
    """Close every store :func:`shared_store` made (at the end of a process: a Redis store
    sends what it still owes Redis first)."""
    stores = list(_stores.values())
    _stores.clear()
    for store in stores:
        await store.aclose()


def voice_of(provider_type: str, name: str, params: Any) -> str:
    """A stable name for a provider's voice: its type, name and params (keys and secrets are
    hashed with the rest, never stored in clear)."""
    text = json.dumps([provider_type, name, params], sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class SpeechCache:
    """Sentences of one voice in one format, in ``store`` (see the module docstring)."""

    def __init__(self, store: CacheStore, voice: str, sample_rate: int) -> None:
        self.store = store
        self.voice = voice
        self.sample_rate = sample_rate
        self.audio_format = f"pcm16@{sample_rate}"
        self.hits = 0
        self.misses = 0

    def key(self, text: str) -> str:
        h = hashlib.blake2b(digest_size=16)
        for part in (self.voice, self.audio_format, " ".join(text.split())):
            data = part.encode()
            h.update(len(data).to_bytes(4, "big"))
            h.update(data)
        return f"speech:{h.hexdigest()}"

    async def get(self, text: str) -> bytes | None:
        """The sentence's audio (PCM16 at :attr:`sample_rate`), or None."""
        audio = await self.store.get_audio(self.key(text))
        if audio is None or audio.sample_rate != self.sample_rate or not audio.pcm:
            self.misses += 1
            return None
        self.hits += 1
        return audio.pcm

    async def has(self, text: str) -> bool:
        """Is the sentence's audio held? Not counted in :attr:`hits` or :attr:`misses`; a
        store that can look without counting (:meth:`MemoryStore.peek_audio`) does, another
        (Redis, which may hold other workers' audio) is asked as for a play."""
        key = self.key(text)
        peek = getattr(self.store, "peek_audio", None)
        audio = peek(key) if peek is not None else await self.store.get_audio(key)
        return audio is not None and audio.sample_rate == self.sample_rate and bool(audio.pcm)

    async def put(self, text: str, pcm: bytes) -> None:
        if pcm:
            await self.store.put_audio(self.key(text), pcm, self.sample_rate)
