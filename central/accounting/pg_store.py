"""PostgreSQL adapter of the accounting store: reads ``reading_rows`` (central-ingest, migration 0090),
``meters``/``devices`` (central-core), writes ``accounting_checkpoints`` and ``energy_windows`` (migration 0031)
and, in the same transaction, one chain-outbox mint intent (``central.minting``) per window with exported energy.

Each window's ``owner_id`` (and so its mint intent, and any certificate later issued over it) is the owner holding
the meter at the window's end, from ``meter_ownerships`` (migration 0032; rule in ``central.accounting.ownership``),
read in the recording transaction under a share lock on the meters, so a concurrent claim or release is either
entirely before or entirely after the attribution."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg

from central.accounting.errors import AccountingError
from central.accounting.mint_intent import MINT_KIND, MintIntent
from central.accounting.ownership import OwnershipPeriod, instant, owner_at_end
from central.accounting.store import ConcurrentAccountingError, MeterAccount
from central.accounting.window_energy import Checkpoint, ClosedWindows, MeterReading, Point
from central.chain.outbox import enqueue_many
from protocol.record import assemble

_DUE = """
SELECT m.id AS meter_id, m.owner_id, c.window_ms, c.boundary_ms, c.cum_import, c.cum_export, c.anchor_ts,
       c.anchor_seq, c.anchor_hash, c.anchor_raw_import, c.anchor_raw_export, c.anchor_cum_import,
       c.anchor_cum_export, c.origin_import, c.origin_export
FROM meters m
JOIN devices d ON d.device_id = m.device_id AND d.status = 'verified'
LEFT JOIN accounting_checkpoints c ON c.meter_id = m.id
WHERE m.owner_id IS NOT NULL
  AND EXISTS (
      SELECT 1 FROM reading_rows r
      WHERE r.meter_key = m.meter_key
        AND r.timestamp_ms >= $1::bigint + coalesce(
            c.boundary_ms,
            (SELECT min(r2.timestamp_ms) - mod(min(r2.timestamp_ms), $1::bigint)
             FROM reading_rows r2 WHERE r2.meter_key = m.meter_key)))
ORDER BY m.id
LIMIT $2
"""

# Readings from the anchor's (timestamp, seq) on (the record hash, the last part of the order, is computed from the
# rebuilt record here, and the core drops what is not after the anchor), up to the first one at or after the cutoff.
_AFTER = """
SELECT k.meter_id, r.timestamp_ms, r.seq, r.import_wh, r.export_wh, r.flags, r.power_w, r.prev_hash, r.signature,
       d.public_key, m.serial
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[]) AS k(meter_id, ts, seq, start_ms)
JOIN meters m ON m.id = k.meter_id
CROSS JOIN LATERAL (
    SELECT coalesce(k.start_ms, (SELECT min(x.timestamp_ms) - mod(min(x.timestamp_ms), $5::bigint)
                                 FROM reading_rows x WHERE x.meter_key = m.meter_key)) + $6::bigint AS cutoff
) c
CROSS JOIN LATERAL (
    SELECT min(y.timestamp_ms) AS bound FROM reading_rows y
    WHERE y.meter_key = m.meter_key AND y.timestamp_ms >= c.cutoff
) b
JOIN reading_rows r ON r.meter_key = m.meter_key AND (r.timestamp_ms, r.seq) >= (k.ts, k.seq)
               AND r.timestamp_ms <= coalesce(b.bound, c.cutoff)
JOIN devices d ON d.device_key = r.device_key
"""

_WINDOW_COLUMNS = (
    "meter_id",
    "window_start_ms",
    "window_end_ms",
    "owner_id",
    "import_wh",
    "export_wh",
    "start_import",
    "start_export",
    "end_import",
    "end_export",
    "record_hashes",
    "merkle_root",
)

_UPDATE_CHECKPOINTS = """
UPDATE accounting_checkpoints c SET boundary_ms = u.boundary_ms, cum_import = u.cum_import,
    cum_export = u.cum_export, anchor_ts = u.anchor_ts, anchor_seq = u.anchor_seq, anchor_hash = u.anchor_hash,
    anchor_raw_import = u.anchor_raw_import, anchor_raw_export = u.anchor_raw_export,
    anchor_cum_import = u.anchor_cum_import, anchor_cum_export = u.anchor_cum_export, updated_at = now()
FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[],
            $8::bytea[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[])
     AS u(meter_id, old_boundary, boundary_ms, cum_import, cum_export, anchor_ts, anchor_seq, anchor_hash,
          anchor_raw_import, anchor_raw_export, anchor_cum_import, anchor_cum_export)
WHERE c.meter_id = u.meter_id AND c.boundary_ms = u.old_boundary
"""

_INSERT_CHECKPOINT = """
INSERT INTO accounting_checkpoints (meter_id, window_ms, boundary_ms, cum_import, cum_export, anchor_ts, anchor_seq,
    anchor_hash, anchor_raw_import, anchor_raw_export, anchor_cum_import, anchor_cum_export, origin_import,
    origin_export)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
