"""Failover of a stream whose first item must come in time: LLM tokens, TTS audio.

The request goes to the first provider that may take it; an error, or no first result
within the first-result timeout (the first token, the first audio chunk), or first items
that fail the wrapper's check, moves the same request to the next provider: the caller hears
no gap beyond that timeout. Once a stream has delivered its first result the request stays
with that provider: a later failure is recorded on its breaker and raised (the pieces already
spoken cannot be taken back, and repeating them on another provider would be worse).

Hedging (``hedge_after_s``): when the provider has sent no first result after that long, the
next one starts on the same request too; the first to pass wins, the other is cancelled and
its cost counted.

:class:`FailoverLLM` is the plain case: an :class:`~callweaver.services.llm.LLM` whose timeout
is on the first token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from callweaver.errors import ProviderError, ProvidersExhausted
from callweaver.services.failover.base import Failover
from callweaver.services.health import CircuitBreaker
from callweaver.services.llm import LLM, Message

P = TypeVar("P")


@dataclass(slots=True)
class _Opened:
    """A provider's stream whose first items arrived in time and passed the check."""

    stream: AsyncIterator[Any]
    first: list[Any]
    done: bool


class _StreamFailover(Failover[P]):
    """LLM and TTS: a stream whose first item must come within the timeout.

    With ``hedge_after_s`` set, a provider with no first result after that long gets
    company: the next provider starts on the same request too, and whichever passes first
    wins; the other is cancelled (its stream closed) and counted in :attr:`hedges_lost`
    and :attr:`hedge_cost_chars` (text sent to a provider whose audio was thrown away)."""

    hedge_after_s: float | None = None

    def __init__(self, providers: Sequence[P], **kwargs: Any) -> None:
        super().__init__(providers, **kwargs)
        self.hedges = 0
        self.hedges_lost = 0
        self.hedge_cost_chars = 0

    def _open(self, provider: P, request: Any) -> AsyncIterator[Any]:
        raise NotImplementedError

    def _check(self, first: list[Any], done: bool) -> str | None:
        """A problem with the stream's first items (None: let them through)."""
        return None

    def _enough(self, first: list[Any]) -> bool:
        """Have enough items arrived to judge the stream?"""
        return True

    def _cost(self, request: Any) -> int:
        """What a thrown-away request cost, in characters."""
        return 0

    def _hedgeable(self, request: Any) -> bool:
        return True

    def _arm(self, request: Any, timer: asyncio.Timeout) -> Callable[[], None]:
        """Start the first-result timeout (now, by default); returns what undoes the arming."""
        timer.reschedule(asyncio.get_running_loop().time() + self.first_timeout_s)
        return lambda: None

    async def _acquire(self, provider: P, request: Any) -> _Opened:
        """Open ``provider``'s stream and wait for its first items (within the timeout) and
        their check; on any failure or cancellation the stream is closed."""
        stream = self._open(provider, request)
        first: list[Any] = []
        done = False
        disarm: Callable[[], None] = lambda: None  # noqa: E731
        try:
            async with asyncio.timeout(None) as timer:
                disarm = self._arm(request, timer)
                while not self._enough(first):
                    try:
                        first.append(await anext(stream))
                    except StopAsyncIteration:
                        done = True
                        break
            problem = self._check(first, done)
            if problem is not None:
                raise ProviderError(self._name(provider), problem, retryable=True)
        except BaseException:
            await _close(stream)
            raise
        finally:
            disarm()
        return _Opened(stream, first, done)

    async def _stream(
        self,
        request: Any,
        language: str,
        *,
        skip: Sequence[P] = (),
        on_winner: Callable[[P], None] | None = None,
    ) -> AsyncIterator[Any]:
        """The request's items from the first provider that delivers (module docstring);
        ``skip``: providers not to try (they failed this request already); ``on_winner`` is
        told which provider delivers."""
        attempts: list[tuple[str, str]] = []
        candidates = [p for p in self._candidates(language, attempts) if p not in skip]
        queue = list(enumerate(candidates))  # (index among the candidates, provider)
        running: dict[asyncio.Task[_Opened], tuple[int, P, CircuitBreaker]] = {}
        winner: tuple[int, P, CircuitBreaker, _Opened] | None = None

        def start_next() -> bool:
            while queue:
                i, provider = queue.pop(0)
                breaker = self._admit(provider, attempts)
                if breaker is not None:
                    task = asyncio.ensure_future(self._acquire(provider, request))
                    running[task] = (i, provider, breaker)
                    return True
            return False

        try:
            start_next()
            while running and winner is None:
                hedge = None
                if len(running) == 1 and queue and self._hedgeable(request):
                    hedge = self.hedge_after_s
                done, _ = await asyncio.wait(
                    running, timeout=hedge, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:  # no first result yet: hedge with the next provider
                    if start_next():
                        self.hedges += 1
                    continue
                for task in done:
                    i, provider, breaker = running.pop(task)
                    exc = task.exception()
                    if exc is None and winner is None:
                        winner = (i, provider, breaker, task.result())
                    elif exc is None:  # a second success in the same instant: not needed
                        await _close(task.result().stream)
                        breaker.release()
                    else:
                        # the request is still with a hedge, or goes to the next in line
                        rest = [p for _, p, _ in running.values()] or [p for _, p in queue]
                        self._failed(provider, breaker, exc, attempts, rest)
                if winner is None and not running:
                    start_next()
        finally:
            for task, (_, _, breaker) in running.items():  # hedges that lost, or abandoned
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                breaker.release()
                if winner is not None:
                    self.hedges_lost += 1
                    self.hedge_cost_chars += self._cost(request)
            running.clear()
        if winner is None:
            raise ProvidersExhausted(self.stage, attempts)
        i, provider, breaker, opened = winner
        if on_winner is not None:
            on_winner(provider)
        # the stream is this provider's now
        try:
            for item in opened.first:
                yield item
            if not opened.done:
                async for item in opened.stream:
                    yield item
        except (Exception, TimeoutError) as exc:
            breaker.record_failure(exc)
            raise
        except BaseException:  # the consumer went away (barge-in): the provider worked
            self._succeeded(provider, breaker, switched=i > 0)
            raise
        finally:
            await _close(opened.stream)
        self._succeeded(provider, breaker, switched=i > 0)


_CLOSE_TIMEOUT_S = 1.0


async def _close(stream: AsyncIterator[Any]) -> None:
    """Close a provider's stream; one that takes longer than a second to close is left to
    the garbage collector rather than holding up the next provider."""
    closer = getattr(stream, "aclose", None)
    if closer is not None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(_CLOSE_TIMEOUT_S):
                await closer()


class FailoverLLM(_StreamFailover[LLM]):
    """An LLM over several; the timeout is on the first token. An empty reply is a
    failure."""

    stage = "llm"

    def _open(self, provider: LLM, request: Any) -> AsyncIterator[str]:
        return provider.stream(request)

    def _enough(self, first: list[Any]) -> bool:
        return any(piece.strip() for piece in first)

    def _check(self, first: list[Any], done: bool) -> str | None:
        return "empty reply" if not any(piece.strip() for piece in first) else None

    def stream(self, messages: Sequence[Message]) -> AsyncIterator[str]:
        return self._stream(messages, "")
