"""Reporting failover switches from a stage node: a log line with the call id, a
``failover.<stage>.<provider>`` metric, and a note on the turn (the latency table's
``failover`` column) per switch."""

from __future__ import annotations

import logging

from callweaver.runtime.processor import Processor
from callweaver.services.failover import Switch

log = logging.getLogger("callweaver.failover")


async def report_switches(node: Processor, switches: list[Switch], turn: int) -> None:
    """Report and clear ``switches`` (the list a failover wrapper's ``on_switch`` fills)."""
    done, switches[:] = list(switches), []
    for s in done:
        log.warning(
            "call %s turn %d: %s provider %s failed (%s), next: %s",
            node.ctx.call_id,
            turn,
            s.stage,
            s.from_provider,
            s.reason,
            s.to_provider or "none",
        )
        node.ctx.latency.switch(turn, s.stage, s.from_provider, s.to_provider)
        await node.emit_metric(f"failover.{s.stage}.{s.from_provider}", 1.0, turn)
