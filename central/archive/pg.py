"""PostgreSQL side of the archive: create partitions ahead, archive old ones, read archived readings back.

Archiving one partition (``archive_before``, oldest first):

1. ``LOCK TABLE <partition> IN SHARE MODE``: reads go on, nothing can be written to it until the end (ingest never
   writes there anyway: the range is older than ``ingest.max_age_ms``);
2. stream its rows in (device_key, seq) order into a Parquet file, row group by row group, on local disk;
3. read the file back and compare its row count and digest (SHA-256 over the record hashes in order) with what was
   written; store the file, its index and its manifest; read the stored object back and compare again;
4. record it in ``reading_archives`` and ``DROP TABLE`` the partition (short lock timeout: a busy moment fails the
   round, which is retried; the stored file is simply written again).

Packing and archiving hold ``locks.READING_PARTITIONS`` whoever runs them (the job's leader, the ``archive run``
command): REINDEX CONCURRENTLY of a partition holds it while it waits for every older snapshot, so an archive
transaction waiting for that partition deadlocked with it.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from central import locks
from central.archive import parquet
from central.archive.errors import ArchiveError, ArchiveMismatchError
from central.archive.record import ArchivedReading
from central.archive.store import ArchiveStore, Manifest, index_key, manifest_key, object_key

#: How often a process waiting for another's packing or archiving asks again (seconds).
_BUSY_POLL_S = 0.2

_PARTITION = re.compile(r"^reading_rows_p-?\d+$")
_BOUND = re.compile(r"FROM \('?(-?\d+)'?\) TO \('?(-?\d+)'?\)")

_PARTITIONS = """
SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'reading_rows'::regclass
"""

_ROWS = """
SELECT d.device_id, d.public_key, m.id AS meter_id, m.serial, r.seq, r.timestamp_ms, r.import_wh, r.export_wh,
       r.power_w, r.flags, r.prev_hash, r.signature, r.device_key, r.meter_key
FROM {part} r JOIN devices d ON d.device_key = r.device_key JOIN meters m ON m.meter_key = r.meter_key
ORDER BY r.device_key, r.seq
"""


_HOT = """
SELECT d.device_id, d.public_key, m.id AS meter_id, m.serial, r.seq, r.timestamp_ms, r.import_wh, r.export_wh,
       r.power_w, r.flags, r.prev_hash, r.signature, r.device_key, r.meter_key
