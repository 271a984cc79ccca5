"""The accounting service over the in-memory store (test_accounting_pg runs it on PostgreSQL)."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from central.accounting import DEFAULT_WINDOW_MS, MeterReading, close_windows
from central.accounting.metrics import AccountingMetrics
from central.accounting.service import AccountingService
from central.accounting.store import InMemoryAccountingStore
from tests.central.accounting.window_reference import streams

W = DEFAULT_WINDOW_MS
T0 = 1_800_000_000_000 - 1_800_000_000_000 % W


def rd(seq: int, ts: int, exp: int) -> MeterReading:
    return MeterReading(ts, seq, 0, exp, 0, hashlib.sha256(f"{seq}:{ts}:{exp}".encode()).digest())


async def test_windows_become_final_as_readings_arrive_and_exactly_once() -> None:
    store = InMemoryAccountingStore()
    meter, owner = uuid.uuid4(), uuid.uuid4()
    store.owners[meter] = owner
    registry = CollectorRegistry()
    svc = AccountingService(store, metrics=AccountingMetrics.for_registry(registry))
    assert await svc.run_once() == 0
    store.add_reading(meter, rd(1, T0 + 1000, 100))
    store.add_reading(meter, rd(2, T0 + W - 1, 200))
    assert await svc.run_once() == 0  # nothing at or after the window end yet
    store.add_reading(meter, rd(3, T0 + 2 * W + 5, 400))
    assert await svc.run_once() == 2
    assert await svc.run_once() == 0
    store.add_reading(meter, rd(3, T0 + 2 * W + 5, 400))  # duplicate delivery
    assert await svc.run_once() == 0
    store.add_reading(meter, rd(4, T0 + 3 * W, 500))
    assert await svc.run_once() == 1
    total = sum(w.window.export_wh for w in store.windows.values())
    assert total == 500 - 100
    assert {w.owner_id for w in store.windows.values()} == {owner}
    assert registry.get_sample_value("gtx_accounting_windows_total") == 3
    assert registry.get_sample_value("gtx_accounting_energy_wh_total", {"direction": "export"}) == 400


async def test_meters_without_owner_are_not_accounted() -> None:
    store = InMemoryAccountingStore()
    meter = uuid.uuid4()
    store.add_reading(meter, rd(1, T0, 0))
    store.add_reading(meter, rd(2, T0 + W, 10))
    assert await AccountingService(store).run_once() == 0


@given(streams(), st.sampled_from([W, 2 * W, 7 * W]))
@settings(max_examples=60, deadline=None)
def test_bounded_horizon_passes_equal_one_shot(readings: list[MeterReading], horizon: int) -> None:
    """Each pass loads only a complete prefix of the meter's readings (up to the first at/after start + horizon);
    repeated passes give exactly the windows of settling everything at once."""
    store = InMemoryAccountingStore()
    meter, owner = uuid.uuid4(), uuid.uuid4()
    store.owners[meter] = owner
    for r in readings:
        store.add_reading(meter, r)
    svc = AccountingService(store, horizon_ms=horizon, metrics=AccountingMetrics.for_registry(CollectorRegistry()))

    async def run() -> None:
        while await svc.run_once():
            pass

    asyncio.run(run())
    got = [store.windows[k].window for k in sorted(store.windows)]
    assert got == list(close_windows(readings).windows)
