"""Prometheus metrics of accounting: windows finalised, energy settled, pass duration."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

_BY_REGISTRY: dict[int, AccountingMetrics] = {}


class AccountingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.windows = Counter(
            "gtx_accounting_windows",
            "Settlement windows that became final (one per meter and window)",
            registry=registry,
        )
        self.energy = Counter(
            "gtx_accounting_energy_wh", "Energy in final settlement windows, Wh", ["direction"], registry=registry
        )
        self.races = Counter(
            "gtx_accounting_races", "Accounting passes that lost a race with another accountant", registry=registry
        )
        self.pass_seconds = Histogram(
            "gtx_accounting_pass_seconds",
            "Duration of one accounting pass over the due meters",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            registry=registry,
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry | None = None) -> AccountingMetrics:
        """One set of collectors per registry (the default registry unless one is given)."""
        reg = registry if registry is not None else REGISTRY
        found = _BY_REGISTRY.get(id(reg))
        if found is None:
            found = _BY_REGISTRY[id(reg)] = cls(reg)
        return found