FROM meters m JOIN reading_rows r ON r.meter_key = m.meter_key JOIN devices d ON d.device_key = r.device_key
WHERE m.id = $1 AND r.timestamp_ms >= $2 AND r.timestamp_ms < $3 AND (r.timestamp_ms, r.seq, d.device_id) > ($4, $5, $6)
ORDER BY r.timestamp_ms, r.seq, d.device_id LIMIT $7
"""


@dataclass(frozen=True, slots=True, order=True)
class Partition:
    from_ms: int
    to_ms: int
    name: str


def archived(row: Any) -> ArchivedReading:
    return ArchivedReading(
        row["device_id"], bytes(row["public_key"]), row["meter_id"], row["serial"], row["seq"], row["timestamp_ms"],
        row["import_wh"], row["export_wh"], row["power_w"], row["flags"], bytes(row["prev_hash"]),
        bytes(row["signature"]), row["device_key"], row["meter_key"],
    )


class PgArchive:
    def __init__(self, pool: asyncpg.Pool, store: ArchiveStore, *, row_group_rows: int = 250_000) -> None:
        self.pool = pool
        self.store = store
        self.row_group_rows = row_group_rows

    @asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """Hold ``locks.READING_PARTITIONS`` (a session lock on a connection of its own, outside any transaction).

        Taken by polling ``pg_try_advisory_lock``, never by waiting in ``pg_advisory_lock``: a statement waiting for
        the lock holds a snapshot, which the holder's REINDEX CONCURRENTLY would wait for — a deadlock through this
        process that PostgreSQL cannot see."""
        async with self.pool.acquire() as conn:
            while not await conn.fetchval(  # noqa: ASYNC110 - held by another process; no event to wait on
                "SELECT pg_try_advisory_lock($1)", locks.READING_PARTITIONS.key
            ):
                await asyncio.sleep(_BUSY_POLL_S)
            try:
                yield
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", locks.READING_PARTITIONS.key)

    async def partitions(self) -> list[Partition]:
        out = []
        for r in await self.pool.fetch(_PARTITIONS):
            m = _BOUND.search(r["bound"] or "")
            if m and _PARTITION.match(r["name"]):
                out.append(Partition(int(m.group(1)), int(m.group(2)), r["name"]))
        return sorted(out)

    async def ensure_ahead(self, now_ms: int, ahead_ms: int) -> int:
        """Create the partitions from ``now_ms`` to ``now_ms + ahead_ms``; returns how many exist in that span."""
        span = int(await self.pool.fetchval("SELECT span_ms FROM reading_partitioning"))
        starts = list(range(now_ms - now_ms % span, now_ms + ahead_ms + 1, span))
        await self.pool.execute("SELECT reading_partition_for(t) FROM unnest($1::bigint[]) AS t", starts)
        return len(starts)

    async def pack_before(self, cutoff_ms: int) -> int:
        """Rebuild the indexes of partitions whose range ended before ``cutoff_ms`` and were not packed yet (once
        each; REINDEX CONCURRENTLY does not block ingest). Returns how many were packed."""
        async with self._exclusive():
            return await self._pack_before(cutoff_ms)

    async def _pack_before(self, cutoff_ms: int) -> int:
        packed = {r["from_ms"] for r in await self.pool.fetch("SELECT from_ms FROM reading_partitions_packed")}
        done = 0
        for p in await self.partitions():
            if p.to_ms <= cutoff_ms and p.from_ms not in packed:
                try:
                    await self.pool.execute(f'REINDEX TABLE CONCURRENTLY "{p.name}"')
                except asyncpg.UndefinedTableError:
                    continue  # archived meanwhile
                await self.pool.execute(
                    "INSERT INTO reading_partitions_packed (from_ms) VALUES ($1) ON CONFLICT DO NOTHING", p.from_ms
                )
                done += 1
        return done

    async def archive_before(self, cutoff_ms: int, work_dir: Path | None = None) -> list[Manifest]:
        """Archive and drop every partition whose range ends at or before ``cutoff_ms``, oldest first."""
        async with self._exclusive():
            return [
                await self._archive_partition(p, work_dir) for p in await self.partitions() if p.to_ms <= cutoff_ms
            ]

    async def _archive_partition(self, p: Partition, work_dir: Path | None) -> Manifest:
        """Export, check and drop one partition of :meth:`partitions` (its name matched ``_PARTITION`` there, so it is
        safe in the statements below); the caller holds ``locks.READING_PARTITIONS``."""
        key = object_key(p.from_ms, p.to_ms)
        with tempfile.TemporaryDirectory(prefix="gtx-archive-", dir=work_dir) as tmp:
            path, index = Path(tmp) / "readings.parquet", Path(tmp) / "index.parquet"
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await conn.execute(f'LOCK TABLE "{p.name}" IN SHARE MODE')
                    # the name is checked against _PARTITION above and comes from the catalog
                    count = int(await conn.fetchval(f'SELECT count(*) FROM "{p.name}"'))  # noqa: S608
                    writer = parquet.ArchiveWriter(path, index, from_ms=p.from_ms, to_ms=p.to_ms)
                    chunk: list[ArchivedReading] = []
                    async for row in conn.cursor(_ROWS.format(part=f'"{p.name}"'), prefetch=10_000):
                        chunk.append(archived(row))
                        if len(chunk) >= self.row_group_rows:
                            await asyncio.to_thread(writer.write, chunk)
                            chunk = []
                    await asyncio.to_thread(writer.write, chunk)
                    digest = await asyncio.to_thread(writer.close)
                    if writer.rows != count:
                        raise ArchiveMismatchError(
                            f"{p.name}: {count} rows but {writer.rows} with a known device and meter; kept"
                        )
                    manifest = await asyncio.to_thread(self._store_checked, key, path, index, writer.rows, digest,
                                                       p.from_ms, p.to_ms)
                # Record and drop in a second, short transaction that locks the parent table before the partition,
                # in the order writers take them: dropping a partition needs the parent's ACCESS EXCLUSIVE lock, and
                # asking for it while holding the partition's SHARE lock deadlocked with a concurrent insert
                # (parent first, then partition). The partition is older than ingest accepts, so nothing is written
                # to it in between; the row count is checked again under the lock all the same.
                async with self.pool.acquire() as conn, conn.transaction():
                    await conn.execute("SET LOCAL lock_timeout = '10s'")
                    await conn.execute("LOCK TABLE reading_rows IN ACCESS EXCLUSIVE MODE")
                    again = int(await conn.fetchval(f'SELECT count(*) FROM "{p.name}"'))  # noqa: S608
                    if again != count:
                        raise ArchiveMismatchError(f"{p.name}: {again - count} rows arrived while archiving; kept")
                    await conn.execute(
                        "INSERT INTO reading_archives (from_ms, to_ms, object_key, readings, bytes, sha256) "
                        "VALUES ($1, $2, $3, $4, $5, $6)",
                        p.from_ms, p.to_ms, key, manifest.readings, manifest.size, bytes.fromhex(manifest.sha256),
                    )
                    await conn.execute(f'DROP TABLE "{p.name}"')
                    await conn.execute("DELETE FROM reading_partitions_packed WHERE from_ms = $1", p.from_ms)
                    # the per-window sums of those readings (migration 0108): archived ranges are summed from files
                    await conn.execute("DELETE FROM reading_windows WHERE window_ms >= $1 AND window_ms < $2",
                                       p.from_ms, p.to_ms)
            except asyncpg.PostgresError as exc:
                raise ArchiveError(f"archiving {p.name} failed: {type(exc).__name__}: {exc}") from exc
        return manifest

    def _store_checked(
        self, key: str, path: Path, index: Path, rows: int, digest: str, from_ms: int, to_ms: int
    ) -> Manifest:
        if parquet.read_digest(path) != (rows, digest):
            raise ArchiveMismatchError(f"{key}: the written file does not read back as the rows exported")
        self.store.put_file(index_key(key), index)
        self.store.put_file(key, path)
        with self.store.open(key) as stored:
            data_hash = hashlib.sha256()
            size = 0
            while block := stored.read(1 << 20):
                data_hash.update(block)
                size += len(block)
            stored.seek(0)
            if parquet.read_digest(stored) != (rows, digest):
                raise ArchiveMismatchError(f"{key}: the stored object does not read back as the rows exported")
        manifest = Manifest(key, from_ms, to_ms, rows, size, data_hash.hexdigest(), parquet.FORMAT)
        self.store.put(manifest_key(key), manifest.encode())
        return manifest


class ArchiveReader:
    """Readings of archived ranges, for the read paths (readings API, mint proofs). Slower than the hot table:
    one object open per archived range touched, then only the row groups holding the meter."""

    def __init__(self, store: ArchiveStore) -> None:
        self.store = store

    async def meter_readings(
        self, conn: asyncpg.Pool | asyncpg.Connection, meter_id: uuid.UUID, from_ms: int, to_ms: int
    ) -> list[ArchivedReading]:
        """The meter's archived readings with from_ms <= timestamp_ms < to_ms, by (timestamp, seq, device id)."""
        rows = await conn.fetch(
            "SELECT a.object_key, m.meter_key FROM reading_archives a JOIN meters m ON m.id = $1 "
            "WHERE a.from_ms < $3 AND a.to_ms > $2 ORDER BY a.from_ms",
            meter_id, from_ms, to_ms,
        )
        out: list[ArchivedReading] = []
        for r in rows:
            out.extend(await asyncio.to_thread(self._read, r["object_key"], r["meter_key"], from_ms, to_ms))
        out.sort(key=lambda a: (a.timestamp_ms, a.seq, a.device_id))
        return out

    def _read(self, key: str, meter_key: int, from_ms: int, to_ms: int) -> Sequence[ArchivedReading]:
        with self.store.open(index_key(key)) as index:
            groups = parquet.meter_groups(index, meter_key)
        if not groups:
            return []
        with self.store.open(key) as data:
            archive = parquet.ArchiveFile(data)
            return [
                r
                for group in archive.groups(groups)
                for r in group
                if r.meter_key == meter_key and from_ms <= r.timestamp_ms < to_ms
            ]


async def meter_rows(
    conn: asyncpg.Pool | asyncpg.Connection, meter_id: uuid.UUID, from_ms: int, to_ms: int, *,
    after: tuple[int, int, str] | None = None, limit: int | None = None, archive: ArchiveReader | None = None,
) -> list[ArchivedReading]:
    """The meter's readings with from_ms <= timestamp_ms < to_ms (and after the ``after`` cursor), hot and archived,
    in (timestamp, seq, device id) order; at most ``limit``."""
    cursor = after if after is not None else (from_ms - 1, 2**63 - 1, "")
    hot = [
        archived(r)
        for r in await conn.fetch(_HOT, meter_id, from_ms, to_ms, cursor[0], cursor[1], cursor[2], limit or 2**62)
    ]
    if archive is None:
        return hot
    old = [
        r for r in await archive.meter_readings(conn, meter_id, from_ms, to_ms)
        if (r.timestamp_ms, r.seq, r.device_id) > cursor
    ]
    if not old:
        return hot
    merged = sorted(hot + old, key=lambda r: (r.timestamp_ms, r.seq, r.device_id))
    return merged if limit is None else merged[:limit]
