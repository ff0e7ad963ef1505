"""A reply's text as it is written, kept so that more than one TTS provider can read it.

:class:`~.failover.FailoverTTS` speaks a text stream (an LLM's tokens) with one provider at a
time; when that provider fails, the next one must get what the first had already been sent,
then the rest as it comes. :class:`TextStream` is that record: one task (:meth:`pump`) reads
the source, every reader (:meth:`read`) replays the text from where it starts and then
follows it live. A reader can be cancelled at any point without harming the source or the
other readers (providers are abandoned on timeouts and barge-in).

A provider that cannot take a text stream still serves one, a sentence at a time
(:func:`by_sentence`). After a failure in the middle of the speech, the next provider starts
at the next sentence boundary after what the caller heard (:func:`resume_at`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from callweaver.services.tts import TTS, Speech
from callweaver.text.sentences import SentenceSplitter

CHARS_PER_S = 15.0
"""Speaking rate assumed for a provider that does not say which text its audio speaks."""


class TextStream:
    """The text of one utterance, growing (see the module docstring)."""

    def __init__(self, source: AsyncIterator[str]) -> None:
        self.text = ""
        self.ended = False
        self._source = source
        self._changed = asyncio.Event()
        self._watchers: list[Callable[[], None]] = []

    async def pump(self) -> None:
        """Read the source to its end (run as a task owned by the stream's consumer); if the
        source fails, its text ends there."""
        try:
            async for piece in self._source:
                if piece:
                    self.text += piece
                    self._notify()
        finally:
            self.ended = True
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()
        for watcher in list(self._watchers):
            watcher()

    def watch(self, watcher: Callable[[], None]) -> Callable[[], None]:
        """Call ``watcher`` on every change; returns the function that stops it."""
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher) if watcher in self._watchers else None

    async def changed(self) -> None:
        await self._changed.wait()

    def speakable_from(self, start: int) -> bool:
        """Is there something to speak from ``start`` (a complete sentence, or the end)?
        From then on a provider owes its first audio."""
        if self.ended:
            return True
        return bool(SentenceSplitter().push(self.text[start:]))

    async def read(self, start: int = 0) -> AsyncIterator[str]:
        """The text from ``start``: what is there at once, then each new piece."""
        pos = start
        while True:
            if pos < len(self.text):
                piece, pos = self.text[pos:], len(self.text)
                yield piece
            elif self.ended:
                return
            else:
                await self.changed()


def boundaries(text: str) -> list[int]:
    """Where the complete sentences of ``text`` end (offsets after their last character); 0,
    the start, is a boundary too."""
    out = [0]
    pos = 0
    for sentence in SentenceSplitter().push(text):
        pos = text.index(sentence, pos) + len(sentence)
        out.append(pos)
    return out


async def resume_at(stream: TextStream, heard: int) -> int:
    """Where a provider taking over should start: the first sentence boundary at or after
    ``heard`` (offset into the text); waits for the sentence in progress to be written. At
    the end of the text, its length (nothing is left)."""
    while True:
        found = [b for b in boundaries(stream.text) if b >= heard]
        if found:
            return found[0]
        if stream.ended:
            return len(stream.text)
        await stream.changed()


def heard_chars(chunks: list[Speech]) -> int:
    """How much of the text the delivered ``chunks`` spoke: their alignment when the
    provider gave one, else their duration at :data:`CHARS_PER_S`."""
    aligned = sum(len(s.text) for s in chunks)
    if aligned:
        return aligned
    return round(sum(s.duration_s for s in chunks) * CHARS_PER_S)


async def by_sentence(tts: TTS, texts: AsyncIterator[str], language: str) -> AsyncIterator[Speech]:
    """Speak a text stream with a provider that takes whole sentences, each as soon as it is
    complete."""
    splitter = SentenceSplitter()
    ended = False
    while not ended:
        piece = await anext(texts, None)
        if piece is None:
            ended = True
            sentences = splitter.flush()
        else:
            sentences = splitter.push(piece)
        for sentence in sentences:
            audio = tts.synthesize(sentence, language)
            try:
                async for speech in audio:
                    yield speech
            finally:  # at once, also when the consumer leaves mid-sentence
                closer = getattr(audio, "aclose", None)
                if closer is not None:
                    await closer()
