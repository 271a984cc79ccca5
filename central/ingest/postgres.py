"""PostgreSQL adapter of :class:`central.ingest.port.IngestStore` (tables in migrations 0002_readings.sql,
0090_compact_readings.sql and 0108_reading_windows.sql).

A group of batches (of distinct devices) = one transaction in four round trips: ``BEGIN`` + per-device advisory
locks in one global order (so worker processes sharing the readings subscription judge one device's batches one at a
time, without deadlocks), one query loading every context (device, bound meters, stored neighbours, chain head,
gaps), one statement writing everything (readings via ``unnest``, chain heads, gaps, the per-window sums of dense
windows, and a NOTIFY per device for live subscribers, delivered on commit), ``COMMIT``. Round trips and commits
dominate the cost per batch here, so they are kept to that minimum and shared by the group; the locks are their own
statements so that the load's snapshot is taken after they are granted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from central.ingest.errors import StoreError
from central.ingest.events import NOTIFY_CHANNEL
from central.ingest.model import (
    BatchContext,
    BatchOutcome,
    ChainHead,
    DeviceState,
    Gap,
    StoredReading,
)
from central.ingest.port import PendingBatch
from central.locks import INGEST_DEVICE
from protocol.record import POWER_NOT_AVAILABLE, assemble
from protocol.status import DeviceStatus

#: First key of the two-key advisory lock taken per device while a batch is judged and stored.
LOCK_NAMESPACE = INGEST_DEVICE.space

_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)

# Columns: kind | device_id | serial | meter_id | status | seq | seq2 | import_wh | export_wh | flags | power_w |
# prev_hash | signature | ts | device_key | meter_key | public_key. $1 device ids, $2 first seqs, $3 last seqs
# (aligned); $4/$5 (device id, meter serial) pairs. For 'device' rows ``ts`` is the registration time
# (``devices.created_at``) in ms; for readings their timestamp. Stored records come back in pieces
# (``reading_rows``, migration 0090); their hashes are computed here from the rebuilt bytes.
_LOAD = """
WITH q AS (
    SELECT q.device_id, q.first_seq, q.last_seq, d.device_key
    FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS q(device_id, first_seq, last_seq)
    JOIN devices d ON d.device_id = q.device_id
), s AS (
    SELECT q.*, m.meter_key, m.serial FROM unnest($4::text[], $5::text[]) AS p(device_id, serial)
    JOIN q ON q.device_id = p.device_id JOIN meters m ON m.serial = p.serial
)
SELECT 'device' AS kind, d.device_id, m.serial, m.id AS meter_id, d.status, NULL::bigint AS seq,
       NULL::bigint AS seq2, NULL::bigint AS import_wh, NULL::bigint AS export_wh, NULL::int AS flags,
       NULL::int AS power_w, NULL::bytea AS prev_hash, NULL::bytea AS signature,
       floor(extract(epoch FROM d.created_at) * 1000)::bigint AS ts, d.device_key, m.meter_key, d.public_key
FROM devices d LEFT JOIN meters m ON m.device_id = d.device_id WHERE d.device_id = ANY($1::text[])
UNION ALL
SELECT 'stored', q.device_id, m.serial, NULL, NULL, r.seq, NULL, r.import_wh, r.export_wh, r.flags, r.power_w,
       r.prev_hash, r.signature, r.timestamp_ms, NULL, NULL, NULL
FROM q JOIN reading_rows r ON r.device_key = q.device_key AND r.seq BETWEEN q.first_seq - 1 AND q.last_seq + 1
JOIN meters m ON m.meter_key = r.meter_key
UNION ALL
SELECT 'before', s.device_id, s.serial, NULL, NULL, r.seq, NULL, r.import_wh, r.export_wh, r.flags, r.power_w,
       r.prev_hash, r.signature, r.timestamp_ms, NULL, NULL, NULL
FROM s CROSS JOIN LATERAL (
    SELECT * FROM reading_rows WHERE device_key = s.device_key AND meter_key = s.meter_key AND seq < s.first_seq - 1
    ORDER BY seq DESC LIMIT 1) r
UNION ALL
SELECT 'after', s.device_id, s.serial, NULL, NULL, r.seq, NULL, r.import_wh, r.export_wh, r.flags, r.power_w,
       r.prev_hash, r.signature, r.timestamp_ms, NULL, NULL, NULL
FROM s CROSS JOIN LATERAL (
    SELECT * FROM reading_rows WHERE device_key = s.device_key AND meter_key = s.meter_key AND seq > s.last_seq + 1
    ORDER BY seq ASC LIMIT 1) r
