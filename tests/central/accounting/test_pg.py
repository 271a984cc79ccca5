"""Accounting on PostgreSQL over readings that went through verified ingest."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from central.accounting import (
    DEFAULT_WINDOW_MS,
    METER_REPLACED,
    ClosedWindows,
    MeterReading,
    close_windows,
    merkle_root,
)
from central.accounting.pg_store import PgAccountingStore
from central.accounting.service import AccountingService
from central.accounting.store import ConcurrentAccountingError, MeterAccount, settle_accounts
from central.db.leadership import SessionLock
from central.locks import ACCOUNTANT
from protocol.batch import encode_batch
from tests.central.gateway import Gateway, exact, ingest, ingest_service
from tests.central.pg import add_device, add_meter, add_user

W = DEFAULT_WINDOW_MS
T0 = 1_790_000_000_000 - 1_790_000_000_000 % W


async def test_windows_from_verified_readings_exact_and_once(pool: asyncpg.Pool) -> None:
    owner = await add_user(pool)
    gw, gw_unverified = Gateway(), Gateway()
    await add_device(pool, gw.device_id, gw.key.public_key)
    await add_device(pool, gw_unverified.device_id, gw_unverified.key.public_key, status="pending")
    meter = await add_meter(pool, gw.device_id, "M-1", owner)
    unowned = await add_meter(pool, gw.device_id, "M-2", None)
    await add_meter(pool, gw_unverified.device_id, "M-3", owner)
    svc = ingest_service(pool, T0 + 100 * W)
    acct = AccountingService(PgAccountingStore(pool))

    first = [exact(gw, "M-1", T0 + 60_000 * k, 10_000 + 37 * k) for k in range(20)]
    first += [exact(gw, "M-2", T0 + 60_000 * k + 1, 5 * k) for k in range(20)]
    await ingest(svc, gw.device_id, first)
    assert await acct.run_once() == 1  # [T0, T0+15min) of M-1 only
    assert await acct.run_once() == 0
    # late batch (the gateway was offline for an hour), with a re-sent duplicate
    later = [exact(gw, "M-1", T0 + 60_000 * k, 10_000 + 37 * k) for k in range(20, 80, 7)]
    await ingest(svc, gw.device_id, later)
    dup = await svc.handle_readings(gw.device_id, encode_batch(later[:2]))
    assert dup.duplicate == 2
    assert await acct.run_once() == 4
    assert await acct.run_once() == 0

    rows = await pool.fetch("SELECT * FROM energy_windows ORDER BY window_start_ms")
    assert {r["meter_id"] for r in rows} == {meter}
    assert unowned not in {r["meter_id"] for r in rows}
    assert [r["window_start_ms"] for r in rows] == [T0 + k * W for k in range(5)]
    last_boundary = rows[-1]["window_end_ms"]
    assert sum(r["export_wh"] for r in rows) == rows[-1]["end_export"] - 10_000
    # 37 Wh per minute, boundaries fall on readings or between linear ones: exact
    assert sum(r["export_wh"] for r in rows) == 37 * (last_boundary - T0) // 60_000
    for r in rows:
        assert bytes(r["merkle_root"]) == merkle_root([bytes(h) for h in r["record_hashes"]])
        assert r["owner_id"] == owner
    cp = await pool.fetchrow("SELECT * FROM accounting_checkpoints WHERE meter_id = $1", meter)
    assert cp["boundary_ms"] == last_boundary


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_late_batches_with_replacement_match_one_shot_close(pool: asyncpg.Pool, seed: int) -> None:
    """Readings reach PostgreSQL in random late batches (with a meter replacement and re-sent duplicates) and the
    accountant runs between batches: the windows are exactly those of settling everything at once, and
    Σ window Wh = continuous register(last final boundary) - register(first reading)."""
    rng = random.Random(seed)
    owner = await add_user(pool)
    gw = Gateway()
    await add_device(pool, gw.device_id, gw.key.public_key)
    meter = await add_meter(pool, gw.device_id, "R-1", owner)
    svc = ingest_service(pool, T0 + 1000 * W)
    acct = AccountingService(PgAccountingStore(pool), horizon_ms=[W, 3 * W, 24 * W][seed - 1])
    t, export = T0 + rng.randrange(W), 50_000
    records = []
    for k in range(60):
        t += rng.randrange(1, 3 * W // 2)
        flags = 0
        if k == 30:
            export, flags = rng.randrange(100), METER_REPLACED  # new meter: registers restart
        else:
            export += rng.randrange(0, 3000)
        records.append(exact(gw, "R-1", t, export, import_wh=k, flags=flags))
    i = 0
    while i < len(records):
        n = rng.randrange(1, 12)
        batch = records[i : i + n]
        await ingest(svc, gw.device_id, batch)
        if i and rng.random() < 0.3:
            await svc.handle_readings(gw.device_id, encode_batch(records[max(0, i - 3) : i]))  # duplicates
        i += n
        await acct.run_once()
    while await acct.run_once():
        pass

    rows = await pool.fetch("SELECT * FROM energy_windows WHERE meter_id = $1 ORDER BY window_start_ms", meter)
    one_shot = close_windows(
        [MeterReading(r.timestamp_ms, r.seq, r.import_wh, r.export_wh, r.flags, r.hash()) for r in records]
    )
    assert [(r["window_start_ms"], r["export_wh"], r["import_wh"]) for r in rows] == [
        (w.start_ms, w.export_wh, w.import_wh) for w in one_shot.windows
    ]
    cp = await pool.fetchrow("SELECT * FROM accounting_checkpoints WHERE meter_id = $1", meter)
    assert sum(r["export_wh"] for r in rows) == cp["cum_export"] - cp["origin_export"]
    assert cp["origin_export"] == records[0].export_wh
    intents = await pool.fetchval(
        "SELECT coalesce(sum((payload->>'wh')::bigint), 0) FROM chain_intent WHERE payload->>'meter' = $1", str(meter)
    )
    assert intents == sum(r["export_wh"] for r in rows)


async def test_one_accountant_at_a_time(pool: asyncpg.Pool, pg_dsn: str) -> None:
    owner = await add_user(pool)
    gw = Gateway()
    await add_device(pool, gw.device_id, gw.key.public_key)
    await add_meter(pool, gw.device_id, "L-1", owner)
    await ingest(
        ingest_service(pool, T0 + 10 * W), gw.device_id, [exact(gw, "L-1", T0 + k * W, k) for k in range(3)]
    )
    service = AccountingService(PgAccountingStore(pool))
    holder, contender = SessionLock(pg_dsn, ACCOUNTANT), SessionLock(pg_dsn, ACCOUNTANT)
    try:
        async with holder.hold() as first:
            assert first
            async with contender.hold() as second:
                assert not second  # the other session holds the lock: this one's round is skipped
        async with contender.hold() as second:
            assert not second  # leadership is sticky: the holder keeps it between its rounds
        async with holder.hold() as first:
            assert first
        await holder.close()  # the leader stops (or dies: its session ends)
        async with contender.hold() as second:
            assert second
            assert await service.settle_due() == 2
    finally:
        await holder.close()
        await contender.close()


async def _pass_computed(store: PgAccountingStore) -> list[tuple[MeterAccount, ClosedWindows]]:
    """An accountant's pass up to (not including) its recording transaction."""
    accounts = await store.due_meters(W, 2000)
    return settle_accounts(accounts, await store.readings_after(accounts, W, 6 * 3_600_000), W, 10_000)


