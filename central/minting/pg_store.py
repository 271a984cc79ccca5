"""PostgreSQL adapter of the mint outbox (migration 0032)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from central.minting.errors import IntentNotFoundError, IntentNotRetryableError
from central.minting.plan import MintIntent
from central.minting.store import MintRecord, OpenTx, PlannedTx, StaleIntentsError, TxResult

#: pg_advisory_lock key of the single mint submitter (any constant unique in this database).
SUBMITTER_LOCK = 0x47_54_58_4D_49_4E_54  # "GTXMINT"

_PENDING = """
SELECT i.id, i.meter_id, i.window_start_ms, i.window_end_ms, i.owner_id, i.amount_wh, i.window_root,
       w.address AS wallet
FROM mint_intents i JOIN wallets w ON w.user_id = i.owner_id
WHERE i.state = 'pending'
ORDER BY i.owner_id, i.window_start_ms, i.id
LIMIT $1
"""

_SETTLE_TXS = """
UPDATE mint_txs t SET state = r.outcome, slot = r.slot, err = r.err, settled_at = now()
FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[]) AS r(tx_id, outcome, slot, err)
WHERE t.id = r.tx_id AND t.state = 'submitted'
RETURNING t.id, r.outcome, r.err
"""

_CONFIRM_INTENTS = """
UPDATE mint_intents SET state = 'confirmed', updated_at = now()
WHERE tx_id = ANY($1::bigint[]) AND state = 'submitted'
"""

_RELEASE_INTENTS = """
UPDATE mint_intents i SET attempts = i.attempts + 1, last_error = r.err, updated_at = now(),
    state = CASE WHEN i.attempts + 1 >= $3 THEN 'failed' ELSE 'pending' END,
    tx_id = CASE WHEN i.attempts + 1 >= $3 THEN i.tx_id END
FROM unnest($1::bigint[], $2::text[]) AS r(tx_id, err)
WHERE i.tx_id = r.tx_id AND i.state = 'submitted'
"""

_INSERT_TXS = """
INSERT INTO mint_txs (signature, last_valid_block_height, raw, memo, root)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::text[], $5::bytea[])
RETURNING id, signature
"""

_SUBMIT_INTENTS = """
UPDATE mint_intents i SET state = 'submitted', tx_id = u.tx_id, wallet = u.wallet, updated_at = now()
FROM unnest($1::bigint[], $2::bigint[], $3::text[]) AS u(id, tx_id, wallet)
WHERE i.id = u.id AND i.state = 'pending'
"""

_RECORD_COLUMNS = """
SELECT i.id, i.meter_id, i.owner_id, i.window_start_ms, i.window_end_ms, i.amount_wh,
       CASE WHEN i.state = 'pending' AND w.user_id IS NULL THEN 'accrued' ELSE i.state END AS status,
       coalesce(i.wallet, CASE WHEN i.state = 'pending' THEN w.address END) AS wallet,
       t.signature, i.attempts, i.last_error, i.updated_at
