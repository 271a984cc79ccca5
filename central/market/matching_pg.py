"""PostgreSQL side of hourly consumption matching (tables in migration 0101; windows from 0031)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from central.market.errors import ConflictError, NotFoundError
from central.market.matching import HOUR, HourRow, share_bp


@dataclass(frozen=True, slots=True)
class Redemption:
    id: UUID
    user_id: UUID
    meter: str
    hour: datetime
    amount: int
    wallet: str
    memo: str
    status: str
    message: bytes
    last_valid_block_height: int
    signature: str | None
    error: str | None


_SELECT = (
    "SELECT r.id, r.user_id, m.serial AS meter, r.hour, r.amount, r.wallet, r.memo, r.status, r.message, "
    "r.last_valid_block_height, r.signature, r.error FROM redemptions r JOIN meters m ON m.id = r.meter_id "
)


def _ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


class PgMatchingStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def wallet_of(self, user_id: UUID) -> str:
        w = await self.pool.fetchval("SELECT address FROM wallets WHERE user_id = $1", user_id)
        if w is None:
            raise ConflictError("link a wallet before redeeming")
        return str(w)

    async def metered(self, user_id: UUID, serial: str, hour: datetime) -> tuple[UUID, int]:
        """The meter's id and its import in the hour from the accounting windows the user owned; ``NotFoundError``
        when there are none."""
        r = await self.pool.fetchrow(
            "SELECT w.meter_id, sum(w.import_wh)::bigint AS wh "
            "FROM energy_windows w JOIN meters m ON m.id = w.meter_id "
            "WHERE m.serial = $1 AND w.owner_id = $2 AND w.window_start_ms >= $3 AND w.window_end_ms <= $4 "
            "GROUP BY w.meter_id",
            serial, user_id, _ms(hour), _ms(hour + HOUR),
        )
        if r is None:
            raise NotFoundError("no metered import of yours for this meter and hour")
        return r["meter_id"], int(r["wh"])

    async def reserve(self, rec: Redemption, meter_id: UUID, import_wh: int) -> None:
        """In one transaction: the hour's row (import from the windows), ``amount`` Wh reserved on it — refused with
        ``ConflictError`` when that would redeem more than the import (the CHECK is the backstop) — and the
        redemption recorded as built."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO matching_hours (meter_id, hour, owner_id, import_wh) VALUES ($1, $2, $3, $4) "
                "ON CONFLICT (meter_id, hour) DO UPDATE SET import_wh = greatest(matching_hours.import_wh, "
                "EXCLUDED.import_wh)",
                meter_id, rec.hour, rec.user_id, import_wh,
            )
            left = await conn.fetchval(
                "UPDATE matching_hours SET redeemed_wh = redeemed_wh + $3 "
                "WHERE meter_id = $1 AND hour = $2 AND redeemed_wh + $3 <= import_wh "
                "RETURNING import_wh - redeemed_wh",
                meter_id, rec.hour, rec.amount,
            )
            if left is None:
                row = await conn.fetchrow(
                    "SELECT import_wh, redeemed_wh FROM matching_hours WHERE meter_id = $1 AND hour = $2",
                    meter_id, rec.hour,
                )
                assert row is not None
                raise ConflictError(
                    f"only {row['import_wh'] - row['redeemed_wh']} Wh of this hour's {row['import_wh']} Wh import "
                    "are left to redeem (the rest is redeemed or being redeemed)"
                )
            await conn.execute(
                "INSERT INTO redemptions (id, user_id, meter_id, hour, amount, wallet, memo, message, "
                "last_valid_block_height) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                rec.id, rec.user_id, meter_id, rec.hour, rec.amount, rec.wallet, rec.memo, rec.message,
                rec.last_valid_block_height,
            )

    async def get(self, user_id: UUID | None, redemption_id: UUID) -> Redemption:
        r = await self.pool.fetchrow(
            _SELECT + "WHERE r.id = $1 AND ($2::uuid IS NULL OR r.user_id = $2)", redemption_id, user_id
        )
        if r is None:
            raise NotFoundError("no such redemption")
        return Redemption(**dict(r))

    async def mark_submitted(self, redemption_id: UUID, signature: str) -> bool:
        """built → submitted, once (False when it was not built any more)."""
        done = await self.pool.fetchval(
            "UPDATE redemptions SET status = 'submitted', signature = $2, updated_at = now() "
            "WHERE id = $1 AND status = 'built' RETURNING true",
            redemption_id, signature,
        )
        return bool(done)

    async def finish(self, redemption_id: UUID, status: str, error: str | None) -> None:
        """Record the outcome once; a burn that did not happen gives its reserved Wh back."""
        async with self.pool.acquire() as conn, conn.transaction():
            r = await conn.fetchrow(
                "UPDATE redemptions SET status = $2, error = $3, updated_at = now() "
                "WHERE id = $1 AND status IN ('built', 'submitted') RETURNING meter_id, hour, amount",
                redemption_id, status, error,
            )
            if r is not None and status != "confirmed":
                await conn.execute(
                    "UPDATE matching_hours SET redeemed_wh = redeemed_wh - $3 WHERE meter_id = $1 AND hour = $2",
                    r["meter_id"], r["hour"], r["amount"],
                )

    async def open_redemptions(self) -> list[Redemption]:
        rows = await self.pool.fetch(_SELECT + "WHERE r.status IN ('built', 'submitted') ORDER BY r.created_at")
        return [Redemption(**dict(r)) for r in rows]

    async def hours(self, user_id: UUID, start: datetime, end: datetime) -> list[HourRow]:
        """Per meter and hour of [start, end): the import of the user's accounting windows and the Wh of their
        confirmed burns, with the burns' signatures; hours without import are left out."""
        rows = await self.pool.fetch(
            """
            WITH imp AS (
                SELECT w.meter_id, to_timestamp(div(w.window_start_ms, 3600000) * 3600) AS hour,
                       sum(w.import_wh)::bigint AS import_wh
                FROM energy_windows w
                WHERE w.owner_id = $1 AND w.window_start_ms >= $2 AND w.window_start_ms < $3
                GROUP BY 1, 2
            ), burned AS (
                SELECT meter_id, hour, sum(amount)::bigint AS wh, array_agg(signature ORDER BY created_at) AS sigs
                FROM redemptions WHERE user_id = $1 AND status = 'confirmed' AND hour >= $4 AND hour < $5
                GROUP BY 1, 2
            )
            SELECT m.serial, imp.hour, imp.import_wh, coalesce(b.wh, 0)::bigint AS matched,
                   coalesce(b.sigs, '{}') AS sigs
            FROM imp JOIN meters m ON m.id = imp.meter_id
            LEFT JOIN burned b ON b.meter_id = imp.meter_id AND b.hour = imp.hour
            WHERE imp.import_wh > 0
            ORDER BY imp.hour, m.serial
            """,
            user_id, _ms(start), _ms(end), start, end,
        )
        return [
            HourRow(r["serial"], r["hour"], int(r["import_wh"]), int(r["matched"]),
                    share_bp(int(r["matched"]), int(r["import_wh"])), list(r["sigs"]))
            for r in rows
        ]