async def test_an_overlapping_accountant_writes_nothing_twice(pool: asyncpg.Pool) -> None:
    """Two accountants at once (a leader that froze past its session's end and then woke up beside its successor;
    docs/scaling.md): the one that records second loses the race as a whole, for a meter's first windows (its
    checkpoint insert) and for later ones (its checkpoint compare-and-swap), and no window or mint is written twice."""
    owner = await add_user(pool)
    gw = Gateway()
    await add_device(pool, gw.device_id, gw.key.public_key)
    meters = [await add_meter(pool, gw.device_id, f"O-{i}", owner) for i in range(3)]
    svc = ingest_service(pool, T0 + 100 * W)
    store = PgAccountingStore(pool)
    for hour in range(3):
        minutes = range(hour * 60, hour * 60 + 60)
        await ingest(svc, gw.device_id, [exact(gw, f"O-{i}", T0 + k * 60_000, 1_000 * i + 7 * k)
                                         for k in minutes for i in range(3)])
        first, second = await _pass_computed(store), await _pass_computed(store)
        assert first
        assert [a for a, _ in first] == [a for a, _ in second]
        await store.record(W, first)
        with pytest.raises(ConcurrentAccountingError):
            await store.record(W, second)
    # and two whole services racing pass by pass agree with that
    await ingest(svc, gw.device_id, [exact(gw, f"O-{i}", T0 + 12 * W + k * 60_000, 1_000 * i + 7 * (180 + k))
                                     for k in range(4 * 15) for i in range(3)])
    racing = [AccountingService(PgAccountingStore(pool)) for _ in range(2)]
    await asyncio.gather(*(a.settle_due() for a in racing))
    assert await racing[0].settle_due() == 0

    rows = await pool.fetch("SELECT meter_id, window_start_ms, export_wh FROM energy_windows")
    assert len(rows) == len({(r["meter_id"], r["window_start_ms"]) for r in rows}) > 0
    for i, meter in enumerate(meters):
        cp = await pool.fetchrow("SELECT * FROM accounting_checkpoints WHERE meter_id = $1", meter)
        assert sum(r["export_wh"] for r in rows if r["meter_id"] == meter) == cp["cum_export"] - 1_000 * i
        minted = await pool.fetch("SELECT (payload->>'wh')::bigint AS wh, payload FROM chain_intent "
                                  "WHERE payload->>'meter' = $1", str(meter))
        assert sum(m["wh"] for m in minted) == cp["cum_export"] - 1_000 * i
        assert len(minted) == len({str(m["payload"]) for m in minted})
