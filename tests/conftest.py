"""Fixtures shared by several test modules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_server import BINARY, SKIP_REASON, RedisServer


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A real ``redis-server`` of the test's own (skipped where none is installed, failing
    instead under ``CALLWEAVER_REQUIRE_REDIS=1``, as in ``.ci/run``)."""
    if BINARY is None:
        pytest.skip(SKIP_REASON)
    with RedisServer() as server:
        yield server
