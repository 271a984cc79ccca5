"""D4 (issue 10) against real PostgreSQL: the adapter loads the device's registration time and the meter's stored
neighbours' timestamps, so old readings are rejected with ``bad_timestamp`` and nothing of them is stored."""

from __future__ import annotations

import asyncpg
from prometheus_client import CollectorRegistry

from central.ingest.metrics import IngestMetrics
from central.ingest.postgres import PgIngestStore
from central.ingest.service import IngestService
from protocol.batch import encode_batch
from protocol.errors import Reason
from protocol.record import ZERO_HASH
from tests.central.gateway import T0_MS, Gateway
from tests.central.ingest.ingest_db import Seed

METER = "PG-TS-METER-1"
DAY_MS = 86_400_000


def service(pool: asyncpg.Pool, max_age_ms: int = 7 * DAY_MS) -> IngestService:
    return IngestService(PgIngestStore(pool), metrics=IngestMetrics.for_registry(CollectorRegistry()),
                         clock_ms=lambda: T0_MS, max_age_ms=max_age_ms)


async def test_old_readings_are_rejected_and_not_stored(seed: Seed, pool: asyncpg.Pool) -> None:
    svc = service(pool)
    gw = Gateway(now_ms=T0_MS - 2 * DAY_MS)
    await seed.device(gw, "verified", METER, registered_ms=T0_MS - DAY_MS)
    # before registration
    ack = await svc.handle_readings(gw.device_id, encode_batch([gw.read(METER)]))
    assert ack.rejected == ((1, Reason.BAD_TIMESTAMP),)
    # unset clock (near 0) and older than the bound
    for ts in (1000, T0_MS - 20 * DAY_MS):
        gw.seq, gw.prev_hash = 0, ZERO_HASH
        ack = await svc.handle_readings(gw.device_id, encode_batch([gw.read(METER, timestamp_ms=ts)]))
        assert ack.rejected == ((1, Reason.BAD_TIMESTAMP),)
    assert await seed.stored(gw.device_id) == []
    # valid readings, then one older than the meter's previous (stored) record
    gw.seq, gw.prev_hash, gw.now_ms = 0, ZERO_HASH, T0_MS - 60_000
    ok = [gw.read(METER), gw.read(METER)]
    assert (await svc.handle_readings(gw.device_id, encode_batch(ok))).accepted == 2
    back = gw.read(METER, timestamp_ms=ok[-1].timestamp_ms - 1)
    ack = await svc.handle_readings(gw.device_id, encode_batch([back]))
    assert ack.rejected == ((3, Reason.BAD_TIMESTAMP),)
    # the same check against a neighbour loaded as "before" (seq < first - 1): a later batch after a gap
    gw.seq, gw.prev_hash = 3, b"\x00" * 31 + b"\x01"
    far = gw.read(METER, timestamp_ms=ok[0].timestamp_ms - 1)
    assert (await svc.handle_readings(gw.device_id, encode_batch([far]))).rejected == ((4, Reason.BAD_TIMESTAMP),)
    assert await seed.stored(gw.device_id) == [1, 2]
