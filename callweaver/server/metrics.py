"""Prometheus metrics of a serving process (prometheus-client), in a registry of their own so
that two apps in one process (tests) never share counters.

- ``callweaver_calls_total{transport, reason}``, ``callweaver_calls_active{transport}``
- ``callweaver_turns_total``, ``callweaver_stage_latency_seconds{stage}`` (a histogram per
  stage, seconds after the end of caller speech, voice-to-voice included)
- ``callweaver_dropped_frames_total{node, why}`` (overflow: caller audio dropped because a stage
  fell behind; stale: reply frames of an interrupted turn)
- ``callweaver_transport_errors_total{transport, kind}`` (malformed or out-of-order peer
  messages, counted and answered, never fatal to another call)
- ``callweaver_language_turns_total{locale}`` (caller turns by the locale a ``language``
  node put them in) and ``callweaver_language_switches_total{reason}`` (explicit, detected)
- the response caches of the process (:func:`~callweaver.services.cache.response.
  all_caches`), read at each scrape, labelled ``cache`` (the store): ``callweaver_cache_
  lookups_total``, ``..._hits_total{how}`` (exact, similar), ``..._misses_total``,
  ``..._learned_total``, ``..._refused_total{why}``, ``..._wrong_reports_total``,
  ``..._entries``, ``..._audio_bytes``, ``..._evictions_total``, ``..._shared`` (1 while a
  Redis store reaches Redis) and ``..._lookup_seconds{quantile}`` (p50, p95, p99 of the last
  2000 lookups)
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callweaver.pipelines.call import CallReport
from callweaver.runtime.latency import STAGES
from callweaver.services.cache.response import all_caches

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
        self.language_turns = Counter(
            "callweaver_language_turns", "Caller turns by locale", ["locale"], registry=r
        )
        self.language_switches = Counter(
            "callweaver_language_switches", "Calls moved to another language", ["reason"],
            registry=r,
        )  # fmt: skip
        r.register(_CacheCollector())

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
            for name in turn.metrics:
                if name.startswith("language.turn."):
                    self.language_turns.labels(name.removeprefix("language.turn.")).inc()
                elif name.startswith("language.switch."):
                    self.language_switches.labels(name.removeprefix("language.switch.")).inc()
        for node, stats in report.nodes.items():
            if stats.dropped_overflow:
                self.dropped.labels(node, "overflow").inc(stats.dropped_overflow)
            if stats.dropped_stale:
                self.dropped.labels(node, "stale").inc(stats.dropped_stale)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _CacheCollector(Collector):
    """The response caches' counters, read when scraped (see the module docstring)."""

    def collect(self) -> Iterator[Metric]:
        p = "callweaver_cache_"
        lookups = CounterMetricFamily(p + "lookups", "Response cache lookups", labels=["cache"])
        hits = CounterMetricFamily(p + "hits", "Lookups answered", labels=["cache", "how"])
        misses = CounterMetricFamily(p + "misses", "Lookups not answered", labels=["cache"])
        learned = CounterMetricFamily(p + "learned", "LLM replies kept", labels=["cache"])
        refused = CounterMetricFamily(
            p + "refused", "Replies not kept (personal data...)", labels=["cache", "why"]
        )
        wrong = CounterMetricFamily(p + "wrong_reports", "Hits reported wrong", labels=["cache"])
        evictions = CounterMetricFamily(p + "evictions", "Entries evicted", labels=["cache"])
        entries = GaugeMetricFamily(p + "entries", "Entries held here", labels=["cache"])
        audio = GaugeMetricFamily(p + "audio_bytes", "Reply audio held here", labels=["cache"])
        shared = GaugeMetricFamily(p + "shared", "1 while Redis is in use", labels=["cache"])
        latency = GaugeMetricFamily(
            p + "lookup_seconds", "Lookup time, recent", labels=["cache", "quantile"]
        )
        for name, cache in all_caches().items():
            stats = cache.stats()
            store = stats["store"] or {}
            lookups.add_metric([name], stats["lookups"])
            hits.add_metric([name, "exact"], stats["hits_exact"])
            hits.add_metric([name, "similar"], stats["hits_similar"])
            misses.add_metric([name], stats["misses"])
            learned.add_metric([name], stats["learned"])
            for why, count in stats["refused"].items():
                refused.add_metric([name, why], count)
            wrong.add_metric([name], stats["wrong_reports"])
            evictions.add_metric([name], store.get("evictions", 0))
            entries.add_metric([name], store.get("entries", stats["indexed"]))
            audio.add_metric([name], store.get("audio_bytes", 0))
            shared.add_metric([name], 1.0 if store.get("shared") else 0.0)
            for q, ms in stats["lookup_ms"].items():
                latency.add_metric([name, f"0.{q[1:]}"], ms / 1000)
        yield from (lookups, hits, misses, learned, refused, wrong, evictions, entries, audio,
                    shared, latency)  # fmt: skip
