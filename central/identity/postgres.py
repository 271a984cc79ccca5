"""Identity's stores on PostgreSQL (asyncpg): the SQL behind ``central.identity.port``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from central.identity.model import ClaimableMeter, ClaimAttempt, OwnedMeter

_OWNED = (
    "SELECT m.id, m.serial, m.device_id, d.status AS device_status, m.model, m.protocol, m.source, m.claimed_at"
    " FROM meters m JOIN devices d ON d.device_id = m.device_id"
)


def _owned(r: asyncpg.Record) -> OwnedMeter:
    return OwnedMeter(r["id"], r["serial"], r["device_id"], r["device_status"], r["model"], r["protocol"],
                      r["source"], r["claimed_at"])  # fmt: skip


def _attempt(r: asyncpg.Record) -> ClaimAttempt:
    return ClaimAttempt(r["user_id"], r["serial"], r["address"], r["user_agent"], r["outcome"], r["at"])


class _PgClaimTx:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def recent_attempts(self, user_id: UUID, within: timedelta, limit: int) -> list[datetime]:
        rows = await self._conn.fetch(
            "SELECT at FROM meter_claim_attempts WHERE user_id = $1 AND outcome <> 'rate_limited'"
            " AND at > now() - $2::interval ORDER BY at DESC LIMIT $3",
            user_id, within, limit,
        )  # fmt: skip
        return [r["at"] for r in rows]

    async def recent_wrong_keys(self, serial: str, within: timedelta, limit: int) -> list[datetime]:
        rows = await self._conn.fetch(
            "SELECT at FROM meter_claim_attempts WHERE serial = $1 AND outcome = 'wrong_key'"
            " AND at > now() - $2::interval ORDER BY at DESC LIMIT $3",
            serial, within, limit,
        )  # fmt: skip
        return [r["at"] for r in rows]

    async def meter(self, serial: str) -> ClaimableMeter | None:
        row = await self._conn.fetchrow(
            "SELECT id, meter_key_hash, owner_id FROM meters WHERE serial = $1 FOR UPDATE", serial
        )
        return None if row is None else ClaimableMeter(row["id"], row["meter_key_hash"], row["owner_id"])

    async def take(self, meter_id: UUID, user_id: UUID) -> None:
        # the period starts once the row is locked, never before the previous owner's release
        at = await self._conn.fetchval(
            "UPDATE meters SET owner_id = $2, claimed_at = greatest(clock_timestamp(), released_at)"
            " WHERE id = $1 RETURNING claimed_at", meter_id, user_id,
        )  # fmt: skip
        # the ownership period accounting attributes windows by (central/accounting/ownership.py)
        await self._conn.execute(
            "INSERT INTO meter_ownerships (meter_id, owner_id, claimed_at) VALUES ($1, $2, $3)", meter_id, user_id, at
        )

    async def record(self, user_id: UUID, serial: str, address: str, user_agent: str, outcome: str) -> None:
        await self._conn.execute(
            "INSERT INTO meter_claim_attempts (user_id, serial, address, user_agent, outcome)"
            " VALUES ($1, $2, $3, $4, $5)",
            user_id, serial, address, user_agent, outcome,
        )  # fmt: skip


class PostgresMeterStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def claiming(self, user_id: UUID, serial: str) -> AsyncIterator[_PgClaimTx]:
        async with self._pool.acquire() as conn, conn.transaction():
            # A user's claims, then a serial's, are serialised (always in this order: no deadlock).
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('meter-claim:' || $1::uuid::text, 0))",
                               user_id)  # fmt: skip
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended('meter-claim-serial:' || $1, 0))",
                               serial)  # fmt: skip
            yield _PgClaimTx(conn)

    async def owned(self, serial: str) -> OwnedMeter | None:
        row = await self._pool.fetchrow(_OWNED + " WHERE m.serial = $1", serial)
        return None if row is None else _owned(row)

    async def list_owned(self, user_id: UUID) -> list[OwnedMeter]:
        rows = await self._pool.fetch(_OWNED + " WHERE m.owner_id = $1 ORDER BY m.serial", user_id)
        return [_owned(r) for r in rows]

    async def release(self, user_id: UUID, serial: str) -> bool:
        # The release instant is taken once the meter row is locked — after any accounting pass that was
        # attributing windows to this owner has committed — and never before the end of the meter's last settled
        # window, so windows already recorded for this owner always end within their period
        # (central.accounting.ownership).
        async with self._pool.acquire() as conn, conn.transaction():
            meter_id = await conn.fetchval(
                "SELECT id FROM meters WHERE serial = $1 AND owner_id = $2 FOR UPDATE", serial, user_id
            )
            if meter_id is None:
                return False
            at = await conn.fetchval(
                "SELECT greatest(clock_timestamp(), (SELECT 'epoch'::timestamptz + boundary_ms * interval '1 ms'"
                " FROM accounting_checkpoints WHERE meter_id = $1))", meter_id,
            )  # fmt: skip
            await conn.execute(
                "UPDATE meters SET owner_id = NULL, claimed_at = NULL, released_at = $2 WHERE id = $1", meter_id, at
            )
            closed = await conn.execute(
                "UPDATE meter_ownerships SET released_at = $2 WHERE meter_id = $1 AND released_at IS NULL",
                meter_id, at,
            )  # fmt: skip
            if closed == "UPDATE 0":  # owner set outside claim (seeded by SQL): record the period we know of
                await conn.execute(
                    "INSERT INTO meter_ownerships (meter_id, owner_id, claimed_at, released_at)"
                    " VALUES ($1, $2, $3, $3)", meter_id, user_id, at,
                )  # fmt: skip
        return True

    async def attempts(self, user_id: UUID | None, limit: int) -> list[ClaimAttempt]:
        rows = await self._pool.fetch(
            "SELECT * FROM meter_claim_attempts WHERE ($1::uuid IS NULL OR user_id = $1) ORDER BY id DESC LIMIT $2",
            user_id, limit,
        )  # fmt: skip
        return [_attempt(r) for r in rows]
