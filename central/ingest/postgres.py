"""PostgreSQL adapter of :class:`central.ingest.port.IngestStore` (tables in migration 0002_readings.sql).

One batch = one transaction in four round trips: ``BEGIN`` + a per-device advisory lock (so worker processes sharing
the readings subscription judge one device's batches one at a time), one query loading the whole context (device,
bound meters, stored neighbours, chain head, gaps), one statement writing everything (readings via ``unnest``, chain
head, gaps, and a NOTIFY for live subscribers delivered on commit), ``COMMIT``. Round trips dominate the cost per
batch on this machine, so they are kept to that minimum; the lock must be its own statement so that the load's
snapshot is taken after it is granted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable
from typing import Any

import asyncpg

from central.ingest.errors import StoreError
from central.ingest.model import (
    BatchContext,
    BatchOutcome,
    ChainHead,
    ContextQuery,
    DeviceState,
    Gap,
    StoredReading,
)

#: LISTEN/NOTIFY channel announcing newly stored readings: ``{"device", "first", "last", "meters": [uuid...]}``.
NOTIFY_CHANNEL = "gtx_readings"
#: First key of the two-key advisory lock taken per device while a batch is judged and stored.
LOCK_NAMESPACE = 0x4754_5852  # "GTXR"

_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)

# kind | serial | meter_id | status | seq | seq2 | import_wh | export_wh | flags | prev_hash | record_hash
_LOAD = """
SELECT 'device' AS kind, m.serial, m.id AS meter_id, d.status, NULL::bigint AS seq, NULL::bigint AS seq2,
       NULL::bigint AS import_wh, NULL::bigint AS export_wh, NULL::int AS flags, NULL::bytea AS prev_hash,
       NULL::bytea AS record_hash
FROM devices d LEFT JOIN meters m ON m.device_id = d.device_id WHERE d.device_id = $1
UNION ALL
SELECT 'stored', meter_serial, NULL, NULL, seq, NULL, import_wh, export_wh, flags, prev_hash, record_hash
FROM readings WHERE device_id = $1 AND seq BETWEEN $2 - 1 AND $3 + 1
UNION ALL
SELECT 'before', r.* FROM unnest($4::text[]) AS s(serial) CROSS JOIN LATERAL (
    SELECT meter_serial, NULL::uuid, NULL::text, seq, NULL::bigint, import_wh, export_wh, flags, prev_hash, record_hash
    FROM readings WHERE device_id = $1 AND meter_serial = s.serial AND seq < $2 - 1 ORDER BY seq DESC LIMIT 1) r
UNION ALL
SELECT 'after', r.* FROM unnest($4::text[]) AS s(serial) CROSS JOIN LATERAL (
    SELECT meter_serial, NULL::uuid, NULL::text, seq, NULL::bigint, import_wh, export_wh, flags, prev_hash, record_hash
    FROM readings WHERE device_id = $1 AND meter_serial = s.serial AND seq > $3 + 1 ORDER BY seq ASC LIMIT 1) r
