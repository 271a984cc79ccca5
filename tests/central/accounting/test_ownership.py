"""The ownership rule (``central.accounting.ownership``) and the in-memory store applying it; the PostgreSQL adapter
is covered with real claims and readings in test_ownership_pg."""

from __future__ import annotations

import hashlib
import uuid

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from central.accounting import DEFAULT_WINDOW_MS, MeterReading
from central.accounting.metrics import AccountingMetrics
from central.accounting.ownership import OwnershipPeriod, instant, owner_at_end
from central.accounting.service import AccountingService
from central.accounting.store import InMemoryAccountingStore

W = DEFAULT_WINDOW_MS
T0 = 1_800_000_000_000 - 1_800_000_000_000 % W
A, B, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def rd(seq: int, ts: int, exp: int) -> MeterReading:
    return MeterReading(ts, seq, 0, exp, 0, hashlib.sha256(f"{seq}:{ts}:{exp}".encode()).digest())


def test_owner_at_window_end() -> None:
    periods = [
        OwnershipPeriod(A, instant(T0 + 100), instant(T0 + W)),  # released exactly at a window end
        OwnershipPeriod(B, instant(T0 + 3 * W + 7), instant(T0 + 5 * W + 1)),
        OwnershipPeriod(C, instant(T0 + 6 * W), None),
    ]
    assert owner_at_end(periods, T0) == A  # before the first claim: the first claimant
    assert owner_at_end(periods, T0 + W) == A  # ends exactly at the release: measured while A held it
    assert owner_at_end(periods, T0 + 2 * W) == B  # nobody held it: the next claimant
    assert owner_at_end(periods, T0 + 3 * W + 7) == B  # ends exactly at the claim: the next claimant
    assert owner_at_end(periods, T0 + 5 * W) == B
    assert owner_at_end(periods, T0 + 6 * W) == C
    assert owner_at_end(periods, T0 + 60 * W) == C
    assert owner_at_end(periods[:2], T0 + 6 * W) is None  # released, nobody since: no owner yet
    assert owner_at_end([], T0) is None


@given(st.lists(st.integers(1, 10 * W), min_size=2, max_size=12), st.booleans(), st.integers(0, 60 * W))
def test_owner_at_end_is_the_holder_else_the_next_claimant(steps: list[int], still_owned: bool, end: int) -> None:
    # consecutive claim/release instants (ms), alternating, with distinct owners
    times = [T0 + sum(steps[: i + 1]) for i in range(len(steps))]
    owners = [uuid.uuid4() for _ in range(0, len(times), 2)]
    periods = [
        OwnershipPeriod(o, instant(times[2 * i]), instant(times[2 * i + 1]) if 2 * i + 1 < len(times) else None)
        for i, o in enumerate(owners)
    ]
    if not still_owned and periods[-1].released_at is None:
        periods = periods[:-1]
    e = T0 + end
    at = instant(e)
    held = [p.owner_id for p in periods if p.claimed_at < at and (p.released_at is None or at <= p.released_at)]
    later = [p.owner_id for p in periods if at <= p.claimed_at]
    expected = held[0] if held else (later[0] if later else None)
    assert len(held) <= 1
    assert owner_at_end(periods, e) == expected
    assert owner_at_end(list(reversed(periods)), e) == expected  # order of the stored periods does not matter


async def test_in_memory_store_attributes_by_window_end_and_waits_while_unowned() -> None:
    store = InMemoryAccountingStore()
    meter = uuid.uuid4()
    svc = AccountingService(store, metrics=AccountingMetrics.for_registry(CollectorRegistry()))
    store.owners[meter] = A
    for k in range(10):  # readings every W/2 up to T0 + 4.5 W, not yet accounted
        store.add_reading(meter, rd(k + 1, T0 + k * W // 2, 10 * k))
    store.release(meter, T0 + 2 * W + 5)  # A releases in the middle of [T0+2W, T0+3W)
    assert await svc.run_once() == 0  # nobody owns it: accrues, nothing dropped
    store.owners[meter] = B
    store.add_reading(meter, rd(11, T0 + 6 * W, 120))
    assert await svc.run_once() == 6
    owners = {start: w.owner_id for (_, start), w in store.windows.items()}
    assert owners == {T0 + k * W: A if k < 2 else B for k in range(6)}
    assert sum(w.window.export_wh for w in store.windows.values()) == 120
