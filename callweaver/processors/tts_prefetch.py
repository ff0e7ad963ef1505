"""The ``tts`` node's prefetch: reply sentences made ahead of need, while the node is idle.

Upstream nodes send a :class:`~callweaver.frames.text.PrefetchFrame` with reply texts likely
to be said soon; the node hands them to its :class:`SpeechPrefetch`, which splits them into
sentences and makes the ones its audio cache does not hold, one at a time, with the node's
first provider (the cache's voice; never a failover provider), only while no reply is being
spoken: a reply that starts cancels the synthesis in flight, which goes back to the front of
the queue. The process's budget for the voice (:mod:`callweaver.services.cache.prefetch`)
decides when: a refused sentence waits until the window moves. A provider error, or audio
that is not speech, is counted and the sentence dropped; the call never hears of it.

At the end of the call the ``preload`` sentences (start-up: the server's warm call) are
finished, within a time limit, whether or not a reply was still under way; the others are
dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from callweaver.audio.levels import speech_problem
from callweaver.audio.resample import Resampler
from callweaver.errors import ProviderError
from callweaver.services.cache.prefetch import Prefetcher
from callweaver.services.cache.speech import SpeechCache
from callweaver.services.tts import TTS
from callweaver.text.sentences import split_sentences

log = logging.getLogger("callweaver.tts")

_MAX_DEFER_SLEEP_S = 1.0  # a deferred sentence looks at the budget at least this often


@dataclass(frozen=True, slots=True)
class _Sentence:
    text: str
    language: str
    preload: bool


class SpeechPrefetch:
    """See the module docstring. Owned by one ``tts`` node, which says when a reply starts
    (:meth:`busy`) and ends (:meth:`idle`), and calls :meth:`finish` at the end of the call
    and :meth:`aclose` when it closes. Its one task is made on the first :meth:`add`."""

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
        self._replying: int | None = None  # the turn whose reply is being spoken
        self._task: asyncio.Task[None] | None = None
        self._making: asyncio.Task[bytes] | None = None
        self._current: _Sentence | None = None  # what _making makes
        self._ending = False
        self._deferred: set[str] = set()

    def add(self, texts: Iterable[str], language: str, *, preload: bool) -> None:
        """Queue the sentences of ``texts`` not queued yet, and start working when idle. A
        sentence asked for again with ``preload`` becomes a preload."""
        queued = {s.text: i for i, s in enumerate(self.queue)}
        for text in texts:
            for sentence in split_sentences(text):
                at = queued.get(sentence)
                if at is None:
                    queued[sentence] = len(self.queue)
                    self.queue.append(_Sentence(sentence, language, preload))
                elif preload and not self.queue[at].preload:
                    self.queue[at] = _Sentence(sentence, self.queue[at].language, True)
        if self.queue and self._task is None and not self._ending:
            self._task = asyncio.ensure_future(self._run())

    def busy(self, turn: int) -> None:
        """A reply of ``turn`` is being spoken: stop, and cancel the synthesis in flight."""
        if self._replying is None or turn >= self._replying:
            self._replying = turn
        self._idle.clear()
        if self._making is not None and not self._making.done():
            self._making.cancel()

    def idle(self, turn: int | None = None) -> None:
        """The reply of ``turn`` has ended (None: whatever reply, e.g. a barge-in cut it); an
        end of an older turn's reply does not end a newer one's."""
        if turn is None or self._replying is None or turn >= self._replying:
            self._replying = None
            self._idle.set()

    async def finish(self, timeout_s: float) -> None:
        """The call ends: finish the ``preload`` sentences (at most ``timeout_s``, even if a
        reply was still under way), drop the rest, then :meth:`aclose`. Once: a second call
        (a node ended, then closed) only closes."""
        if self._ending:
            await self.aclose()
            return
        self._ending = True
        self.queue = deque(s for s in self.queue if s.preload)
        current = self._current
        if current is not None and not current.preload and self._making is not None:
            self._making.cancel()  # a prediction: no one will be on this call to hear it
        self._replying = None
        self._idle.set()
        task = self._task
        if task is not None and (self.queue or (current is not None and current.preload)):
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout_s)
            except TimeoutError:
                log.warning(
                    "prefetch: %d start-up sentence(s) not made within %.0f s (budget or "
                    "a slow voice)",
                    len(self.queue) + (self._current is not None),
                    timeout_s,
                )
            except Exception:  # the worker broke: the call's end goes on regardless
                log.exception("prefetch: the worker failed")
        await self.aclose()

    async def aclose(self) -> None:
        """Stop at once: cancel the task and the synthesis in flight, drop the queue."""
        self.queue.clear()
        tasks = [t for t in (self._task, self._making) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    async def _run(self) -> None:
        counters, budget = self.prefetcher.counters, self.prefetcher.budget
        try:
            while self.queue:
                await self._idle.wait()
                if not self.queue:  # dropped meanwhile (the call ended)
                    break
                item = self.queue[0]
                held = await self.speech.has(item.text)
                if not self.queue or self.queue[0] is not item:
                    continue  # the queue changed meanwhile
                if held:
                    self.queue.popleft()
                    counters["already_held"] += 1
                    continue
                if not self._idle.is_set():
                    continue  # a reply started meanwhile
                chars = len(item.text)
                if not item.preload and not budget.fits(chars):  # never within the budget
                    self.queue.popleft()
                    counters["deferred_by_budget"] += 1
                    continue
                if not budget.allows(chars, preload=item.preload):
                    if item.text not in self._deferred:
                        self._deferred.add(item.text)
                        counters["deferred_by_budget"] += 1
                    pause = min(max(budget.retry_in_s(), 0.05), _MAX_DEFER_SLEEP_S)
                    await asyncio.sleep(pause)
                    continue
                key = self.speech.key(item.text)
                self.queue.popleft()
                if not self.prefetcher.claim(key):  # another call is making it now
                    counters["already_held"] += 1
                    continue
                try:
                    await self._make_one(item)
                finally:
                    self.prefetcher.release(key)
        finally:
            self._task = None

    async def _make_one(self, item: _Sentence) -> None:
        counters = self.prefetcher.counters
        started = time.perf_counter()
        making = self._making = asyncio.ensure_future(self._synthesize(item))
        self._current = item
        try:
            await asyncio.wait({making})
        finally:
            self._making = self._current = None
            if not making.done():  # this task was cancelled: the node closes
                making.cancel()
                await asyncio.gather(making, return_exceptions=True)
            self.prefetcher.budget.spend(len(item.text), time.perf_counter() - started)
        if making.cancelled():
            if not self._ending:  # a reply started: again later, first
                self.queue.appendleft(item)
                counters["interrupted"] += 1
            return
        exc = making.exception()
        if exc is not None:
            counters["failed"] += 1
            if isinstance(exc, ProviderError):
                log.info("prefetch of %r failed: %s", item.text[:40], exc)
            else:
                log.warning("prefetch of %r failed", item.text[:40], exc_info=exc)
            return
        pcm = making.result()
        problem = speech_problem(pcm, self.rate, final=True)
        if problem is not None:
            counters["failed"] += 1
            log.info("prefetch of %r not kept: %s", item.text[:40], problem)
            return
        await self.speech.put(item.text, pcm)
        counters["prefetched"] += 1

    async def _synthesize(self, item: _Sentence) -> bytes:
        """The sentence's audio at :attr:`rate`, resampled as the node plays it (one
        resampler over the chunks, not one per chunk)."""
        parts: list[bytes] = []
        resampler: Resampler | None = None
        audio = self.provider.synthesize(item.text, item.language)
        try:
            async for speech in audio:
                if speech.sample_rate == self.rate:
                    parts.append(speech.pcm)
                    continue
                if resampler is None or resampler.in_rate != speech.sample_rate:
                    resampler = Resampler(speech.sample_rate, self.rate)
                parts.append(resampler.process(speech.pcm))
            if resampler is not None:
                parts.append(resampler.flush())
        finally:  # at once: a provider's connection may hang on it
            closer = getattr(audio, "aclose", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
        return b"".join(parts)
