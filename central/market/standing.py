"""Standing orders: the pure rules (what to place this epoch), the usual-consumption forecast and the store port.

A standing order is a user's instruction the market carries out every epoch through the same path as a hand-placed
order (``MarketService.place``: wallet, epoch and escrow checks included):

- **sell** at no less than ``price``: offer the energy the user holds in escrow (``available`` Wh: what minting paid
  to the wallet and the user deposited), capped by ``max_qty_wh`` per epoch and ``daily_energy_wh`` per UTC day;
- **buy** at no more than ``price``: bid for the user's *usual* consumption in the epoch (``usual_wh``: the mean
  metered import of the same hour of day and weekday over the last weeks, from the accounting windows), capped by
  ``max_qty_wh``, ``daily_energy_wh`` and ``daily_spend`` (quote base units locked per UTC day).

Day limits count what was *placed* (qty and the escrow it locked), not what filled: an order may fill completely, so
only counting placements keeps the limits a guarantee. Everything is integer (Wh, quote base units).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Protocol
from uuid import UUID

from central.market.clearing import MAX_PRICE, MAX_QTY_WH, Side
from central.market.epochs import Epoch
from central.market.orders import lock_amount

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
#: The largest day limit (energy Wh or quote base units) a standing order may set.
MAX_LIMIT = MAX_QTY_WH * MAX_PRICE
#: How far back the forecast looks (same hour and weekday over this many weeks).
FORECAST_WEEKS = 4


class StandingStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DELETED = "deleted"


class RunOutcome(StrEnum):
    PLACING = "placing"  # claimed, order on its way (counts against the day's limits)
    PLACED = "placed"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class StandingSpec:
    side: str  # 'buy' | 'sell'
    price: int  # quote base units per kWh: floor of a sell, ceiling of a buy
    max_qty_wh: int | None = None
    daily_energy_wh: int | None = None
    daily_spend: int | None = None  # buy only: quote base units locked per UTC day

    def check(self) -> str | None:
        """Why this spec is invalid, or None."""
        if self.side not in ("buy", "sell"):
            return "side must be 'buy' or 'sell'"
        if not 1 <= self.price <= MAX_PRICE:
            return f"price must be 1..{MAX_PRICE}"
        for name in ("max_qty_wh", "daily_energy_wh", "daily_spend"):
            v = getattr(self, name)
            if v is not None and not 1 <= v <= (MAX_QTY_WH if name == "max_qty_wh" else MAX_LIMIT):
                return f"{name} is out of range"
        if self.side == "sell" and self.daily_spend is not None:
            return "daily_spend applies to buy standing orders only"
        return None


@dataclass(frozen=True, slots=True)
class StandingOrder:
    id: int
    user_id: UUID
    spec: StandingSpec
    status: StandingStatus


@dataclass(frozen=True, slots=True)
class StandingView:
    id: int
    side: str
    price: int
    max_qty_wh: int | None
    daily_energy_wh: int | None
    daily_spend: int | None
    status: str
    created_at: datetime
    #: The latest run: its epoch, outcome and (when skipped) the reason, for the user to see.
    last_epoch: datetime | None
    last_outcome: str | None
    last_reason: str | None


@dataclass(frozen=True, slots=True)
class RunView:
    epoch_start: datetime
    outcome: str
    reason: str | None
    order_id: int | None
    qty: int
    lock: int


@dataclass(frozen=True, slots=True)
class DayUsage:
    wh: int = 0
    spend: int = 0


@dataclass(frozen=True, slots=True)
class Sizing:
    """What to place this epoch: ``qty`` Wh (0: skip, ``reason`` says why) locking ``lock`` escrow."""

    qty: int
    lock: int
    reason: str | None


def day_of(t: datetime) -> datetime:
    """The UTC day (its midnight) an epoch starting at ``t`` counts against."""
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def usual_wh(history: Sequence[tuple[datetime, int]], epoch: Epoch) -> int | None:
    """The usual import (Wh) in ``epoch``: for each hour it overlaps, the mean of the past hourly imports with the same
    weekday and hour (else the same hour on any day), prorated by the overlap. ``history`` holds (hour start, Wh)
    pairs, one per metered hour. None without any history (no forecast: the buy is skipped)."""
    if not history:
        return None
    same: dict[tuple[int, int], list[int]] = {}
    hourly: dict[int, list[int]] = {}
    for start, wh in history:
        same.setdefault((start.weekday(), start.hour), []).append(wh)
        hourly.setdefault(start.hour, []).append(wh)
    total = Fraction(0)
    t = epoch.start.replace(minute=0, second=0, microsecond=0)
    while t < epoch.end:
        overlap = int((min(t + HOUR, epoch.end) - max(t, epoch.start)).total_seconds())
        samples = same.get((t.weekday(), t.hour)) or hourly.get(t.hour) or []
        if samples and overlap > 0:
            total += Fraction(sum(samples) * overlap, len(samples) * 3600)
        t += HOUR
    return int(total)  # floor (non-negative)


def size(spec: StandingSpec, *, available: int, usual: int | None, used: DayUsage) -> Sizing:
    """The order a standing order places this epoch (pure). ``available``: the user's available escrow of the asset
    a sell locks (energy Wh; unused for a buy, whose funding the placement itself checks); ``usual``: the forecast
    (buy); ``used``: what it placed earlier the same UTC day."""
    side = Side.SELL if spec.side == "sell" else Side.BUY
    if side is Side.SELL:
        qty = available
        if qty <= 0:
            return Sizing(0, 0, "no energy available in escrow to sell")
    else:
        if usual is None:
            return Sizing(0, 0, "no consumption history to forecast from")
        qty = usual
        if qty <= 0:
            return Sizing(0, 0, "no consumption expected in this epoch")
    if spec.max_qty_wh is not None:
        qty = min(qty, spec.max_qty_wh)
    if spec.daily_energy_wh is not None:
        left = spec.daily_energy_wh - used.wh
        if left <= 0:
            return Sizing(0, 0, "daily energy limit reached")
        qty = min(qty, left)
    if spec.daily_spend is not None and side is Side.BUY:
        left = spec.daily_spend - used.spend
        # the largest qty whose lock (qty * price // 1000) fits in what is left of the day's spend
        qty = min(qty, ((left + 1) * 1000 - 1) // spec.price if left >= 0 else 0)
        if qty <= 0 or left <= 0:
            return Sizing(0, 0, "daily spend limit reached")
    qty = min(qty, MAX_QTY_WH)
    return Sizing(qty, lock_amount(side, qty, spec.price), None)


class StandingStore(Protocol):
    async def create(self, user_id: UUID, spec: StandingSpec) -> StandingView: ...

    async def list_of(self, user_id: UUID) -> list[StandingView]: ...

    async def get(self, user_id: UUID, standing_id: int) -> StandingView:
        """``NotFoundError`` unless it is the user's (and not deleted)."""
        ...

    async def set_status(self, user_id: UUID, standing_id: int, status: StandingStatus) -> None:
        """Pause, resume or delete (``NotFoundError`` unless the user's and not deleted)."""
        ...

    async def runs(self, user_id: UUID, standing_id: int, limit: int) -> list[RunView]: ...

    async def due(self, epoch_start: datetime) -> list[StandingOrder]:
        """Active standing orders with no run for this epoch yet."""
        ...

    async def usage(self, standing_id: int, day: datetime) -> DayUsage:
        """Wh and escrow placed (or being placed) by it during the UTC day starting at ``day``."""
        ...

    async def available_energy(self, user_id: UUID) -> int: ...

    async def hourly_import(self, user_id: UUID, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
        """The user's metered import per hour (accounting windows of the meters they owned), oldest first."""
        ...

    async def claim(self, standing_id: int, epoch_start: datetime, sizing: Sizing) -> bool:
        """Record this epoch's run (``placing`` with its size, or ``skipped`` with the reason) if the standing
        order is still active and has none; False when another run got there first or it was paused meanwhile."""
        ...

    async def finish(
        self, standing_id: int, epoch_start: datetime, order_id: int | None, reason: str | None
    ) -> None:
        """The placement's outcome: ``placed`` (the order) or ``skipped`` (the reason; qty and lock back to 0)."""
        ...
