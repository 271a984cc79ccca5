"""Prometheus metrics of ingest: record outcomes by reason, batch latency (receive → ack ready)."""

from __future__ import annotations

import weakref

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, IngestMetrics] = weakref.WeakKeyDictionary()

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "gtx_ingest_records",
            "Reading records by outcome: accepted, duplicate or the rejection reason",
            ["outcome"],
            registry=registry,
        )
        self.messages = Counter(
            "gtx_ingest_messages",
            "MQTT messages handled by ingest, by kind and result",
            ["kind", "result"],
            registry=registry,
        )
        self.latency = Histogram(
            "gtx_ingest_batch_seconds",
            "Time from receiving a readings batch to its ack being ready (verify + store)",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry | None = None) -> IngestMetrics:
        """One set of collectors per registry (the default registry unless one is given)."""
        reg = registry if registry is not None else REGISTRY
        found = _BY_REGISTRY.get(reg)
        if found is None:
            found = _BY_REGISTRY[reg] = cls(reg)
        return found

    def count_records(self, outcomes: dict[str, int]) -> None:
        for outcome, n in outcomes.items():
            self.records.labels(outcome=outcome).inc(n)

    def count_message(self, kind: str, result: str) -> None:
        self.messages.labels(kind=kind, result=result).inc()
