"""Ingest against real PostgreSQL: every rejection stores nothing, duplicates are stored once, gaps and heads."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from central.ingest.events import NOTIFY_CHANNEL
from central.ingest.metrics import IngestMetrics
from central.ingest.postgres import PgIngestStore
from central.ingest.service import IngestService
from protocol.ack import Ack
from protocol.batch import encode_batch
from protocol.errors import Reason
from protocol.record import Flags
from protocol.sync import SyncRequest
from tests.central.gateway import T0_MS, Gateway, forge
from tests.central.ingest.ingest_db import Seed

METER = "PG-METER-1"


@pytest.fixture
def service(pool: asyncpg.Pool) -> IngestService:
    return IngestService(PgIngestStore(pool), metrics=IngestMetrics.for_registry(CollectorRegistry()),
                         clock_ms=lambda: T0_MS)


async def test_accepted_batch_is_stored_with_raw_bytes(seed: Seed, service: IngestService) -> None:
    gw = Gateway()
    await seed.device(gw, "verified", METER)
    recs = gw.many(METER, 3)
    ack = await service.handle_readings(gw.device_id, encode_batch(recs))
    assert ack == Ack(first=1, last=3, accepted=3, duplicate=0, rejected=())
    row = await seed.pool.fetchrow("SELECT * FROM readings WHERE device_id = $1 AND seq = 2", gw.device_id)
    assert bytes(row["raw"]) == recs[1].encode()
    assert bytes(row["record_hash"]) == recs[1].hash()
    assert row["meter_id"] == seed.meters[METER]
    assert (row["import_wh"], row["export_wh"], row["power_w"], row["flags"]) == (
        recs[1].import_wh, recs[1].export_wh, recs[1].power_w, 0)
    head = await seed.pool.fetchrow("SELECT * FROM reading_chain_heads WHERE device_id = $1", gw.device_id)
    assert (head["last_seq"], bytes(head["last_hash"])) == (3, recs[2].hash())


async def rejected_and_nothing_stored(service: IngestService, seed: Seed, gw: Gateway, payload: bytes,
                                      before: int, seq: int, reason: Reason) -> None:
    ack = await service.handle_readings(gw.device_id, payload)
    assert ack.rejected == ((seq, reason),)
    assert ack.accepted == 0
    assert await seed.count() == before


async def test_every_rejection_reason_stores_nothing(seed: Seed, service: IngestService) -> None:
    gw, other, pending, suspended, stranger = Gateway(), Gateway(), Gateway(), Gateway(), Gateway()
    await seed.device(gw, "verified", METER)
    await seed.device(other, "verified", "OTHERS-METER")
    await seed.device(pending, "pending", "P-1")
    await seed.device(suspended, "suspended", "S-1")
    base = gw.many(METER, 2)
    await service.handle_readings(gw.device_id, encode_batch(base))
    n = await seed.count()
    assert n == 2

    # forged signature
    await rejected_and_nothing_stored(service, seed, gw, encode_batch([forge(gw.read(METER))]), n, 3,
                                      Reason.BAD_SIGNATURE)
    # record for someone else's meter
    gw.seq, gw.prev_hash = 2, base[-1].hash()
    await rejected_and_nothing_stored(service, seed, gw, encode_batch([gw.read("OTHERS-METER")]), n, 3,
                                      Reason.METER_NOT_BOUND)
    # unverified (pending, suspended) and unknown devices
    await rejected_and_nothing_stored(service, seed, pending, encode_batch([pending.read("P-1")]), n, 1,
                                      Reason.DEVICE_NOT_VERIFIED)
    await rejected_and_nothing_stored(service, seed, suspended, encode_batch([suspended.read("S-1")]), n, 1,
                                      Reason.DEVICE_NOT_VERIFIED)
    await rejected_and_nothing_stored(service, seed, stranger, encode_batch([stranger.read(METER)]), n, 1,
                                      Reason.UNKNOWN_DEVICE)
    # chain break
    gw.seq, gw.prev_hash = 2, base[-1].hash()
    await rejected_and_nothing_stored(service, seed, gw, encode_batch([gw.read(METER, prev_hash=b"\x42" * 32)]), n,
                                      3, Reason.CHAIN_MISMATCH)
    # clock 10 minutes ahead
    gw.seq, gw.prev_hash = 2, base[-1].hash()
    await rejected_and_nothing_stored(service, seed, gw,
                                      encode_batch([gw.read(METER, timestamp_ms=T0_MS + 10 * 60_000)]), n, 3,
                                      Reason.BAD_TIMESTAMP)
    # register decrease
    gw.seq, gw.prev_hash = 2, base[-1].hash()
    await rejected_and_nothing_stored(service, seed, gw,
                                      encode_batch([gw.read(METER, import_wh=base[-1].import_wh - 1)]), n, 3,
                                      Reason.REGISTER_DECREASE)
    # replayed record (identical bytes): a counted duplicate, nothing new stored
    ack = await service.handle_readings(gw.device_id, encode_batch([base[0]]))
    assert ack == Ack(first=1, last=1, accepted=0, duplicate=1, rejected=())
    # replayed record of another device on this device's topic
    await rejected_and_nothing_stored(service, seed, gw, encode_batch([other.read("OTHERS-METER")]), n, 1,
                                      Reason.MALFORMED)
    assert await seed.stored(gw.device_id) == [1, 2]
    # and a valid record still goes in afterwards, with METER_REPLACED allowing a register restart
    gw.seq, gw.prev_hash = 2, base[-1].hash()
    ack = await service.handle_readings(gw.device_id, encode_batch([gw.read(METER, import_wh=0, export_wh=0,
                                                                            flags=Flags.METER_REPLACED)]))
    assert ack.accepted == 1


async def test_duplicate_delivery_stored_once(seed: Seed, service: IngestService) -> None:
    gw = Gateway()
    await seed.device(gw, "verified", METER)
    batch = encode_batch(gw.many(METER, 5))
    acks = await asyncio.gather(*(service.handle_readings(gw.device_id, batch) for _ in range(4)))
    assert sum(a.accepted for a in acks) == 5
    assert sum(a.duplicate for a in acks) == 15
    assert await seed.stored(gw.device_id) == [1, 2, 3, 4, 5]


async def test_gaps_and_sync(seed: Seed, service: IngestService) -> None:
    gw = Gateway()
    await seed.device(gw, "verified", METER)
    recs = gw.many(METER, 6)
    await service.handle_readings(gw.device_id, encode_batch([recs[0], recs[3], recs[5]]))
    gaps = await seed.pool.fetch("SELECT first_seq, last_seq FROM reading_gaps WHERE device_id = $1 ORDER BY 1",
                                 gw.device_id)
    assert [tuple(g) for g in gaps] == [(2, 3), (5, 5)]
    await service.handle_readings(gw.device_id, encode_batch([recs[2], recs[4]]))
    gaps = await seed.pool.fetch("SELECT first_seq, last_seq FROM reading_gaps WHERE device_id = $1", gw.device_id)
    assert [tuple(g) for g in gaps] == [(2, 2)]
    reply = await service.handle_sync(gw.device_id, SyncRequest(b"\x01" * 32).to_json())
    assert reply is not None
    assert (reply.last_seq, reply.last_hash) == (6, recs[5].hash())


async def test_notify_announces_stored_readings(seed: Seed, service: IngestService, pg_dsn: str) -> None:
    gw = Gateway()
    await seed.device(gw, "verified", METER)
    got: asyncio.Queue[str] = asyncio.Queue()
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.add_listener(NOTIFY_CHANNEL, lambda *args: got.put_nowait(args[3]))
        await service.handle_readings(gw.device_id, encode_batch(gw.many(METER, 2)))
        note = await asyncio.wait_for(got.get(), 5)
    finally:
        await conn.close()
    assert f'"device": "{gw.device_id}"' in note
    assert str(seed.meters[METER]) in note


async def test_status_updates_device(seed: Seed, service: IngestService) -> None:
    gw = Gateway()
    await seed.device(gw, "verified", METER)
    await service.handle_status(gw.device_id, b'{"v":1,"online":true}')
    assert await seed.pool.fetchval("SELECT online FROM devices WHERE device_id = $1", gw.device_id) is True
    await service.handle_status(gw.device_id, b'{"v":1,"online":false}')
    assert await seed.pool.fetchval("SELECT online FROM devices WHERE device_id = $1", gw.device_id) is False


async def test_two_workers_sharing_a_device_keep_one_consistent_chain(seed: Seed, pg_dsn: str) -> None:
    """Shared subscriptions hand one device's batches to different processes; the per-device lock keeps the
    checks and the gap bookkeeping exact (here: two pools, overlapping and out-of-order batches, all at once)."""
    gw = Gateway()
    await seed.device(gw, "verified", METER)
    recs = gw.many(METER, 40)
    other_pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=4)
    assert other_pool is not None
    try:
        services = [
            IngestService(PgIngestStore(p), metrics=IngestMetrics.for_registry(CollectorRegistry()),
                          clock_ms=lambda: T0_MS + 3_600_000)
            for p in (seed.pool, other_pool)
        ]
        batches = [recs[i:i + 7] for i in range(0, 40, 5)]  # overlapping by 2
        batches += [recs[30:40], recs[0:3], recs[17:25]]
        acks = await asyncio.gather(*(
            services[i % 2].handle_readings(gw.device_id, encode_batch(b)) for i, b in enumerate(reversed(batches))
        ))
    finally:
        await other_pool.close()
    assert all(a.rejected == () for a in acks)
    assert sum(a.accepted for a in acks) == 40
    assert await seed.stored(gw.device_id) == list(range(1, 41))
    assert await seed.pool.fetchval("SELECT count(*) FROM reading_gaps WHERE device_id = $1", gw.device_id) == 0
    head = await seed.pool.fetchrow("SELECT last_seq, last_hash FROM reading_chain_heads WHERE device_id = $1",
                                    gw.device_id)
    assert (head["last_seq"], bytes(head["last_hash"])) == (40, recs[-1].hash())
