"""The hot readings schema (migration 0090) on real PostgreSQL: what a stored reading costs, partitions made on
demand, and the move of readings stored before the migration."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg
import pytest

from central.db.migrations import MIGRATIONS_DIR, migrate_dsn
from protocol.batch import encode_batch
from tests.central.gateway import T0_MS, Gateway, ingest, ingest_service
from tests.central.pg import add_device, add_meter, add_user

DAY_MS = 86_400_000
#: The bytes a stored reading may cost in PostgreSQL (table + indexes), issue 15.
HOT_BUDGET = 300

BYTES_PER_READING = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'reading_rows'::regclass
"""


@pytest.mark.slow
async def test_a_stored_reading_costs_at_most_300_bytes(pool: asyncpg.Pool) -> None:
    # 12 gateways x 5 meters, a reading per meter every 15 minutes for two days, through verified ingest in the
    # order a fleet sends them (the gateways' batches interleaved), so the indexes fill as they do in production
    gateways = [Gateway() for _ in range(12)]
    owner = await add_user(pool)
    for g, gw in enumerate(gateways):
        await add_device(pool, gw.device_id, gw.key.public_key)
        for m in range(5):
            await add_meter(pool, gw.device_id, f"HOT-{g:02d}-{m}", owner)
    start = T0_MS - T0_MS % DAY_MS
    svc = ingest_service(pool, start + 3 * DAY_MS)
    for hours in range(0, 48, 4):  # a batch per gateway every 4 hours
        for g, gw in enumerate(gateways):
            records = [
                gw.read(f"HOT-{g:02d}-{m}", timestamp_ms=start + hours * 3_600_000 + slot * 900_000 + m * 1000)
                for slot in range(16) for m in range(5)
            ]
            await ingest(svc, gw.device_id, records)
    count = await pool.fetchval("SELECT count(*) FROM reading_rows")
    assert count == 12 * 5 * 4 * 48
    size = await pool.fetchval(BYTES_PER_READING)
    print(f"hot storage: {size / count:.0f} B per stored reading ({count} readings)")
    assert size / count <= HOT_BUDGET, f"{size / count:.0f} B per stored reading"
    # two days: two daily partitions were created on demand by ingest
    names = await pool.fetch("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                             "WHERE i.inhparent = 'reading_rows'::regclass ORDER BY 1")
    assert [r["relname"] for r in names] == [f"reading_rows_p{start}", f"reading_rows_p{start + DAY_MS}"]


async def test_stored_records_rebuild_byte_for_byte(pool: asyncpg.Pool) -> None:
    gw = Gateway()
    await add_device(pool, gw.device_id, gw.key.public_key)
    await add_meter(pool, gw.device_id, "HOT-REBUILD", await add_user(pool))
    records = [gw.read("HOT-REBUILD", power_w=None if k % 2 else -1500) for k in range(4)]
    svc = ingest_service(pool, T0_MS + 60_000)
    ack = await svc.handle_readings(gw.device_id, encode_batch(records))
    assert ack.accepted == 4
    rows = await pool.fetch("SELECT raw, record_hash, power_w FROM readings WHERE device_id = $1 ORDER BY seq",
                            gw.device_id)
    assert [bytes(r["raw"]) for r in rows] == [r.encode() for r in records]
    assert [bytes(r["record_hash"]) for r in rows] == [r.hash() for r in records]
    assert [r["power_w"] for r in rows] == [-1500, None, -1500, None]


async def test_readings_stored_before_the_migration_are_moved(empty_pg_dsn: str, tmp_path: Path) -> None:
    for f in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if f.name < "0090":
            shutil.copy(f, tmp_path / f.name)
    await migrate_dsn(empty_pg_dsn, tmp_path)
    pool = await asyncpg.create_pool(empty_pg_dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        gw = Gateway()
        await add_device(pool, gw.device_id, gw.key.public_key)
        meter = await add_meter(pool, gw.device_id, "OLD-1", await add_user(pool))
        records = [gw.read("OLD-1", power_w=None if k == 1 else 300, advance_ms=DAY_MS // 2) for k in range(5)]
        for r in records:  # the old table's row as the old ingest wrote it
            await pool.execute(
                "INSERT INTO readings (device_id, seq, meter_id, meter_serial, timestamp_ms, import_wh, export_wh, "
                "power_w, flags, prev_hash, record_hash, raw) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
                gw.device_id, r.seq, meter, r.meter_serial, r.timestamp_ms, r.import_wh, r.export_wh, r.power_w,
                r.flags, r.prev_hash, r.hash(), r.encode(),
            )
        shutil.copy(MIGRATIONS_DIR / "0090_compact_readings.sql", tmp_path)
        assert "0090_compact_readings.sql" in await migrate_dsn(empty_pg_dsn, tmp_path)
        rows = await pool.fetch("SELECT raw, record_hash, meter_id FROM readings ORDER BY seq")
        assert [bytes(r["raw"]) for r in rows] == [r.encode() for r in records]
        assert [bytes(r["record_hash"]) for r in rows] == [r.hash() for r in records]
        assert {r["meter_id"] for r in rows} == {meter}
        assert await pool.fetchval("SELECT count(*) FROM reading_rows") == 5
        # 2.5 days of readings: three daily partitions hold them
        parts = await pool.fetchval("SELECT count(*) FROM pg_inherits WHERE inhparent = 'reading_rows'::regclass")
        assert parts == 3
        # and, with the later migrations applied too, ingest goes on from the moved chain (seq 6 links to seq 5)
        for f in sorted(MIGRATIONS_DIR.glob("*.sql")):
            shutil.copy(f, tmp_path / f.name)
        await migrate_dsn(empty_pg_dsn, tmp_path)
        nxt = gw.read("OLD-1", advance_ms=1000)
        ack = await ingest(ingest_service(pool, nxt.timestamp_ms + 1000), gw.device_id, [nxt])
        assert ack.accepted == 1
    finally:
        await pool.close()