"""


_LOCK_OWNERS = "SELECT id, owner_id, claimed_at FROM meters WHERE id = ANY($1::uuid[]) ORDER BY id FOR SHARE"

_CLOSED_PERIODS = """
SELECT meter_id, owner_id, claimed_at, released_at FROM meter_ownerships
WHERE meter_id = ANY($1::uuid[]) AND released_at IS NOT NULL
"""


async def _ownership(conn: Any, meter_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[OwnershipPeriod]]:
    """Every meter's ownership periods: the closed ones recorded at release, and the current owner's open one
    (``meters`` is authoritative for it, also for owners seeded without a claim). Locks the meter rows (shared)
    until the transaction ends, so no claim or release can interleave with the attribution."""
    out: dict[uuid.UUID, list[OwnershipPeriod]] = {m: [] for m in meter_ids}
    for r in await conn.fetch(_LOCK_OWNERS, meter_ids):
        if r["owner_id"] is not None:
            claimed = r["claimed_at"] if r["claimed_at"] is not None else instant(0)
            out[r["id"]].append(OwnershipPeriod(r["owner_id"], claimed, None))
    for r in await conn.fetch(_CLOSED_PERIODS, meter_ids):
        out[r["meter_id"]].append(OwnershipPeriod(r["owner_id"], r["claimed_at"], r["released_at"]))
    return out


def _checkpoint(row: Any) -> Checkpoint | None:
    if row["boundary_ms"] is None:
        return None
    anchor = Point(
        row["anchor_ts"],
        row["anchor_seq"],
        bytes(row["anchor_hash"]),
        row["anchor_raw_import"],
        row["anchor_raw_export"],
        row["anchor_cum_import"],
        row["anchor_cum_export"],
    )
    return Checkpoint(
        row["boundary_ms"], row["cum_import"], row["cum_export"], anchor, row["origin_import"], row["origin_export"]
    )



async def enqueue_mints(conn: Any, intents: Sequence[MintIntent]) -> int:
    """Enqueue mint intents (inside the caller's transaction); returns how many were new."""
    return await enqueue_many(conn, MINT_KIND, [(i.key, i.payload()) for i in intents])


class PgAccountingStore:
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def due_meters(self, window_ms: int, limit: int) -> list[MeterAccount]:
        rows = await self._pool.fetch(_DUE, window_ms, limit)
        out = []
        for row in rows:
            if row["window_ms"] is not None and row["window_ms"] != window_ms:
                raise AccountingError(
                    f"meter {row['meter_id']} was accounted with {row['window_ms']} ms windows, not {window_ms}"
                )
            out.append(MeterAccount(row["meter_id"], row["owner_id"], _checkpoint(row)))
        return out

    async def readings_after(
        self, accounts: Sequence[MeterAccount], window_ms: int, horizon_ms: int
    ) -> dict[uuid.UUID, list[MeterReading]]:
        ids, ts, seq, starts = [], [], [], []
        for a in accounts:
            ids.append(a.meter_id)
            cp = a.checkpoint
            ts.append(cp.anchor.timestamp_ms if cp else -1)
            seq.append(cp.anchor.seq if cp else 0)
            starts.append(cp.boundary_ms if cp else None)
        out: dict[uuid.UUID, list[MeterReading]] = {a.meter_id: [] for a in accounts}
        for r in await self._pool.fetch(_AFTER, ids, ts, seq, starts, window_ms, horizon_ms):
            raw = assemble(
                bytes(r["public_key"]), r["serial"], r["seq"], r["timestamp_ms"], r["import_wh"], r["export_wh"],
                r["power_w"], r["flags"], r["prev_hash"], r["signature"],
            )
            digest = hashlib.sha256(raw).digest()
            out[r["meter_id"]].append(
                MeterReading(r["timestamp_ms"], r["seq"], r["import_wh"], r["export_wh"], r["flags"], digest)
            )
        for found in out.values():
            found.sort(key=lambda m: m.key)
        return out

    async def record(self, window_ms: int, results: Sequence[tuple[MeterAccount, ClosedWindows]]) -> None:
        updates, inserts = [], []
        for a, s in results:
            cp = s.checkpoint
            assert cp is not None
            an = cp.anchor
            tail = (
                cp.boundary_ms,
                cp.cum_import,
                cp.cum_export,
                an.timestamp_ms,
                an.seq,
                an.record_hash,
                an.raw_import,
                an.raw_export,
                an.cum_import,
                an.cum_export,
            )
            if a.checkpoint is None:
                inserts.append((a.meter_id, window_ms, *tail, cp.origin_import, cp.origin_export))
            else:
                updates.append((a.meter_id, a.checkpoint.boundary_ms, *tail))
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                periods = await _ownership(conn, sorted({a.meter_id for a, _ in results}))
                rows = []
                intents: list[MintIntent] = []  # one per window with exported energy
                for a, s in results:
                    for w in s.windows:
                        owner = owner_at_end(periods[a.meter_id], w.end_ms)
                        if owner is None:
                            raise ConcurrentAccountingError(f"meter {a.meter_id} was released before {w.end_ms}")
                        rows.append(
                            (
                                a.meter_id,
                                w.start_ms,
                                w.end_ms,
                                owner,
                                w.import_wh,
                                w.export_wh,
                                w.start_import,
                                w.start_export,
                                w.end_import,
                                w.end_export,
                                list(w.record_hashes),
                                w.merkle_root,
                            )
                        )
                        if w.export_wh > 0:
                            intents.append(
                                MintIntent(
                                    id=0, meter_id=a.meter_id, owner_id=owner, window_start_ms=w.start_ms,
                                    window_end_ms=w.end_ms, amount_wh=w.export_wh, window_root=w.merkle_root,
                                )
                            )
                if updates:
                    status = await conn.execute(_UPDATE_CHECKPOINTS, *(list(col) for col in zip(*updates, strict=True)))
                    if status != f"UPDATE {len(updates)}":
                        raise ConcurrentAccountingError("a checkpoint moved since it was read")
                if inserts:
                    await conn.executemany(_INSERT_CHECKPOINT, inserts)
                await conn.copy_records_to_table("energy_windows", records=rows, columns=_WINDOW_COLUMNS)
                # one mint intent per window with exported energy, in the same transaction (chain outbox)
                await enqueue_mints(conn, intents)
        except asyncpg.UniqueViolationError as exc:
            raise ConcurrentAccountingError("windows or checkpoints recorded concurrently") from exc
