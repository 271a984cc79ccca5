"""Market service: orders, the public book and the clearer, over any ``MarketStore`` (storage-free).

The rules are pure (``central.market.orders`` validates and sizes locks, ``central.market.plan`` plans an epoch's
close and decides cancellations); the store applies them under its locks (see ``central.market.port``).
``now`` is injectable for tests (epoch boundaries).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import numpy as np

from central.market.clearing import OrderBook
from central.market.config import ZonesConfig
from central.market.epochs import EpochClock
from central.market.errors import ConflictError, EpochClosedError, InsufficientEscrowError, InvalidOrderError
from central.market.model import (
    BookOrder,
    ClosePlan,
    EpochSummary,
    OrderRequest,
    OrderView,
    PlaceOutcome,
    UtilityState,
)
from central.market.orders import SIDE_NAMES, TimeInForce, lock_amount, parse_side, validate_order
from central.market.plan import plan_close
from central.market.port import MarketStore

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class MarketService:
    def __init__(
        self,
        store: MarketStore,
        clock: EpochClock,
        fee_bps: int,
        now: Callable[[], datetime] = utc_now,
        zoning: ZonesConfig | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.fee_bps = fee_bps
        self.now = now
        #: Grid zones (None: one zone, the single auction of docs/decisions/0008-escrow-uniform-price-auction.md).
        self.zoning = zoning

    async def account_of(self, user_id: UUID) -> int:
        return await self.store.account_of(user_id)

    # ---------------------------------------------------------------------------------------------- orders

    def order_request(
        self, user_id: UUID, side: str, qty: int, price: int, tif: str, expires_at: datetime | None
    ) -> OrderRequest:
        """Validate an order now and size its lock (raises ``InvalidOrderError``)."""
        now = self.now()
        s = parse_side(side)
        try:
            t = TimeInForce(tif)
        except ValueError:
            raise InvalidOrderError("tif must be 'epoch' or 'gtc'") from None
        validate_order(qty, price, t, expires_at, now)
        epoch = self.clock.at(now)
        if expires_at is not None and expires_at < epoch.end:
            raise InvalidOrderError("expires_at is before the current epoch closes")
        return OrderRequest(user_id, SIDE_NAMES[s], qty, price, t.value, expires_at, epoch, lock_amount(s, qty, price))

    async def place(
        self, user_id: UUID, side: str, qty: int, price: int, tif: str = "epoch", expires_at: datetime | None = None
    ) -> OrderView:
        req = self.order_request(user_id, side, qty, price, tif, expires_at)
        placed = await self.store.place(req)
        if placed.outcome is PlaceOutcome.NO_WALLET:
            raise ConflictError("link a wallet before trading")
        if placed.outcome is PlaceOutcome.CLOSED:
            raise EpochClosedError("the current epoch is closed; retry in a moment")
        if placed.outcome is PlaceOutcome.INSUFFICIENT:
            raise InsufficientEscrowError(f"not enough available {req.asset.value} in escrow (need {req.lock})")
        assert placed.order is not None, placed.outcome
        return placed.order

    async def cancel(self, user_id: UUID, order_id: int) -> OrderView:
        return await self.store.cancel(user_id, order_id)

    async def orders_of(self, user_id: UUID, *, open_only: bool = False, limit: int = 100) -> list[OrderView]:
        acc = await self.store.existing_account(user_id)
        if acc is None:
            return []
        return await self.store.orders_of(acc, open_only=open_only, limit=limit)

    # ---------------------------------------------------------------------------------------------- public

    async def depth(self, levels: int = 20) -> dict[str, Any]:
        """Aggregated open book of the current epoch: price levels with total Wh and order count."""
        epoch = self.clock.at(self.now())
        rows = await self.store.depth(epoch.start)
        bids = sorted(((r.price, r.qty, r.orders) for r in rows if r.side == "buy"), reverse=True)
        asks = sorted((r.price, r.qty, r.orders) for r in rows if r.side == "sell")
        level = ("price", "qty", "orders")
        return {
            "epoch_start": epoch.start,
            "epoch_end": epoch.end,
            "bids": [dict(zip(level, b, strict=True)) for b in bids[:levels]],
            "asks": [dict(zip(level, a, strict=True)) for a in asks[:levels]],
        }

    async def epochs(self, limit: int = 50) -> list[EpochSummary]:
        return await self.store.epochs(limit)

    async def epoch(self, start: datetime) -> EpochSummary | None:
        return await self.store.epoch(start)

    async def recent_trades(self, limit: int = 100) -> list[dict[str, Any]]:
        """Latest trades (public: no accounts), newest first."""
        return await self.store.recent_trades(limit)

    async def fills_of(self, user_id: UUID, limit: int = 100) -> list[dict[str, Any]]:
        """The caller's trades (as buyer or seller), newest first."""
        acc = await self.store.existing_account(user_id)
        if acc is None:
            return []
        return await self.store.fills_of(acc, limit)

    async def epoch_order_set(self, start: datetime) -> OrderBook:
        """The exact order set an epoch cleared (recompute its hash with ``central.market.clearing``)."""
        rows = await self.store.epoch_order_set(start)
        cols = np.array(rows, dtype=np.int64).reshape(-1, 5).T
        return OrderBook.from_arrays(order_id=cols[0], user=cols[1], side=cols[2], qty=cols[3], price=cols[4])

    # ---------------------------------------------------------------------------------------------- clearing

    def plan(self, start: datetime, orders: Sequence[BookOrder], utility: UtilityState | None = None) -> ClosePlan:
        epoch = self.clock.starting(start)
        return plan_close(epoch, self.clock.next(epoch), orders, self.fee_bps, self.zoning, utility)

    async def clear_due(self) -> list[EpochSummary]:
        """Close and clear every epoch that has ended, oldest first. Returns [] if another process is clearing."""
        done: list[EpochSummary] = []
        utility = self.zoning.utility if self.zoning is not None else None
        while (
            summary := await self.store.close_next_due(
                self.clock.last_ended(self.now()), self.plan, utility, zoned=self.zoning is not None
            )
        ) is not None:
            log.info(
                "epoch %s cleared: %d orders, %d trades, %d Wh at %s",
                summary.start.isoformat(),
                summary.order_count,
                summary.trade_count,
                summary.volume,
                summary.price,
            )
            done.append(summary)
        return done
