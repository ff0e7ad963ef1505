"""Prometheus metrics of a serving process (prometheus-client), in a registry of their own so
that two apps in one process (tests) never share counters.

- ``callweaver_calls_total{transport, reason}``, ``callweaver_calls_active{transport}``
- ``callweaver_turns_total``, ``callweaver_stage_latency_seconds{stage}`` (a histogram per
  stage, seconds after the end of caller speech, voice-to-voice included)
- ``callweaver_dropped_frames_total{node, why}`` (overflow: caller audio dropped because a stage
  fell behind; stale: reply frames of an interrupted turn)
- ``callweaver_transport_errors_total{transport, kind}`` (malformed or out-of-order peer
  messages, counted and answered, never fatal to another call)
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from callweaver.pipelines.call import CallReport
from callweaver.runtime.latency import STAGES

_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0)


class Metrics:
    """The process's metrics; :meth:`record_call` folds a finished call's report in."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.calls = Counter("callweaver_calls", "Calls ended", ["transport", "reason"], registry=r)
        self.active = Gauge(
            "callweaver_calls_active", "Calls in progress", ["transport"], registry=r
        )
        self.turns = Counter("callweaver_turns", "Caller turns", registry=r)
        self.latency = Histogram(
            "callweaver_stage_latency_seconds",
            "Stage time after the end of caller speech",
            ["stage"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.dropped = Counter(
            "callweaver_dropped_frames", "Frames dropped", ["node", "why"], registry=r
        )
        self.transport_errors = Counter(
            "callweaver_transport_errors",
            "Malformed or out-of-order messages from a transport's peer",
            ["transport", "kind"],
            registry=r,
        )

    def record_call(self, transport: str, report: CallReport) -> None:
        self.calls.labels(transport, report.reason).inc()
        for turn in report.turns:
            self.turns.inc()
            for stage in STAGES[1:]:
                ms = turn.since_speech_end_ms(stage)
                if ms is not None:
                    self.latency.labels(stage.value).observe(ms / 1000)
            if (v2v := turn.voice_to_voice_ms) is not None:
                self.latency.labels("voice_to_voice").observe(v2v / 1000)
        for node, stats in report.nodes.items():
            if stats.dropped_overflow:
                self.dropped.labels(node, "overflow").inc(stats.dropped_overflow)
            if stats.dropped_stale:
                self.dropped.labels(node, "stale").inc(stats.dropped_stale)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
