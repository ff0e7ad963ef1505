"""Provider circuit breakers, on virtual time."""

import pytest

from callweaver.errors import ProviderError
from callweaver.runtime.clock import VirtualClock
from callweaver.services.health import BreakerPolicy, BreakerState, ProviderHealth

TIMEOUT = ProviderError("azure", "no audio within 1.5 s", retryable=True)
BAD_KEY = ProviderError("azure", "401 Unauthorized", retryable=False)


def health() -> tuple[ProviderHealth, VirtualClock]:
    clock = VirtualClock()
    return ProviderHealth(BreakerPolicy(failure_threshold=3, reset_after_s=10), clock), clock


async def test_opens_after_failures_in_a_row_and_rejects_meanwhile() -> None:
    providers, _ = health()
    b = providers.breaker("azure")
    for _ in range(2):
        assert b.allow()
        b.record_failure(TIMEOUT)
    b.record_success()  # a success in between resets the count
    for _ in range(3):
        assert b.allow()
        b.record_failure(TIMEOUT)
    assert b.state is BreakerState.OPEN
    assert not b.allow() and not b.allow()
    assert b.snapshot()["rejected"] == 2
    assert providers.breaker("azure") is b  # one per provider, shared


async def test_half_open_probe_fails_back_on_success() -> None:
    providers, clock = health()
    b = providers.breaker("google")
    for _ in range(3):
        b.record_failure(TIMEOUT)
    await clock.advance(9.9)
    assert b.state is BreakerState.OPEN
    await clock.advance(0.1)
    assert b.state is BreakerState.HALF_OPEN
    assert b.allow()  # the one probe
    assert not b.allow()  # others keep skipping it while the probe is out
    b.record_success()
    assert b.state is BreakerState.CLOSED
    assert b.allow()


async def test_a_failed_probe_opens_it_for_another_period() -> None:
    providers, clock = health()
    b = providers.breaker("eleven")
    for _ in range(3):
        b.record_failure(TIMEOUT)
    await clock.advance(10)
    assert b.allow()
    b.record_failure(TIMEOUT)
    assert b.state is BreakerState.OPEN
    await clock.advance(5)
    assert not b.allow()
    await clock.advance(5)
    assert b.state is BreakerState.HALF_OPEN


async def test_an_error_retrying_cannot_fix_opens_it_at_once_and_says_why() -> None:
    providers, _ = health()
    b = providers.breaker("azure")
    b.record_failure(BAD_KEY)
    assert b.state is BreakerState.OPEN
    (snap,) = providers.snapshot()
    assert snap["state"] == "open"
    assert snap["last_error"] == "ProviderError: azure: 401 Unauthorized"


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(failure_threshold=0)
