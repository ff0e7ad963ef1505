"""The cache store benchmark still runs (a tenth of the entries, 200 calls per operation, a
real redis-server) and reports each of its figures."""

import pytest
from redis_server import BINARY, SKIP_REASON

from bench.cache_store import main


@pytest.mark.skipif(BINARY is None, reason=SKIP_REASON)
def test_quick_run_reports_memory_latency_and_degraded_mode(capsys) -> None:  # type: ignore[no-untyped-def]
    main(["--quick"])
    printed = capsys.readouterr().out
    assert "per 10 000 entries" in printed and "1000 entries measured" in printed
    assert "| redis: get_entry, another worker's (a round trip) |" in printed
    assert "| Redis down: put_entry (local) |" in printed
    assert "sharing resumed" in printed
