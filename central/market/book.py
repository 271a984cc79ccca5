"""The market service on PostgreSQL, as the rest of central builds it: ``MarketBook(pool, clock, fee_bps, addresses)``.

The rules live in ``central.market.service`` / ``central.market.plan`` (pure), the SQL in
``central.market.postgres``; this module only wires them (and keeps the names other modules import from here).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

import asyncpg

from central.market.config import ZonesConfig
from central.market.epochs import EpochClock
from central.market.escrow_seeds import EscrowAddresses
from central.market.model import EpochSummary, OrderView
from central.market.postgres import CLEARING_LOCK_KEY, EPOCH_LOCK_CLASS, PgMarketStore, account_in, epoch_lock_key
from central.market.service import MarketService, utc_now

__all__ = [
    "CLEARING_LOCK_KEY",
    "EPOCH_LOCK_CLASS",
    "EpochSummary",
    "MarketBook",
    "OrderView",
    "epoch_lock_key",
    "utc_now",
]


class MarketBook(MarketService):
    """Accounts, orders and epochs on PostgreSQL. ``now`` is injectable for tests (epoch boundaries)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: EpochClock,
        fee_bps: int,
        addresses: EscrowAddresses,
        now: Callable[[], datetime] = utc_now,
        zoning: ZonesConfig | None = None,
    ) -> None:
        self.pool = pool
        self.addresses = addresses
        self.pg = PgMarketStore(pool, addresses)
        super().__init__(self.pg, clock, fee_bps, now, zoning)

    async def account(self, conn: asyncpg.Connection, user_id: UUID) -> int:
        """The user's market account number, created (with its two escrow rows) on first use, in ``conn``."""
        return await account_in(conn, user_id, self.addresses)