UNION ALL
SELECT 'head', NULL, NULL, NULL, last_seq, NULL, NULL, NULL, NULL, NULL, last_hash
FROM reading_chain_heads WHERE device_id = $1
UNION ALL
SELECT 'gap', NULL, NULL, NULL, first_seq, last_seq, NULL, NULL, NULL, NULL, NULL
FROM reading_gaps WHERE device_id = $1 AND last_seq >= $2 AND first_seq <= $3
"""

_WRITE = """
WITH ins AS (
    INSERT INTO readings (device_id, seq, meter_id, meter_serial, timestamp_ms, import_wh, export_wh, power_w, flags,
                          prev_hash, record_hash, raw)
    SELECT $1, * FROM unnest($2::bigint[], $3::uuid[], $4::text[], $5::bigint[], $6::bigint[], $7::bigint[],
                             $8::int[], $9::int[], $10::bytea[], $11::bytea[], $12::bytea[])
), head AS (
    INSERT INTO reading_chain_heads (device_id, last_seq, last_hash)
    SELECT $1, $13, $14 WHERE $13::bigint IS NOT NULL
    ON CONFLICT (device_id) DO UPDATE SET last_seq = EXCLUDED.last_seq, last_hash = EXCLUDED.last_hash,
                                          updated_at = now()
), gap_del AS (
    DELETE FROM reading_gaps
    WHERE device_id = $1 AND first_seq = ANY($15::bigint[]) AND NOT first_seq = ANY($16::bigint[])
), gap_ins AS (
    INSERT INTO reading_gaps (device_id, first_seq, last_seq) SELECT $1, * FROM unnest($16::bigint[], $17::bigint[])
    ON CONFLICT (device_id, first_seq) DO UPDATE SET last_seq = EXCLUDED.last_seq
)
SELECT pg_notify($18, $19)
"""


def lock_key(device_id: str) -> int:
    """Signed 32-bit advisory-lock key of a device (computed here so it can be inlined as a plain integer)."""
    return int.from_bytes(hashlib.blake2b(device_id.encode(), digest_size=4).digest(), "little", signed=True)


def _stored(row: Any) -> StoredReading:
    return StoredReading(
        row["seq"], row["serial"], row["import_wh"], row["export_wh"], row["flags"], bytes(row["prev_hash"]),
        bytes(row["record_hash"]),
    )


def context_from_rows(device_id: str, rows: list[Any]) -> BatchContext:
    device: DeviceState | None = None
    meters: dict[str, Any] = {}
    stored: dict[int, StoredReading] = {}
    before: dict[str, StoredReading] = {}
    after: dict[str, StoredReading] = {}
    head: ChainHead | None = None
    gaps: list[Gap] = []
    status = None
    for r in rows:
        kind = r["kind"]
        if kind == "device":
            status = r["status"]
            if r["serial"] is not None:
                meters[r["serial"]] = r["meter_id"]
        elif kind == "stored":
            stored[r["seq"]] = _stored(r)
        elif kind == "before":
            before[r["serial"]] = _stored(r)
        elif kind == "after":
            after[r["serial"]] = _stored(r)
        elif kind == "head":
            head = ChainHead(r["seq"], bytes(r["record_hash"]))
        else:
            gaps.append(Gap(r["seq"], r["seq2"]))
    if status is not None:
        device = DeviceState(device_id, status, meters)
    # Neighbours within [first-1, last+1] come from ``stored``; ``before``/``after`` hold the ones outside it.
    return BatchContext(device, stored, before, after, head, tuple(sorted(gaps)))


class PgIngestStore:
    """``pool`` may be a callable returning the pool, for composition roots where the pool opens at start-up."""

    def __init__(self, pool: asyncpg.Pool | Callable[[], asyncpg.Pool]) -> None:
        self._get_pool: Callable[[], asyncpg.Pool] = pool if callable(pool) else (lambda: pool)

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._get_pool()

    async def commit_batch(
        self, query: ContextQuery, decide: Callable[[BatchContext], BatchOutcome]
    ) -> BatchOutcome:
        try:
            async with self._pool.acquire() as conn:
                # One simple-protocol round trip; the key is an int computed here, never text from the wire.
                key = lock_key(query.device_id)
                await conn.execute(f"BEGIN; SELECT pg_advisory_xact_lock({LOCK_NAMESPACE}, {key})")
                try:
                    rows = await conn.fetch(
                        _LOAD, query.device_id, query.first_seq, query.last_seq, sorted(query.meter_serials)
                    )
                    outcome = decide(context_from_rows(query.device_id, rows))
                    if outcome.accepted:
                        await conn.execute(_WRITE, *self._write_args(query.device_id, outcome))
                    await conn.execute("COMMIT")
                except BaseException:
                    if not conn.is_closed():
                        with contextlib.suppress(*_DB_ERRORS):
                            await conn.execute("ROLLBACK")
                    raise
                return outcome
        except _DB_ERRORS as exc:
            raise StoreError(f"storing a batch of {query.device_id} failed: {type(exc).__name__}") from exc

    @staticmethod
    def _write_args(device_id: str, outcome: BatchOutcome) -> tuple[Any, ...]:
        acc = outcome.accepted
        readings = [a.reading for a in acc]
        head = outcome.new_head
        note = json.dumps({
            "device": device_id, "first": readings[0].seq, "last": readings[-1].seq,
            "meters": sorted({str(a.meter_id) for a in acc}),
        })
        return (
            device_id,
            [r.seq for r in readings],
            [a.meter_id for a in acc],
            [r.meter_serial for r in readings],
            [r.timestamp_ms for r in readings],
            [r.import_wh for r in readings],
            [r.export_wh for r in readings],
            [r.power_w for r in readings],
            [r.flags for r in readings],
            [r.prev_hash for r in readings],
            [a.record_hash for a in acc],
            [a.raw for a in acc],
            head.last_seq if head else None,
            head.last_hash if head else None,
            [g.first_seq for g in outcome.gaps_removed],
            [g.first_seq for g in outcome.gaps_added],
            [g.last_seq for g in outcome.gaps_added],
            NOTIFY_CHANNEL,
            note,
        )

    async def chain_head(self, device_id: str) -> ChainHead | None:
        try:
            row = await self._pool.fetchrow(
                "SELECT last_seq, last_hash FROM reading_chain_heads WHERE device_id = $1", device_id
            )
        except _DB_ERRORS as exc:
            raise StoreError(f"reading the chain head failed: {type(exc).__name__}") from exc
        return None if row is None else ChainHead(row["last_seq"], bytes(row["last_hash"]))

    async def device_known(self, device_id: str) -> bool:
        try:
            found = await self._pool.fetchval("SELECT EXISTS (SELECT 1 FROM devices WHERE device_id = $1)", device_id)
        except _DB_ERRORS as exc:
            raise StoreError(f"looking up a device failed: {type(exc).__name__}") from exc
        return bool(found)

    async def set_online(self, device_id: str, online: bool) -> None:
        try:
            await self._pool.execute(
                "UPDATE devices SET online = $2, last_seen_at = now() WHERE device_id = $1", device_id, online
            )
        except _DB_ERRORS as exc:
            raise StoreError(f"recording device status failed: {type(exc).__name__}") from exc
