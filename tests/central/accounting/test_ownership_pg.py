"""Energy attribution across a change of meter owner, on PostgreSQL, with real readings through verified ingest and
real claims/releases through ``MeterService``: each (meter, window) belongs to the owner holding the meter at the
window's end (``central.accounting.ownership``), whenever its readings arrive."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from datetime import datetime, timedelta

import asyncpg

from central.accounting import DEFAULT_WINDOW_MS
from central.accounting.ownership import instant
from central.accounting.pg_store import PgAccountingStore
from central.accounting.service import AccountingService
from central.accounting.window import window_start
from central.config import IdentityConfig
from central.identity.claims import MeterService
from central.identity.hashing import hash_secret_sync
from central.identity.postgres import PostgresMeterStore
from protocol.record import Reading
from tests.central.gateway import Gateway, exact, ingest, ingest_service
from tests.central.pg import add_device, add_meter, add_user

W = DEFAULT_WINDOW_MS
KEY = "meter-key-for-tests"
SERIAL = "M-OWN"
STEP_WH = 37  # exported per minute (per 100 ms in the short-window test)


async def _setup(pool: asyncpg.Pool) -> tuple[Gateway, uuid.UUID, MeterService, uuid.UUID, uuid.UUID]:
    a, b = await add_user(pool), await add_user(pool)
    gw = Gateway()
    await add_device(pool, gw.device_id, gw.key.public_key)
    meter = await add_meter(pool, gw.device_id, SERIAL, None)
    await pool.execute("UPDATE meters SET meter_key_hash = $2 WHERE id = $1", meter, hash_secret_sync(KEY, 4))
    return gw, meter, MeterService(PostgresMeterStore(pool), IdentityConfig()), a, b


async def _claim(meters: MeterService, user: uuid.UUID) -> None:
    await meters.claim(user, SERIAL, KEY, address="127.0.0.1", user_agent="pytest")


async def _settle(acct: AccountingService) -> None:
    while await acct.run_once():
        pass


async def _released_ms(pool: asyncpg.Pool, meter: uuid.UUID) -> int:
    """When the meter was last released (``MeterService.release`` stamps it on the meter)."""
    return _ms(await pool.fetchval("SELECT released_at FROM meters WHERE id = $1", meter))


def _ms(at: datetime) -> int:
    return (at - instant(0)) // timedelta(milliseconds=1)


async def _check_conserved(pool: asyncpg.Pool, meter: uuid.UUID, first: Reading, step_ms: int) -> list[asyncpg.Record]:
    """docs/decisions/0007-exact-energy-accounting.md: Σ window Wh = register(last final boundary) − register(first
    reading), windows contiguous and each exactly once, and every window's mint intent names the window's owner."""
    rows: list[asyncpg.Record] = await pool.fetch(
        "SELECT * FROM energy_windows WHERE meter_id = $1 ORDER BY window_start_ms", meter
    )
    assert rows
    assert all(x["window_end_ms"] == y["window_start_ms"] for x, y in itertools.pairwise(rows))
    last = rows[-1]["window_end_ms"]
    assert sum(r["export_wh"] for r in rows) == rows[-1]["end_export"] - first.export_wh
    assert sum(r["export_wh"] for r in rows) == STEP_WH * (last - first.timestamp_ms) // step_ms
    minted = await pool.fetch(
        "SELECT (payload->>'start')::bigint AS start, payload->>'owner' AS owner, (payload->>'wh')::bigint AS wh"
        " FROM chain_intent WHERE payload->>'meter' = $1",
        str(meter),
    )
    assert len(minted) == len({m["start"] for m in minted})
    assert {m["start"]: (uuid.UUID(m["owner"]), m["wh"]) for m in minted} == {
        r["window_start_ms"]: (r["owner_id"], r["export_wh"]) for r in rows if r["export_wh"] > 0
    }
    return rows


async def test_release_mid_window_and_late_readings_go_to_the_owner_at_window_end(pool: asyncpg.Pool) -> None:
    gw, meter, meters, a, b = await _setup(pool)
    acct = AccountingService(PgAccountingStore(pool))
    now = int(time.time() * 1000)
    t0 = window_start(now, W) - 4 * W  # an hour of history before A claims: accrues to A, the first claimant
    await _claim(meters, a)
    svc = ingest_service(pool, now + 100 * W)
    # a reading every minute from t0 to 45 minutes past now
    readings = [exact(gw, SERIAL, t0 + 60_000 * k, 1_000 + STEP_WH * k) for k in range((now - t0) // 60_000 + 45)]
    # while A owns: only readings up to 20 minutes before now arrive (the rest of A's period arrives late)
    on_time = [r for r in readings if r.timestamp_ms < now - 20 * 60_000]
    await ingest(svc, gw.device_id, on_time)
    await _settle(acct)
    early = await pool.fetch("SELECT window_start_ms, owner_id FROM energy_windows WHERE meter_id = $1", meter)
    assert early
    assert {r["owner_id"] for r in early} == {a}

    await meters.release(a, SERIAL)  # mid-window: the window holding "now" is open
    await _claim(meters, b)
    released = await _released_ms(pool, meter)
    assert released % W != 0
    # the gateway's backlog: A's late readings and B's, after B claimed
    await ingest(svc, gw.device_id, readings[len(on_time):])
    await _settle(acct)

    rows = await _check_conserved(pool, meter, readings[0], 60_000)
    for r in rows:
        assert r["owner_id"] == (a if r["window_end_ms"] <= released else b), r
    early_starts = {r["window_start_ms"] for r in early}
    late_for_a = [r for r in rows if r["window_end_ms"] <= released and r["window_start_ms"] not in early_starts]
    assert {r["owner_id"] for r in late_for_a} == {a}
    assert len(rows) - len(early) > len(late_for_a) > 0  # some of A's windows became final only after B claimed
    straddling = [r for r in rows if r["window_start_ms"] < released < r["window_end_ms"]]
    assert len(straddling) == 1
    assert straddling[0]["owner_id"] == b  # it ends after the release: B held the meter at its end
    a_wh = sum(r["export_wh"] for r in rows if r["owner_id"] == a)
    assert a_wh == STEP_WH * (window_start(released, W) - t0) // 60_000
    assert a_wh > 0
    assert sum(r["export_wh"] for r in rows if r["owner_id"] == b) > 0


async def test_windows_before_first_claim_and_between_owners_accrue_to_the_next_claimant(pool: asyncpg.Pool) -> None:
    gw, meter, meters, a, b = await _setup(pool)
    window = 1000
    acct = AccountingService(PgAccountingStore(pool), window_ms=window, horizon_ms=3_600_000)
    start = window_start(int(time.time() * 1000), window) - 3 * window  # before anyone claims
    await _claim(meters, a)
    await asyncio.sleep(1.2)
    await meters.release(a, SERIAL)
    await asyncio.sleep(2.1)  # nobody owns the meter across at least two window ends
    await _claim(meters, b)
    released = await _released_ms(pool, meter)
    claimed = _ms(await pool.fetchval("SELECT claimed_at FROM meters WHERE id = $1", meter))
    svc = ingest_service(pool, claimed + 100_000)
    # every reading arrives only now, after B claimed; one per 100 ms up to 3 s past B's claim
    readings = [exact(gw, SERIAL, start + 100 * k, STEP_WH * k) for k in range((claimed - start) // 100 + 30)]
    await ingest(svc, gw.device_id, readings)
    await _settle(acct)

    rows = await _check_conserved(pool, meter, readings[0], 100)
    for r in rows:
        assert r["owner_id"] == (a if r["window_end_ms"] <= released else b), r
    assert [r for r in rows if r["window_end_ms"] <= released]  # A's, including those before A's claim
    gap = [r for r in rows if released < r["window_end_ms"] <= claimed]
    assert len(gap) >= 2
    assert {r["owner_id"] for r in gap} == {b}


async def test_unowned_meter_waits_for_the_next_claim(pool: asyncpg.Pool) -> None:
    """A released meter is not settled while nobody owns it; nothing is lost: the next claim settles it all."""
    gw, meter, meters, a, b = await _setup(pool)
    acct = AccountingService(PgAccountingStore(pool))
    now = int(time.time() * 1000)
    t0 = window_start(now, W) - 2 * W
    await _claim(meters, a)
    await meters.release(a, SERIAL)
    svc = ingest_service(pool, now + 100 * W)
    readings = [exact(gw, SERIAL, t0 + 60_000 * k, 500 + STEP_WH * k) for k in range(80)]
    await ingest(svc, gw.device_id, readings)
    assert await acct.run_once() == 0
    await _claim(meters, b)
    await _settle(acct)
    released = await _released_ms(pool, meter)
    rows = await _check_conserved(pool, meter, readings[0], 60_000)
    assert {r["owner_id"] for r in rows if r["window_end_ms"] <= released} <= {a}
    assert {r["owner_id"] for r in rows if r["window_end_ms"] > released} == {b}


async def test_release_never_precedes_a_window_already_settled_for_the_owner(pool: asyncpg.Pool) -> None:
    """A gateway clock running ahead can finalise a window ending after "now"; releasing the meter then must not
    date the release before that window's end (it was recorded for the owner), nor the next claim before it."""
    gw, meter, meters, a, b = await _setup(pool)
    acct = AccountingService(PgAccountingStore(pool))
    now = int(time.time() * 1000)
    t0 = window_start(now, W) - W
    await _claim(meters, a)
    svc = ingest_service(pool, now + 100 * W)
    readings = [exact(gw, SERIAL, t0 + 60_000 * k, STEP_WH * k) for k in range(3 * 15 + 1)]  # to 2 windows ahead
    await ingest(svc, gw.device_id, readings)
    await _settle(acct)
    boundary = await pool.fetchval("SELECT max(window_end_ms) FROM energy_windows WHERE meter_id = $1", meter)
    assert boundary > now
    await meters.release(a, SERIAL)
    await _claim(meters, b)
    assert await _released_ms(pool, meter) >= boundary
    assert _ms(await pool.fetchval("SELECT claimed_at FROM meters WHERE id = $1", meter)) >= boundary
    periods = await pool.fetch("SELECT owner_id, claimed_at, released_at FROM meter_ownerships ORDER BY claimed_at")
    assert [(p["owner_id"], p["released_at"] is None) for p in periods] == [(a, False), (b, True)]
    assert periods[0]["released_at"] <= periods[1]["claimed_at"]
    await ingest(svc, gw.device_id, [exact(gw, SERIAL, boundary + 2 * W, STEP_WH * 200)])
    await _settle(acct)
    rows = await pool.fetch(
        "SELECT window_end_ms, owner_id FROM energy_windows WHERE meter_id = $1 ORDER BY window_start_ms", meter
    )
    assert [r["owner_id"] for r in rows] == [a if r["window_end_ms"] <= boundary else b for r in rows]
    assert rows[-1]["owner_id"] == b
