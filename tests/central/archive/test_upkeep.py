"""The reading-archive job's round on real PostgreSQL: partitions ahead, closed ones packed, old ones archived and
dropped, and an archived range closed to new rows; and its config check against ingest's age limit."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from central.archive.directory import DirectoryArchiveStore
from central.archive.pg import PgArchive
from central.archive.service import DAY_MS, ArchiveService
from central.archive.settings import ArchiveSettings
from central.config import from_mapping
from central.errors import ConfigError
from tests.central.gateway import T0_MS, Gateway, ingest, ingest_service
from tests.central.pg import add_device, add_meter, add_user


async def test_a_round_creates_ahead_packs_and_archives(pool: asyncpg.Pool, tmp_path: Path) -> None:
    gw = Gateway()
    await add_device(pool, gw.device_id, gw.key.public_key)
    await add_meter(pool, gw.device_id, "UPKEEP-1", await add_user(pool))
    day0 = T0_MS - T0_MS % DAY_MS
    old = [gw.read("UPKEEP-1", timestamp_ms=day0 + k * 3_600_000) for k in range(6)]  # day 0
    recent = [gw.read("UPKEEP-1", timestamp_ms=day0 + 5 * DAY_MS + k * 3_600_000) for k in range(3)]  # day 5
    await ingest(ingest_service(pool, day0 + 6 * DAY_MS), gw.device_id, old + recent)
    now = day0 + 5 * DAY_MS + 12 * 3_600_000
    store = DirectoryArchiveStore(tmp_path / "archive")
    job = ArchiveService(PgArchive(pool, store), ArchiveSettings(after_days=3, ahead_days=2), clock_ms=lambda: now)

    assert await job.run_once() == 1  # day 0 ended more than 3 days ago; day 5 did not
    parts = await PgArchive(pool, store).partitions()
    assert [p.from_ms for p in parts] == [day0 + d * DAY_MS for d in (5, 6, 7)]  # today and two days ahead
    assert await pool.fetchval("SELECT count(*) FROM reading_rows") == 3
    assert [r["from_ms"] for r in await pool.fetch("SELECT from_ms FROM reading_archives")] == [day0]
    assert store.keys("readings/") == [
        f"readings/{k}" for k in sorted(
            f"{_day(day0)}/{day0}-{day0 + DAY_MS}{suffix}" for suffix in (".index.parquet", ".json", ".parquet"))
    ]
    # an archived range takes no new rows (ingest rejects readings that old before it would try)
    with pytest.raises(asyncpg.PostgresError, match="archived range"):
        await pool.execute("SELECT reading_partition_for($1)", day0 + 60_000)

    later = ArchiveService(PgArchive(pool, store), ArchiveSettings(after_days=3, ahead_days=2),
                           clock_ms=lambda: now + 2 * DAY_MS)
    assert await later.run_once() == 0
    packed = [r["from_ms"] for r in await pool.fetch("SELECT from_ms FROM reading_partitions_packed ORDER BY 1")]
    assert packed == [day0 + 5 * DAY_MS]  # closed for a day (day 6 ends less than a day before): packed once


def _day(ms: int) -> str:
    from datetime import UTC, datetime  # noqa: PLC0415

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y/%m/%d")


def test_archive_age_must_exceed_ingest_age() -> None:
    auth = {"jwt_secret": "x" * 48}
    with pytest.raises(ConfigError, match=r"archive\.after_days: must be more days than ingest\.max_age_ms"):
        from_mapping({"auth": auth, "archive": {"after_days": 30}, "ingest": {"max_age_ms": 60 * DAY_MS}})
    assert from_mapping({"auth": auth, "archive": {"after_days": 61}}).archive.after_days == 61


async def test_packing_and_archiving_at_once_do_not_deadlock(pool: asyncpg.Pool, tmp_path: Path) -> None:
    """Two processes' duties on the same partitions at once (the job's leader packing while ``archive run`` or
    another node archives). REINDEX CONCURRENTLY holds the partition while it waits for every older snapshot; an
    archive transaction waiting for that partition was one of those snapshots: PostgreSQL reported a deadlock and
    the round failed. An open reader makes the REINDEX wait, so the two overlap every time."""
    gw = Gateway()
    await add_device(pool, gw.device_id, gw.key.public_key)
    await add_meter(pool, gw.device_id, "UPKEEP-2", await add_user(pool))
    day0 = T0_MS - T0_MS % DAY_MS
    rows = [gw.read("UPKEEP-2", timestamp_ms=day0 + d * DAY_MS + k * 3_600_000) for d in range(3) for k in range(4)]
    await ingest(ingest_service(pool, day0 + 4 * DAY_MS), gw.device_id, rows)
    store = DirectoryArchiveStore(tmp_path / "archive")
    packer, archiver = PgArchive(pool, store), PgArchive(pool, store)
    reader = await pool.acquire()
    try:
        tx = reader.transaction(isolation="repeatable_read")
        await tx.start()
        await reader.fetchval("SELECT count(*) FROM reading_rows")  # an old snapshot REINDEX CONCURRENTLY waits for
        packing = asyncio.create_task(packer.pack_before(day0 + 3 * DAY_MS))
        await asyncio.sleep(0.5)
        archiving = asyncio.create_task(archiver.archive_before(day0 + 3 * DAY_MS))
        await asyncio.sleep(0.5)
        await tx.rollback()
        packed, manifests = await asyncio.wait_for(asyncio.gather(packing, archiving), 60)
    finally:
        await pool.release(reader)
    assert sum(m.readings for m in manifests) == len(rows)
    assert await pool.fetchval("SELECT count(*) FROM reading_rows") == 0
    assert packed in (0, 3)  # packed first, or found nothing left to pack