UNION ALL
SELECT 'head', h.device_id, NULL, NULL, NULL, h.last_seq, NULL, NULL, NULL, NULL, NULL, NULL, h.last_hash, NULL,
       NULL, NULL, NULL
FROM reading_chain_heads h WHERE h.device_id = ANY($1::text[])
UNION ALL
SELECT 'gap', g.device_id, NULL, NULL, NULL, g.first_seq, g.last_seq, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, NULL, NULL
FROM q JOIN reading_gaps g ON g.device_id = q.device_id AND g.last_seq >= q.first_seq AND g.first_seq <= q.last_seq
"""

_WRITE = """
WITH ins AS (
    INSERT INTO reading_rows (seq, timestamp_ms, import_wh, export_wh, device_key, meter_key, power_w, flags,
                              prev_hash, signature)
    SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::int[], $6::int[], $7::int[],
                         $8::smallint[], $9::bytea[], $10::bytea[])
), head AS (
    INSERT INTO reading_chain_heads (device_id, last_seq, last_hash)
    SELECT * FROM unnest($11::text[], $12::bigint[], $13::bytea[])
    ON CONFLICT (device_id) DO UPDATE SET last_seq = EXCLUDED.last_seq, last_hash = EXCLUDED.last_hash,
                                          updated_at = now()
), added AS (
    SELECT * FROM unnest($16::text[], $17::bigint[], $18::bigint[]) AS a(device_id, first_seq, last_seq)
), gap_del AS (
    DELETE FROM reading_gaps g USING unnest($14::text[], $15::bigint[]) AS x(device_id, first_seq)
    WHERE g.device_id = x.device_id AND g.first_seq = x.first_seq
      AND NOT EXISTS (SELECT 1 FROM added a WHERE a.device_id = x.device_id AND a.first_seq = x.first_seq)
), gap_ins AS (
    INSERT INTO reading_gaps (device_id, first_seq, last_seq) SELECT * FROM added
    ON CONFLICT (device_id, first_seq) DO UPDATE SET last_seq = EXCLUDED.last_seq
), new_w AS (
    SELECT n.meter_key, n.ts - ((n.ts % 900000) + 900000) % 900000 AS window_ms, count(*)::int AS readings,
           max(ARRAY[n.ts, n.seq, n.imp, n.exp]) AS last, min(n.device_key) AS device_key,
           bool_or(n.flags & 2 <> 0) OR min(n.device_key) <> max(n.device_key) AS inexact
    FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::int[], $6::int[], $8::smallint[])
        AS n(seq, ts, imp, exp, device_key, meter_key, flags)
    GROUP BY 1, 2
), win AS (
    -- Per-window sums (migration 0108): a window with a row gets the new readings added; one without gets a row
    -- once it holds two readings, from those already stored in it (this statement's snapshot: without the new
    -- ones) plus the new ones.
    INSERT INTO reading_windows AS s (meter_key, window_ms, readings, last, device_key, inexact)
    SELECT w.meter_key, w.window_ms, w.readings + coalesce(e.readings, 0), greatest(w.last, e.last), w.device_key,
           w.inexact OR coalesce(e.inexact, false)
    FROM new_w w
    LEFT JOIN reading_windows k ON k.meter_key = w.meter_key AND k.window_ms = w.window_ms
    LEFT JOIN LATERAL (
        SELECT count(*)::int AS readings, max(ARRAY[r.timestamp_ms, r.seq, r.import_wh, r.export_wh]) AS last,
               bool_or(r.flags & 2 <> 0) OR min(r.device_key) <> max(r.device_key)
                   OR min(r.device_key) <> w.device_key AS inexact
        FROM reading_rows r
        WHERE k.meter_key IS NULL AND r.meter_key = w.meter_key AND r.timestamp_ms >= w.window_ms
          AND r.timestamp_ms < w.window_ms + 900000
    ) e ON true
    WHERE k.meter_key IS NOT NULL OR w.readings + coalesce(e.readings, 0) >= 2
    ORDER BY w.meter_key, w.window_ms  -- one lock order for every writer
    -- A conflict with a row this snapshot did not see: another gateway's transaction made it at once (the same
    -- gateway's batches are serialised by its advisory lock); the older readings may then count twice, and the
    -- gateways differ, so the window is marked inexact.
    ON CONFLICT (meter_key, window_ms) DO UPDATE SET
        readings = s.readings + EXCLUDED.readings,
        last = greatest(s.last, EXCLUDED.last),
        inexact = s.inexact OR EXCLUDED.inexact OR s.device_key <> EXCLUDED.device_key
)
SELECT count(pg_notify($19, n)) FROM unnest($20::text[]) AS n
"""

#: Creates (and attaches) the partitions the accepted readings fall in, when this process has not seen them yet.
_PARTITIONS = "SELECT reading_partition_for(t) FROM unnest($1::bigint[]) AS t"
_SPAN = "SELECT span_ms FROM reading_partitioning"


@dataclass(frozen=True, slots=True)
class Keys:
    """Compact keys of the devices and meters of one group (from ``_LOAD``), for the rows written."""

    devices: dict[str, int]
    meters: dict[str, int]  # meter serial -> meter_key


def lock_key(device_id: str) -> int:
    """Signed 32-bit advisory-lock key of a device (computed here so it can be inlined as a plain integer)."""
    return int.from_bytes(hashlib.blake2b(device_id.encode(), digest_size=4).digest(), "little", signed=True)


def _stored(row: Any, public_key: bytes) -> StoredReading:
    raw = assemble(
        public_key, row["serial"], row["seq"], row["ts"], row["import_wh"], row["export_wh"], row["power_w"],
        row["flags"], row["prev_hash"], row["signature"],
    )
    return StoredReading(
        row["seq"], row["serial"], row["import_wh"], row["export_wh"], row["flags"], bytes(row["prev_hash"]),
        hashlib.sha256(raw).digest(), row["ts"],
    )


def contexts_from_rows(device_ids: list[str], rows: list[Any]) -> tuple[dict[str, BatchContext], Keys]:
    """Split the rows of ``_LOAD`` into one context per device, and the compact keys the write needs."""
    status: dict[str, str] = {}
    registered: dict[str, int] = {}
    public_keys: dict[str, bytes] = {}
    keys = Keys({}, {})
    meters: dict[str, dict[str, Any]] = {d: {} for d in device_ids}
    stored: dict[str, dict[int, StoredReading]] = {d: {} for d in device_ids}
    before: dict[str, dict[str, StoredReading]] = {d: {} for d in device_ids}
    after: dict[str, dict[str, StoredReading]] = {d: {} for d in device_ids}
    heads: dict[str, ChainHead] = {}
    gaps: dict[str, list[Gap]] = {d: [] for d in device_ids}
    for r in rows:
        if r["kind"] == "device":
            dev = r["device_id"]
            status[dev] = r["status"]
            registered[dev] = r["ts"]
            public_keys[dev] = bytes(r["public_key"])
            keys.devices[dev] = r["device_key"]
            if r["serial"] is not None:
                meters[dev][r["serial"]] = r["meter_id"]
                keys.meters[r["serial"]] = r["meter_key"]
    for r in rows:
        kind, dev = r["kind"], r["device_id"]
        if kind == "stored":
            stored[dev][r["seq"]] = _stored(r, public_keys[dev])
        elif kind == "before":
            before[dev][r["serial"]] = _stored(r, public_keys[dev])
        elif kind == "after":
            after[dev][r["serial"]] = _stored(r, public_keys[dev])
        elif kind == "head":
            heads[dev] = ChainHead(r["seq"], bytes(r["signature"]))
        elif kind == "gap":
            gaps[dev].append(Gap(r["seq"], r["seq2"]))
    contexts = {
        d: BatchContext(
            DeviceState(d, status[d], meters[d], registered[d]) if d in status else None,
            stored[d], before[d], after[d], heads.get(d), tuple(sorted(gaps[d])),
        )
        for d in device_ids
    }
    return contexts, keys


def _write_args(outcomes: list[tuple[str, BatchOutcome]], keys: Keys) -> tuple[Any, ...]:
    rows = [(d, a) for d, o in outcomes for a in o.accepted]
    readings = [a.reading for _d, a in rows]
    heads = [(d, o.new_head) for d, o in outcomes if o.new_head is not None]
    removed = [(d, g) for d, o in outcomes for g in o.gaps_removed]
    added = [(d, g) for d, o in outcomes for g in o.gaps_added]
    notes = [
        json.dumps({
            "device": d, "first": o.accepted[0].reading.seq, "last": o.accepted[-1].reading.seq,
            "meters": sorted({str(a.meter_id) for a in o.accepted}),
        })
        for d, o in outcomes if o.accepted
    ]
    return (
        [r.seq for r in readings],
        [r.timestamp_ms for r in readings],
        [r.import_wh for r in readings],
        [r.export_wh for r in readings],
        [keys.devices[d] for d, _a in rows],
        [keys.meters[r.meter_serial] for r in readings],
        [POWER_NOT_AVAILABLE if r.power_w is None else r.power_w for r in readings],
        [r.flags for r in readings],
        [r.prev_hash for r in readings],
        [r.signature for r in readings],
        [d for d, _h in heads],
        [h.last_seq for _d, h in heads],
        [h.last_hash for _d, h in heads],
        [d for d, _g in removed],
        [g.first_seq for _d, g in removed],
        [d for d, _g in added],
        [g.first_seq for _d, g in added],
        [g.last_seq for _d, g in added],
        NOTIFY_CHANNEL,
        notes,
    )


class PgIngestStore:
    """``pool`` may be a callable returning the pool, for composition roots where the pool opens at start-up."""

    def __init__(self, pool: asyncpg.Pool | Callable[[], asyncpg.Pool]) -> None:
        self._get_pool: Callable[[], asyncpg.Pool] = pool if callable(pool) else (lambda: pool)
        self._span_ms = 0  # partition span (``reading_partitioning``), read once
        self._partitions: set[int] = set()  # partition starts known to exist (cleared on any store failure)

    @property
    def _pool(self) -> asyncpg.Pool:
        return self._get_pool()

    async def commit_batches(self, batches: Sequence[PendingBatch]) -> list[BatchOutcome | Exception]:
        device_ids = [b.query.device_id for b in batches]
        if len(set(device_ids)) != len(device_ids):
            raise ValueError("one batch per device per group")
        if not batches:
            return []
        # Locks in one global order (sorted keys), so concurrent groups in other processes cannot deadlock.
        lock_keys = sorted({lock_key(d) for d in device_ids})
        locks = "".join(f"SELECT pg_advisory_xact_lock({LOCK_NAMESPACE}, {key});" for key in lock_keys)
        pairs = [(b.query.device_id, s) for b in batches for s in sorted(b.query.meter_serials)]
        try:
            async with self._pool.acquire() as conn:
                # One simple-protocol round trip; the keys are ints computed here, never text from the wire.
                await conn.execute("BEGIN;" + locks)
                try:
                    rows = await conn.fetch(
                        _LOAD, device_ids, [b.query.first_seq for b in batches], [b.query.last_seq for b in batches],
                        [p[0] for p in pairs], [p[1] for p in pairs],
                    )
                    contexts, keys = contexts_from_rows(device_ids, rows)
                    results: list[BatchOutcome | Exception] = []
                    for b in batches:
                        try:
                            results.append(b.decide(contexts[b.query.device_id]))
                        except Exception as exc:  # noqa: BLE001 - one bad batch must not sink the group
                            results.append(exc)
                    done = [(d, r) for d, r in zip(device_ids, results, strict=True) if isinstance(r, BatchOutcome)]
                    if any(o.accepted for _d, o in done):
                        await self._ensure_partitions(conn, done)
                        await conn.execute(_WRITE, *_write_args(done, keys))
                    await conn.execute("COMMIT")
                except BaseException:
                    if not conn.is_closed():
                        with contextlib.suppress(*_DB_ERRORS):
                            await conn.execute("ROLLBACK")
                    raise
                return results
        except _DB_ERRORS as exc:
            self._partitions.clear()  # e.g. a partition dropped by the archive since it was seen
            raise StoreError(f"storing {len(batches)} batch(es) failed: {type(exc).__name__}") from exc

    async def _ensure_partitions(self, conn: asyncpg.Connection, done: list[tuple[str, BatchOutcome]]) -> None:
        """Create the partitions the accepted readings need, unless this process knows they exist (the usual case:
        the ``reading-partitions`` job creates them ahead, so this is a set lookup per reading)."""
        if not self._span_ms:
            self._span_ms = int(await conn.fetchval(_SPAN))
        span = self._span_ms
        starts = {a.reading.timestamp_ms - a.reading.timestamp_ms % span for _d, o in done for a in o.accepted}
        missing = sorted(starts - self._partitions)
        if missing:
            await conn.execute(_PARTITIONS, missing)
            self._partitions.update(missing)

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

    async def record_status(self, device_id: str, status: DeviceStatus) -> None:
        try:
            await self._pool.execute(
                "UPDATE devices SET online = $2, last_seen_at = now(), outbox_depth = $3, outbox_oldest_age_s = $4, "
                "meters_down = $5, alarms = $6 WHERE device_id = $1",
                device_id,
                status.online,
                status.outbox_depth,
                status.oldest_age_s,
                status.meters_down,
                list(status.alarms),
            )
        except _DB_ERRORS as exc:
            raise StoreError(f"recording device status failed: {type(exc).__name__}") from exc
