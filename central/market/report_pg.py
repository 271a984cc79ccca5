"""The trade lines of a user's market report from PostgreSQL (``central.market.report`` computes the rest)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from central.market.report import ReportLine

# Zones (migration of the zones branch) fill the three zero columns: the grid fee is ``grid_fee_buyer`` /
# ``grid_fee_seller`` for the user's side, ``delivered`` is ``coalesce(delivered, qty)``, and ``utility`` is whether
# the counterparty is the configured utility's account.
_LINES_SQL = """
SELECT t.id AS trade_id, t.epoch_start, CASE WHEN t.buyer = $1 THEN 'buy' ELSE 'sell' END AS side, t.qty, t.price,
       t.value, CASE WHEN t.buyer = $1 THEN 0 ELSE t.fee END AS platform_fee,
       0::bigint AS grid_fee, t.qty AS delivered, false AS utility, t.status, t.signature
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
