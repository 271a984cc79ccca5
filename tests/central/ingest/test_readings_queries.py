"""Readings read side against PostgreSQL: cursor pages, 15-minute window energy, input errors."""

from __future__ import annotations

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from central.ingest.metrics import IngestMetrics
from central.ingest.postgres import PgIngestStore
from central.ingest.service import IngestService
from central.readings.queries import WINDOW_MS, QueryError, list_readings, window_energy
from protocol.batch import encode_batch
from protocol.record import Flags
from tests.central.gateway import Gateway
from tests.central.ingest.ingest_db import Seed

METER = "Q-METER"
T0 = 1_790_000_100_000 - 1_790_000_100_000 % WINDOW_MS  # a window boundary


async def ingest(pool: asyncpg.Pool, gw: Gateway, recs: list) -> None:
    service = IngestService(PgIngestStore(pool), metrics=IngestMetrics.for_registry(CollectorRegistry()),
                            clock_ms=lambda: T0 + 10 * WINDOW_MS)
    ack = await service.handle_readings(gw.device_id, encode_batch(recs))
    assert ack.rejected == ()


async def test_pages_follow_the_cursor_without_gaps_or_repeats(seed: Seed) -> None:
    gw = Gateway(now_ms=T0)
    await seed.device(gw, "verified", METER)
    await ingest(seed.pool, gw, gw.many(METER, 23))
    seen: list[int] = []
    cursor = None
    while True:
        page = await list_readings(seed.pool, seed.meters[METER], from_ms=T0, to_ms=T0 + WINDOW_MS, cursor=cursor,
                                   limit=5)
        seen += [r.seq for r in page.readings]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(range(1, 24))
    window = await list_readings(seed.pool, seed.meters[METER], from_ms=T0 + 3000, to_ms=T0 + 6000)
    assert [r.timestamp_ms for r in window.readings] == [T0 + 3000, T0 + 4000, T0 + 5000]


async def test_bad_cursor_and_limits(seed: Seed) -> None:
    gw = Gateway(now_ms=T0)
    await seed.device(gw, "verified", METER)
    with pytest.raises(QueryError):
        await list_readings(seed.pool, seed.meters[METER], from_ms=0, to_ms=1, cursor="!!not-a-cursor")
    with pytest.raises(QueryError):
        await list_readings(seed.pool, seed.meters[METER], from_ms=0, to_ms=1, limit=0)
    with pytest.raises(QueryError):
        await window_energy(seed.pool, seed.meters[METER], from_ms=0, to_ms=400 * 24 * 3600 * 1000)


async def test_window_energy_sums_register_deltas(seed: Seed) -> None:
    gw = Gateway(now_ms=T0)
    await seed.device(gw, "verified", METER)
    five_min = 5 * 60 * 1000
    recs = [
        gw.read(METER, timestamp_ms=T0 - five_min, import_wh=1000, export_wh=100),  # before the range
        gw.read(METER, timestamp_ms=T0 + 1, import_wh=1010, export_wh=130),
        gw.read(METER, timestamp_ms=T0 + five_min, import_wh=1050, export_wh=130),
        gw.read(METER, timestamp_ms=T0 + WINDOW_MS, import_wh=1100, export_wh=200),  # next window
        gw.read(METER, timestamp_ms=T0 + WINDOW_MS + five_min, import_wh=3, export_wh=1, flags=Flags.METER_REPLACED),
        gw.read(METER, timestamp_ms=T0 + 2 * WINDOW_MS + 1, import_wh=13, export_wh=6),
    ]
    await ingest(seed.pool, gw, recs)
    energy = await window_energy(seed.pool, seed.meters[METER], from_ms=T0, to_ms=T0 + 3 * WINDOW_MS)
    got = [(w.start_ms, w.import_wh, w.export_wh, w.readings) for w in energy.windows]
    assert got == [
        (T0, 50, 30, 2),
        (T0 + WINDOW_MS, 50, 70, 2),  # the replacement reading contributes nothing
        (T0 + 2 * WINDOW_MS, 10, 5, 1),
    ]
