"""The gateways' retained status messages (protocol/status.py) recorded by ingest, and the database-derived health
gauges the alert rules read (central/observability/health.py), against real PostgreSQL."""

from __future__ import annotations

import json

import asyncpg
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from central.accounting.mint_intent import MINT_KIND
from central.identity.device_routes import device_out
from central.identity.postgres import PostgresDeviceStore
from central.ingest.metrics import IngestMetrics
from central.ingest.postgres import PgIngestStore
from central.ingest.service import IngestService
from central.observability import health
from protocol.status import DeviceStatus
from tests.central.gateway import T0_MS, Gateway
from tests.central.ingest.ingest_db import Seed


@pytest.fixture
def service(pool: asyncpg.Pool) -> IngestService:
    return IngestService(PgIngestStore(pool), metrics=IngestMetrics.for_registry(CollectorRegistry()),
                         clock_ms=lambda: T0_MS)


async def test_status_records_the_gateways_health(seed: Seed, service: IngestService) -> None:
    gw = Gateway()
    await seed.device(gw, "verified", "M-1")
    status = DeviceStatus(online=True, version="1.2", last_seq=9, outbox_depth=1234, oldest_age_s=600, meters_down=1,
                          alarms=("clock", "meters_down"))
    assert await service.handle_status(gw.device_id, status.to_json()) is True
    row = await seed.pool.fetchrow("SELECT * FROM devices WHERE device_id = $1", gw.device_id)
    assert (row["online"], row["outbox_depth"], row["outbox_oldest_age_s"], row["meters_down"], row["alarms"]) == (
        True, 1234, 600, 1, ["clock", "meters_down"])
    assert row["last_seen_at"] is not None
    # The installer's and the admin's device views carry it (GET /api/v1/devices).
    [device] = await PostgresDeviceStore(seed.pool).load([gw.device_id])
    assert (device.outbox_depth, device.outbox_oldest_age_s, device.meters_down, device.alarms) == (
        1234, 600, 1, ("clock", "meters_down"))
    assert device_out(device).alarms == ["clock", "meters_down"]
    # The last will carries no health: the figures are cleared, not left stale.
    assert await service.handle_status(gw.device_id, b'{"v":1,"online":false}') is False
    row = await seed.pool.fetchrow("SELECT * FROM devices WHERE device_id = $1", gw.device_id)
    assert (row["online"], row["outbox_depth"], row["alarms"]) == (False, None, [])


@pytest.mark.parametrize("payload", [
    b'{"v":1,"online":true,"outbox_depth":-1}',
    b'{"v":1,"online":true,"outbox_depth":true}',
    b'{"v":1,"online":true,"alarms":"clock"}',
    b'{"v":1,"online":true,"alarms":[1]}',
    b'{"v":2,"online":true}',
    b"not json",
])
async def test_a_malformed_status_changes_nothing(seed: Seed, service: IngestService, payload: bytes) -> None:
    gw = Gateway()
    await seed.device(gw, "verified", "M-1")
    await service.handle_status(gw.device_id, DeviceStatus(online=True, outbox_depth=5).to_json())
    assert await service.handle_status(gw.device_id, payload) is None
    row = await seed.pool.fetchrow("SELECT online, outbox_depth FROM devices WHERE device_id = $1", gw.device_id)
    assert (row["online"], row["outbox_depth"]) == (True, 5)


async def test_a_strangers_status_is_not_recorded(seed: Seed, service: IngestService) -> None:
    stranger = Gateway()
    await service.handle_status(stranger.device_id, DeviceStatus(online=True, outbox_depth=10**9).to_json())
    assert await seed.pool.fetchval("SELECT count(*) FROM devices") == 0


def _gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def _intent(pool: asyncpg.Pool, kind: str, key: str, state: str, age_s: int, *, accrued: bool = False,
                  submission: int | None = None) -> None:
    await pool.execute(
        "INSERT INTO chain_intent (kind, key, payload, state, submission_id, not_before, created_at) "
        "VALUES ($1, $2, $3::jsonb, $4, $5, CASE WHEN $6 THEN now() + interval '1 day' END, "
        "now() - make_interval(secs => $7))",
        kind, key, json.dumps({}), state, submission, accrued, age_s,
    )


async def test_health_gauges_read_fleet_mints_and_chain(seed: Seed, service: IngestService) -> None:
    online, alarming, offline, never, revoked = Gateway(), Gateway(), Gateway(), Gateway(), Gateway()
    for i, gw in enumerate((online, alarming, offline, never)):
        await seed.device(gw, "verified", f"M-{i}")
    await seed.device(revoked, "revoked", "M-R")
    await service.handle_status(online.device_id, DeviceStatus(online=True, outbox_depth=10, oldest_age_s=30,
                                                               meters_down=0).to_json())
    await service.handle_status(alarming.device_id, DeviceStatus(online=True, outbox_depth=500, oldest_age_s=7200,
                                                                 meters_down=2, alarms=("meters_down",)).to_json())
    await service.handle_status(offline.device_id, b'{"v":1,"online":false}')
    await service.handle_status(revoked.device_id, DeviceStatus(online=True, outbox_depth=10**6).to_json())
    pool = seed.pool
    sub = await pool.fetchval(
        "INSERT INTO chain_submission (kind, signature, last_valid_block_height, raw_tx, intent_count, created_at) "
        "VALUES ($1, 'sig-1', 100, '\\x00', 1, now() - interval '20 minutes') RETURNING id", MINT_KIND)
    await _intent(pool, MINT_KIND, "m:ready-old", "pending", 5400)
    await _intent(pool, MINT_KIND, "m:ready-new", "pending", 60)
    await _intent(pool, MINT_KIND, "m:accrued", "pending", 86400 * 3, accrued=True)
    await _intent(pool, MINT_KIND, "m:submitted", "submitted", 1200, submission=sub)
    await _intent(pool, MINT_KIND, "m:done", "confirmed", 99999)
    await _intent(pool, "market-settle", "s:failed", "failed", 100)

    snap = await health.refresh(pool, MINT_KIND)

    assert {k: snap.fleet[k] for k in ("online", "offline", "stale", "never")} == {
        "online": 2, "offline": 1, "stale": 0, "never": 1}
    assert (snap.fleet["outbox_sum"], snap.fleet["outbox_max"], snap.fleet["outbox_oldest"]) == (510, 500, 7200)
    assert (snap.fleet["alarming"], snap.fleet["meters_down"]) == (1, 2)
    assert {k: snap.mints[k] for k in ("ready", "accrued", "submitted")} == {"ready": 2, "accrued": 1, "submitted": 1}
    assert 5390 <= snap.mints["lag_s"] <= 5500  # the oldest mintable intent; the accrued one waits for a wallet
    oldest, failed = snap.chain[MINT_KIND]
    assert 1190 <= oldest <= 1300
    assert failed == 0
    assert snap.chain["market-settle"][1] == 1
    assert _gauge("gtx_fleet_gateways", state="online") == 2
    assert _gauge("gtx_fleet_outbox_records") == 510
    assert _gauge("gtx_mint_backlog_intents", state="accrued") == 1
    assert _gauge("gtx_chain_failed_intents", kind="market-settle") == 1