FROM mint_intents i
LEFT JOIN wallets w ON w.user_id = i.owner_id
LEFT JOIN mint_txs t ON t.id = i.tx_id
"""


def _record(r: Any) -> MintRecord:
    return MintRecord(
        r["id"],
        r["meter_id"],
        r["owner_id"],
        r["window_start_ms"],
        r["window_end_ms"],
        r["amount_wh"],
        r["status"],
        r["wallet"],
        r["signature"],
        r["attempts"],
        r["last_error"],
        r["updated_at"],
    )


class PgMintStore:
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def open_txs(self) -> list[OpenTx]:
        rows = await self._pool.fetch(
            "SELECT id, signature, last_valid_block_height, raw FROM mint_txs WHERE state = 'submitted' ORDER BY id"
        )
        return [OpenTx(r["id"], r["signature"], r["last_valid_block_height"], bytes(r["raw"])) for r in rows]

    async def settle(self, results: Sequence[TxResult], max_attempts: int) -> None:
        if not results:
            return
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                _SETTLE_TXS,
                [r.tx_id for r in results],
                [r.outcome for r in results],
                [r.slot for r in results],
                [r.err for r in results],
            )
            confirmed = [r["id"] for r in rows if r["outcome"] == "confirmed"]
            released = [(r["id"], r["err"]) for r in rows if r["outcome"] != "confirmed"]
            if confirmed:
                await conn.execute(_CONFIRM_INTENTS, confirmed)
            if released:
                await conn.execute(_RELEASE_INTENTS, [t for t, _ in released], [e for _, e in released], max_attempts)

    async def pending(self, limit: int) -> list[MintIntent]:
        rows = await self._pool.fetch(_PENDING, limit)
        return [
            MintIntent(
                r["id"],
                r["meter_id"],
                r["window_start_ms"],
                r["window_end_ms"],
                r["owner_id"],
                r["amount_wh"],
                bytes(r["window_root"]),
                r["wallet"],
            )
            for r in rows
        ]

    async def record_submission(self, txs: Sequence[PlannedTx]) -> list[int]:
        if not txs:
            return []
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                _INSERT_TXS,
                [t.signature for t in txs],
                [t.last_valid_block_height for t in txs],
                [t.raw for t in txs],
                [t.memo for t in txs],
                [t.root for t in txs],
            )
            by_sig = {r["signature"]: r["id"] for r in rows}
            ids, tx_ids, wallets = [], [], []
            for t in txs:
                for i in t.intents:
                    ids.append(i.id)
                    tx_ids.append(by_sig[t.signature])
                    wallets.append(i.wallet)
            status = await conn.execute(_SUBMIT_INTENTS, ids, tx_ids, wallets)
            if status != f"UPDATE {len(ids)}":
                raise StaleIntentsError("some intents were no longer pending")
        return [by_sig[t.signature] for t in txs]

    async def mints_of(self, owner_id: uuid.UUID, limit: int, before_id: int | None) -> list[MintRecord]:
        rows = await self._pool.fetch(
            _RECORD_COLUMNS
            + " WHERE i.owner_id = $1 AND ($3::bigint IS NULL OR i.id < $3) ORDER BY i.id DESC LIMIT $2",
            owner_id,
            limit,
            before_id,
        )
        return [_record(r) for r in rows]

    async def problems(self, stuck_before: datetime, limit: int) -> list[MintRecord]:
        rows = await self._pool.fetch(
            _RECORD_COLUMNS
            + " WHERE i.state = 'failed' OR (i.state = 'submitted' AND t.created_at < $1) ORDER BY i.id LIMIT $2",
            stuck_before,
            limit,
        )
        return [_record(r) for r in rows]

    async def retry(self, intent_id: int) -> MintRecord:
        async with self._pool.acquire() as conn, conn.transaction():
            state = await conn.fetchval("SELECT state FROM mint_intents WHERE id = $1 FOR UPDATE", intent_id)
            if state is None:
                raise IntentNotFoundError(f"no mint intent {intent_id}")
            if state != "failed":
                raise IntentNotRetryableError(f"intent {intent_id} is {state}; only failed intents can be retried")
            await conn.execute(
                "UPDATE mint_intents SET state = 'pending', attempts = 0, tx_id = NULL, updated_at = now() "
                "WHERE id = $1",
                intent_id,
            )
            row = await conn.fetchrow(_RECORD_COLUMNS + " WHERE i.id = $1", intent_id)
        return _record(row)


@contextlib.asynccontextmanager
async def submitter_lock(pool: Any) -> AsyncIterator[bool]:
    """Hold the single-submitter advisory lock for the duration (yields False if another process holds it)."""
    async with pool.acquire() as conn:
        got = await conn.fetchval("SELECT pg_try_advisory_lock($1)", SUBMITTER_LOCK)
        try:
            yield bool(got)
        finally:
            if got:
                await conn.execute("SELECT pg_advisory_unlock($1)", SUBMITTER_LOCK)
