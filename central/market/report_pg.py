"""The trade lines of a user's market report from PostgreSQL (``central.market.report`` computes the rest)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from central.market.report import ReportLine

# Zonal trades (migration 0091, docs/decisions/0017-zonal-clearing.md): the grid fee of the user's side,
# ``delivered`` (what the buyer received: ``qty`` less the loss; NULL on a single-zone trade), and whether the
# counterparty was the utility (the utility's side of a trade has no order).
_LINES_SQL = """
SELECT t.id AS trade_id, t.epoch_start, CASE WHEN t.buyer = $1 THEN 'buy' ELSE 'sell' END AS side, t.qty, t.price,
       t.value, CASE WHEN t.buyer = $1 THEN 0 ELSE t.fee END AS platform_fee,
       CASE WHEN t.buyer = $1 THEN t.grid_fee_buyer ELSE t.grid_fee_seller END AS grid_fee,
       coalesce(t.delivered, t.qty) AS delivered,
       CASE WHEN t.buyer = $1 THEN t.sell_order IS NULL ELSE t.buy_order IS NULL END AS utility,
       t.status, t.signature
FROM trades t
WHERE (t.buyer = $1 OR t.seller = $1) AND t.epoch_start >= $2 AND t.epoch_start < $3
ORDER BY t.epoch_start, t.id
"""


class PgReportStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def lines(self, user_id: UUID, start: datetime, end: datetime) -> list[ReportLine]:
        account = await self.pool.fetchval("SELECT account FROM market_accounts WHERE user_id = $1", user_id)
        if account is None:
            return []
        rows = await self.pool.fetch(_LINES_SQL, account, start, end)
        return [ReportLine(**dict(r)) for r in rows]
