"""PostgreSQL adapter of :class:`central.market.standing.StandingStore` (tables in migration 0100)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from central.market.errors import NotFoundError
from central.market.standing import (
    DAY,
    DayUsage,
    RunOutcome,
    RunView,
    Sizing,
    StandingOrder,
    StandingSpec,
    StandingStatus,
    StandingView,
)

_VIEW_SQL = """
SELECT s.id, s.side, s.price, s.max_qty_wh, s.daily_energy_wh, s.daily_spend, s.status, s.created_at,
       r.epoch_start AS last_epoch, r.outcome AS last_outcome, r.reason AS last_reason
FROM standing_orders s
LEFT JOIN LATERAL (
    SELECT epoch_start, outcome, reason FROM standing_runs WHERE standing_id = s.id ORDER BY epoch_start DESC LIMIT 1
) r ON true
"""


def _view(r: asyncpg.Record) -> StandingView:
    return StandingView(**{k: r[k] for k in StandingView.__dataclass_fields__})


class PgStandingStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, user_id: UUID, spec: StandingSpec) -> StandingView:
        sid = await self.pool.fetchval(
            "INSERT INTO standing_orders (user_id, side, price, max_qty_wh, daily_energy_wh, daily_spend) "
            "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            user_id, spec.side, spec.price, spec.max_qty_wh, spec.daily_energy_wh, spec.daily_spend,
        )
        return await self.get(user_id, int(sid))

    async def list_of(self, user_id: UUID) -> list[StandingView]:
        rows = await self.pool.fetch(
            _VIEW_SQL + "WHERE s.user_id = $1 AND s.status <> 'deleted' ORDER BY s.id", user_id
        )
        return [_view(r) for r in rows]

    async def get(self, user_id: UUID, standing_id: int) -> StandingView:
        r = await self.pool.fetchrow(
            _VIEW_SQL + "WHERE s.id = $1 AND s.user_id = $2 AND s.status <> 'deleted'", standing_id, user_id
        )
        if r is None:
            raise NotFoundError("no such standing order")
        return _view(r)

    async def set_status(self, user_id: UUID, standing_id: int, status: StandingStatus) -> None:
        done = await self.pool.fetchval(
            "UPDATE standing_orders SET status = $3, updated_at = now() "
            "WHERE id = $1 AND user_id = $2 AND status <> 'deleted' RETURNING id",
            standing_id, user_id, status.value,
        )
        if done is None:
            raise NotFoundError("no such standing order")

    async def runs(self, user_id: UUID, standing_id: int, limit: int) -> list[RunView]:
        await self.get(user_id, standing_id)
        rows = await self.pool.fetch(
            "SELECT epoch_start, outcome, reason, order_id, qty, lock FROM standing_runs "
            "WHERE standing_id = $1 ORDER BY epoch_start DESC LIMIT $2",
            standing_id, limit,
        )
        return [RunView(**dict(r)) for r in rows]

    async def due(self, epoch_start: datetime) -> list[StandingOrder]:
        rows = await self.pool.fetch(
            "SELECT s.id, s.user_id, s.side, s.price, s.max_qty_wh, s.daily_energy_wh, s.daily_spend, s.status "
            "FROM standing_orders s WHERE s.status = 'active' AND NOT EXISTS "
            "(SELECT 1 FROM standing_runs r WHERE r.standing_id = s.id AND r.epoch_start = $1) ORDER BY s.id",
            epoch_start,
        )
        return [
            StandingOrder(
                r["id"], r["user_id"],
                StandingSpec(r["side"], r["price"], r["max_qty_wh"], r["daily_energy_wh"], r["daily_spend"]),
                StandingStatus(r["status"]),
            )
            for r in rows
        ]

    async def usage(self, standing_id: int, day: datetime) -> DayUsage:
        r = await self.pool.fetchrow(
            "SELECT coalesce(sum(qty), 0)::bigint AS wh, coalesce(sum(lock), 0)::bigint AS spend FROM standing_runs "
            "WHERE standing_id = $1 AND epoch_start >= $2 AND epoch_start < $3 AND outcome <> 'skipped'",
            standing_id, day, day + DAY,
        )
        assert r is not None
        return DayUsage(int(r["wh"]), int(r["spend"]))

    async def available_energy(self, user_id: UUID) -> int:
        v = await self.pool.fetchval(
            "SELECT b.available FROM escrow_balances b JOIN market_accounts a USING (account) "
            "WHERE a.user_id = $1 AND b.asset = 'energy'",
            user_id,
        )
        return int(v or 0)

    async def hourly_import(self, user_id: UUID, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
        rows = await self.pool.fetch(
            "SELECT to_timestamp(div(window_start_ms, 3600000) * 3600) AS hour, sum(import_wh)::bigint AS wh "
            "FROM energy_windows WHERE owner_id = $1 AND window_start_ms >= $2 AND window_start_ms < $3 "
            "GROUP BY 1 ORDER BY 1",
            user_id, int(since.timestamp() * 1000), int(until.timestamp() * 1000),
        )
        return [(r["hour"], int(r["wh"])) for r in rows]

    async def claim(self, standing_id: int, epoch_start: datetime, sizing: Sizing) -> bool:
        outcome = RunOutcome.SKIPPED if sizing.reason is not None else RunOutcome.PLACING
        got = await self.pool.fetchval(
            "INSERT INTO standing_runs (standing_id, epoch_start, outcome, reason, qty, lock) "
            "SELECT id, $2, $3, $4, $5, $6 FROM standing_orders WHERE id = $1 AND status = 'active' "
            "ON CONFLICT DO NOTHING RETURNING true",
            standing_id, epoch_start, outcome.value, sizing.reason, sizing.qty, sizing.lock,
        )
        return bool(got)

    async def finish(
        self, standing_id: int, epoch_start: datetime, order_id: int | None, reason: str | None
    ) -> None:
        if order_id is not None:
            await self.pool.execute(
                "UPDATE standing_runs SET outcome = 'placed', order_id = $3, at = now() "
                "WHERE standing_id = $1 AND epoch_start = $2",
                standing_id, epoch_start, order_id,
            )
        else:
            await self.pool.execute(
                "UPDATE standing_runs SET outcome = 'skipped', reason = $3, qty = 0, lock = 0, at = now() "
                "WHERE standing_id = $1 AND epoch_start = $2",
                standing_id, epoch_start, reason or "not placed",
            )
