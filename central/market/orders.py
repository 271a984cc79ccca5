"""Order rules (pure): validation, escrow locks, and what an epoch's clearing does to each order's lock.

Locks (docs/decisions/0008-escrow-uniform-price-auction.md): a sell order locks its quantity of energy (Wh); a buy order
locks ``floor(qty * limit / 1000)`` quote units. Whatever a buyer pays across its trades, ``sum(floor(q_t * p / 1000))
<= floor(filled * limit / 1000)``, so the lock always covers it, and the difference between limit and clearing price
goes back to available.

After a clearing, for each order of the book:
- the amount it now owes to settlement (buy: the value of its trades; sell: the Wh it sold) stays locked in escrow
  until the settlement transaction is confirmed;
- if it continues (GTC, not fully filled, still valid at the next epoch's close) it keeps the lock for its
  remaining quantity (``floor(remaining * limit / 1000)`` for buys, ``remaining`` for sells);
- everything else it had locked is released to available.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np

from central.market.clearing import I64, MAX_PRICE, MAX_QTY_WH, ClearingResult, OrderBook, Side
from central.market.errors import InvalidOrderError


class OrderStatus(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class TimeInForce(StrEnum):
    EPOCH = "epoch"  # this epoch only
    GTC = "gtc"  # until filled, cancelled or expired


SIDE_NAMES = {Side.BUY: "buy", Side.SELL: "sell"}
SIDES = {v: k for k, v in SIDE_NAMES.items()}


def parse_side(name: str) -> Side:
    try:
        return SIDES[name]
    except KeyError:
        raise InvalidOrderError("side must be 'buy' or 'sell'") from None


def validate_order(qty: int, price: int, tif: TimeInForce, expires_at: datetime | None, now: datetime) -> None:
    if not 1 <= qty <= MAX_QTY_WH:
        raise InvalidOrderError(f"qty must be 1..{MAX_QTY_WH} Wh")
    if not 1 <= price <= MAX_PRICE:
        raise InvalidOrderError(f"price must be 1..{MAX_PRICE} quote units per kWh")
    if expires_at is not None:
        if tif is not TimeInForce.GTC:
            raise InvalidOrderError("expires_at applies to GTC orders only")
        if expires_at <= now:
            raise InvalidOrderError("expires_at is in the past")


def lock_amount(side: Side, qty: int, price: int) -> int:
    """Escrow an order of ``qty`` Wh at ``price`` locks (energy Wh for sells, quote units for buys)."""
    return qty if side is Side.SELL else qty * price // 1000


@dataclass(frozen=True, eq=False)
class OrderOutcome:
    """Per order of a cleared book (arrays aligned with the book)."""

    filled_now: I64  # Wh traded this epoch
    owed: I64  # still locked for settlement: buy = value of its trades, sell = Wh sold
    release: I64  # back to available now
    locked_after: I64  # the order's own lock afterwards
    status: list[OrderStatus]


def outcomes(result: ClearingResult, locked_before: I64, continues: I64) -> OrderOutcome:
    """``continues[i]`` is 1 if order i may take part in the next epoch (GTC and still valid then)."""
    owed = np.zeros(len(result.book), dtype=np.int64)
    if result.trade_buy.size:
        np.add.at(owed, result.trade_buy, result.trade_value)
        np.add.at(owed, result.trade_sell, result.trade_qty)
    return outcomes_of(result.book, result.filled, owed, locked_before, continues)


def outcomes_of(book: OrderBook, filled: I64, owed: I64, locked_before: I64, continues: I64) -> OrderOutcome:
    """The outcome per order given what it filled (Wh) and what it owes to settlement (buy: quote, sell: Wh)."""
    n = len(book)
    is_buy = book.side == Side.BUY
    remaining = book.qty - filled
    keep = (continues != 0) & (remaining > 0)
    remaining_lock = np.where(is_buy, remaining * book.price // 1000, remaining)
    locked_after = np.where(keep, remaining_lock, 0)
    release = locked_before - owed - locked_after
    if n and int(release.min()) < 0:
        raise InvalidOrderError("an order's lock does not cover what it owes (corrupt lock)")
    status = [
        OrderStatus.OPEN if k else (OrderStatus.FILLED if r == 0 else OrderStatus.EXPIRED)
        for k, r in zip(keep.tolist(), remaining.tolist(), strict=True)
    ]
    return OrderOutcome(filled, owed, release, locked_after, status)
