"""Provider health: one circuit breaker per provider, shared by every call of the process.

A breaker is *closed* while its provider works. ``failure_threshold`` retryable failures in a
row open it: calls skip the provider (a failover wrapper moves straight to the next one)
instead of each paying a timeout. After ``reset_after_s`` it is *half open*: up to
``half_open_probes`` requests may try the provider again; a success closes the breaker (the
provider is back: failback), a failure opens it for another ``reset_after_s``. A failure that
retrying cannot fix (``ProviderError.retryable`` is False: a bad key, an unknown voice) opens
it at once, and the reason stays visible in :meth:`CircuitBreaker.snapshot` for ``/health``.

Time comes from an injectable clock, so tests run on virtual time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from callweaver.errors import ProviderError
from callweaver.runtime.clock import Clock, MonotonicClock

_NS = 1_000_000_000


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a provider's breaker opens and when it is tried again."""

    failure_threshold: int = 3
    reset_after_s: float = 30.0
    half_open_probes: int = 1

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.half_open_probes < 1 or self.reset_after_s <= 0:
            raise ValueError("failure_threshold and half_open_probes >= 1, reset_after_s > 0")


class CircuitBreaker:
    """One provider's breaker (see the module docstring)."""

    def __init__(
        self, name: str, policy: BreakerPolicy | None = None, clock: Clock | None = None
    ) -> None:
        self.name = name
        self.policy = policy or BreakerPolicy()
        self.clock = clock or MonotonicClock()
        self._state = BreakerState.CLOSED
        self._failures = 0  # in a row
        self._opened_at = 0
        self._probes = 0  # half-open requests in flight
        self.last_error: str | None = None
        self.open_reason: str | None = None
        """Why the breaker last opened (kept after it closes, for ``/health``)."""
        self.successes = 0
        self.failures = 0
        self.rejected = 0

    @property
    def state(self) -> BreakerState:
        if (
            self._state is BreakerState.OPEN
            and self.clock.now_ns() - self._opened_at >= self.policy.reset_after_s * _NS
        ):
            self._state, self._probes = BreakerState.HALF_OPEN, 0
        return self._state

    def allow(self) -> bool:
        """May a request go to this provider now? A True in half-open state reserves one of
        the probes: the caller must report its outcome."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.HALF_OPEN and self._probes < self.policy.half_open_probes:
            self._probes += 1
            return True
        self.rejected += 1
        return False

    def release(self) -> None:
        """A request that :meth:`allow` let through ended with no verdict (the caller
        abandoned it): its half-open probe slot is free again."""
        if self._state is BreakerState.HALF_OPEN and self._probes:
            self._probes -= 1

    def record_success(self) -> None:
        self.successes += 1
        self._failures = 0
        if self._state is not BreakerState.CLOSED:
            self._state, self._probes = BreakerState.CLOSED, 0

    def record_failure(self, error: BaseException) -> None:
        self.failures += 1
        self._failures += 1
        self.last_error = f"{type(error).__name__}: {error}"
        permanent = isinstance(error, ProviderError) and not error.retryable
        if permanent:
            why = "an error no retry can fix"
        elif self.state is BreakerState.HALF_OPEN:
            why = "the half-open probe failed"
        elif self._failures >= self.policy.failure_threshold:
            why = f"{self._failures} failures in a row"
        else:
            return
        self._state, self._probes = BreakerState.OPEN, 0
        self._opened_at = self.clock.now_ns()
        self.open_reason = f"{why}: {self.last_error}"

    def snapshot(self) -> dict[str, Any]:
        """The breaker as plain data, for ``/health`` and metrics."""
        return {
            "name": self.name,
            "state": self.state.value,
            "failures_in_a_row": self._failures,
            "successes": self.successes,
            "failures": self.failures,
            "rejected": self.rejected,
            "last_error": self.last_error,
            "open_reason": self.open_reason,
        }


class ProviderHealth:
    """The process's breakers, by provider name; created on first use."""

    def __init__(self, policy: BreakerPolicy | None = None, clock: Clock | None = None) -> None:
        self.policy = policy or BreakerPolicy()
        self.clock = clock or MonotonicClock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def breaker(self, name: str) -> CircuitBreaker:
        found = self._breakers.get(name)
        if found is None:
            found = self._breakers[name] = CircuitBreaker(name, self.policy, self.clock)
        return found

    def snapshot(self) -> list[dict[str, Any]]:
        return [b.snapshot() for b in self._breakers.values()]


_process_health: ProviderHealth | None = None


def shared_health() -> ProviderHealth:
    """The process's breakers: every call's failover wrappers share them, so a provider that
    fails for one call is skipped by the others instead of each paying a timeout."""
    global _process_health
    if _process_health is None:
        _process_health = ProviderHealth()
    return _process_health
