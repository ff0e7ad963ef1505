"""The part every failover wrapper shares: which providers to try, in which order.

A request's candidates are the providers in order, less those that cannot speak its language
(``languages`` attribute; not a failure). Each candidate's circuit breaker
(:mod:`callweaver.services.health`, shared by every call of the process) is asked just before
it is tried: an open one is skipped at no cost. A provider that fails the request is blamed on
its breaker and the move reported as a :class:`Switch`.

After a switch, the provider that took over stays first for this wrapper's (the call's) later
requests until the breakers' ``reset_after_s`` has passed, then the configured order is tried
again (failback): a call does not pay a failing provider's timeout sentence after sentence,
whether or not enough failures have opened its shared breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from callweaver.services.health import CircuitBreaker, ProviderHealth, shared_health

P = TypeVar("P")

_WARM_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Switch:
    """The request left ``from_provider`` (for ``reason``) for ``to_provider`` (None: none
    was left)."""

    stage: str
    from_provider: str
    to_provider: str | None
    reason: str


SwitchObserver = Callable[[Switch], None]


_CANTONESE = ("yue", "zh-hk", "zh-mo", "zh-yue")


def _speaks(provider: object, language: str) -> bool:
    """Does ``provider`` serve ``language``? Its ``languages`` hold primary subtags ("en":
    every English) and full locales ("zh-HK"). Cantonese is not Chinese in general: a
    provider whose "zh" is Mandarin serves zh-HK, zh-MO and yue only if it lists one of them
    (or "yue")."""
    languages: frozenset[str] | None = getattr(provider, "languages", None)
    if not language or languages is None:
        return True
    wanted = language.lower()
    served = {lang.lower() for lang in languages}
    if wanted in served:
        return True
    if wanted.startswith(_CANTONESE):
        return "yue" in served or any(
            lang.startswith(("yue-", "zh-hk", "zh-mo")) for lang in served
        )
    return wanted.split("-")[0] in served


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return str(exc) or type(exc).__name__


class Failover(Generic[P]):
    """The part the three wrappers share: provider order, breakers, switch reports."""

    stage = "provider"

    def __init__(
        self,
        providers: Sequence[P],
        *,
        first_timeout_s: float,
        health: ProviderHealth | None = None,
        on_switch: SwitchObserver | None = None,
    ) -> None:
        if not providers:
            raise ValueError(f"a failover {self.stage} needs at least one provider")
        names = [self._name(p) for p in providers]
        if len(set(names)) != len(names):
            raise ValueError(f"provider names must differ (got {names}): give each a name:")
        self.providers = list(providers)
        self.first_timeout_s = first_timeout_s
        self.health = health or shared_health()
        self.on_switch = on_switch
        self.switches = 0
        self.name = "+".join(names)
        self._stuck: P | None = None  # after a switch: where requests start, until...
        self._stuck_until_ns = 0
        self.last_served: str | None = None
        """The name of the provider that served the last successful request."""

    @staticmethod
    def _name(provider: P) -> str:
        name: str = getattr(provider, "name")  # noqa: B009 - the protocols' attribute
        return name

    @property
    def languages(self) -> frozenset[str] | None:
        """What at least one provider speaks (None: any)."""
        found: set[str] = set()
        for p in self.providers:
            langs: frozenset[str] | None = getattr(p, "languages", None)
            if langs is None:
                return None
            found |= langs
        return frozenset(found)

    def _candidates(self, language: str, attempts: list[tuple[str, str]]) -> list[P]:
        """Providers that may take the request, in order; the others noted in attempts.
        Breakers are asked lazily in :meth:`_admit`, so a half-open probe is only reserved
        for the provider that is actually tried."""
        out = []
        for p in self._order():
            if _speaks(p, language):
                out.append(p)
            else:
                attempts.append((self._name(p), f"does not speak {language}"))
        return out

    def _order(self) -> list[P]:
        """The providers in the order to try: the configured one, except that after a switch
        the provider that took over goes first until the breakers' ``reset_after_s`` has
        passed (a call does not bounce back to a provider that just failed it); then the
        configured order is tried again (failback)."""
        stuck = self._stuck
        if stuck is None:
            return self.providers
        if self.health.clock.now_ns() >= self._stuck_until_ns:
            self._stuck = None
            return self.providers
        return [stuck, *(p for p in self.providers if p is not stuck)]

    def _succeeded(self, provider: P, breaker: CircuitBreaker, switched: bool) -> None:
        breaker.record_success()
        self.last_served = self._name(provider)
        if switched and provider is not self.providers[0]:
            self._stuck = provider
            reset_ns = int(self.health.policy.reset_after_s * 1_000_000_000)
            self._stuck_until_ns = self.health.clock.now_ns() + reset_ns

    def _admit(self, provider: P, attempts: list[tuple[str, str]]) -> CircuitBreaker | None:
        breaker = self.health.breaker(self._name(provider))
        if breaker.allow():
            return breaker
        attempts.append((self._name(provider), f"circuit {breaker.state.value}"))
        return None

    def _failed(
        self,
        provider: P,
        breaker: CircuitBreaker,
        exc: BaseException,
        attempts: list[tuple[str, str]],
        rest: Sequence[P],
    ) -> None:
        breaker.record_failure(exc)
        reason = _reason(exc)
        attempts.append((self._name(provider), reason))
        self.switches += 1
        if self.on_switch is not None:
            nxt = self._name(rest[0]) if rest else None
            self.on_switch(Switch(self.stage, self._name(provider), nxt, reason))

    async def warm(self, timeout_s: float = _WARM_TIMEOUT_S) -> None:
        """Open every provider's connection ahead of the first request (their ``warm``
        methods, at once), so that the call's first turn pays no handshake. Best effort,
        bounded by ``timeout_s``: a provider that cannot be reached now is not blamed for it
        (its breaker is untouched); the first real request finds out."""
        warmers = [w for p in self.providers if (w := getattr(p, "warm", None)) is not None]
        if not warmers:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*(w() for w in warmers), return_exceptions=True)

    async def aclose(self) -> None:
        for p in self.providers:
            with contextlib.suppress(Exception):
                await getattr(p, "aclose")()  # noqa: B009
