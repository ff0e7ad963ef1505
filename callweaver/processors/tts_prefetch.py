"""The ``tts`` node's prefetch: reply sentences made ahead of need, while the node is idle.

Upstream nodes send a :class:`~callweaver.frames.text.PrefetchFrame` with reply texts likely
to be said soon; the node hands them to its :class:`SpeechPrefetch`, which splits them into
sentences and makes the ones its audio cache does not hold, one at a time, with the node's
first provider (the cache's voice; never a failover provider), only while no reply is being
spoken: a reply that starts cancels the synthesis in flight, which goes back to the front of
the queue. The process's budget for the voice (:mod:`callweaver.services.cache.prefetch`)
decides when: a refused sentence waits until the window moves. At the end of the call the
``preload`` sentences (start-up: the server's warm call) are finished, within a time limit;
the others are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from callweaver.audio.resample import resample
from callweaver.services.cache.prefetch import Prefetcher
from callweaver.services.cache.speech import SpeechCache
from callweaver.services.tts import TTS
from callweaver.text.sentences import split_sentences

log = logging.getLogger("callweaver.tts")


@dataclass(frozen=True, slots=True)
class _Sentence:
    text: str
    language: str
    preload: bool


class SpeechPrefetch:
    """See the module docstring. Owned by one ``tts`` node: :meth:`aclose` when it closes."""

    def __init__(
        self, speech: SpeechCache, provider: TTS, rate: int, prefetcher: Prefetcher
    ) -> None:
        self.speech = speech
        self.provider = provider
        self.rate = rate
        self.prefetcher = prefetcher
        self.queue: deque[_Sentence] = deque()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._making: asyncio.Task[bytes] | None = None
        self._deferred: set[str] = set()

    def add(self, texts: Iterable[str], language: str, *, preload: bool) -> None:
        """Queue the sentences of ``texts`` (each once) and start working when idle."""
        queued = {s.text for s in self.queue}
        for text in texts:
            for sentence in split_sentences(text):
                if sentence not in queued:
                    queued.add(sentence)
                    self.queue.append(_Sentence(sentence, language, preload))
        if self.queue and self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def busy(self) -> None:
        """A reply is being spoken: stop, and cancel the synthesis in flight."""
        self._idle.clear()
        if self._making is not None and not self._making.done():
            self._making.cancel()

    def idle(self) -> None:
        self._idle.set()

    async def finish(self, timeout_s: float) -> None:
        """The call ends: finish the ``preload`` sentences (at most ``timeout_s``), drop the
        rest."""
        self.queue = deque(s for s in self.queue if s.preload)
        self._idle.set()
        task = self._task
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), timeout_s)
        await self.aclose()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        counters, budget = self.prefetcher.counters, self.prefetcher.budget
        try:
            while self.queue:
                await self._idle.wait()
                item = self.queue[0]
                key = self.speech.key(item.text)
                if await self.speech.has(item.text) or not self.prefetcher.claim(key):
                    self.queue.popleft()
                    counters["held"] += 1
                    continue
                if not budget.allows(len(item.text), preload=item.preload):
                    self.prefetcher.release(key)
                    if key not in self._deferred:
                        self._deferred.add(key)
                        counters["deferred"] += 1
                    await asyncio.sleep(min(max(budget.retry_in_s(), 0.05), 1.0))
                    continue
                self.queue.popleft()
                await self._make_one(item, key)
        finally:
            self._task = None

    async def _make_one(self, item: _Sentence, key: str) -> None:
        counters, budget = self.prefetcher.counters, self.prefetcher.budget
        started = time.perf_counter()
        making = self._making = asyncio.ensure_future(self._synthesize(item))
        try:
            await asyncio.wait({making})
        finally:
            self.prefetcher.release(key)
            self._making = None
            if not making.done():  # the node closed meanwhile
                making.cancel()
        budget.spend(len(item.text), time.perf_counter() - started)
        if making.cancelled():  # a reply started: again later, first
            self.queue.appendleft(item)
            counters["interrupted"] += 1
            return
        exc = making.exception()
        if exc is not None:
            counters["failed"] += 1
            log.info("prefetch of %r failed: %s", item.text[:40], exc)
            return
        await self.speech.put(item.text, making.result())
        counters["prefetched"] += 1

    async def _synthesize(self, item: _Sentence) -> bytes:
        parts = []
        audio = self.provider.synthesize(item.text, item.language)
        try:
            async for speech in audio:
                parts.append(resample(speech.pcm, speech.sample_rate, self.rate))
        finally:  # at once: a provider's connection may hang on it
            closer = getattr(audio, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        return b"".join(parts)
