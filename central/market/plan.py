"""The market's rules as pure functions: closing an epoch, cancelling an order, spending locks at settlement.

``plan_close`` takes the closing epoch's open orders and returns a ``ClosePlan``: the order set cleared (with its
hash), each order's new fill/lock/status/epoch, the escrow released to available (refunds) and still owed to
settlement, the trades (each one settlement intent) and the epoch's figures. The stores apply it as it is.

Escrow conservation (docs/decisions/0008-escrow-uniform-price-auction.md), per account and asset:
``sum(locked before) = released + owed + sum(locked after)``; the owed quote of a buyer is the value of its trades
(the seller receives ``value - fee``, the treasury ``fee``) and the owed energy of a seller the Wh it sold.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from central.market.clearing import OrderBook, Side, clear
from central.market.epochs import Epoch, EpochStatus
from central.market.errors import ConflictError, EpochClosedError
from central.market.escrow_seeds import Asset
from central.market.model import (
    BookOrder,
    CancelTarget,
    ClosePlan,
    EpochEntry,
    EscrowMove,
    OrderChange,
    TradeIntent,
    asset_of,
)
from central.market.orders import OrderStatus, TimeInForce, outcomes

#: The chain outbox's kind of the market's settlement intents (one per trade, key ``trade_key(id)``).
SETTLEMENT_KIND = "market.settlement"


def valid_at(o: BookOrder, t: datetime) -> bool:
    """The order has not expired by ``t``."""
    return o.expires_at is None or o.expires_at >= t


def _moves(amounts: dict[tuple[int, Asset], int]) -> tuple[EscrowMove, ...]:
    return tuple(EscrowMove(acc, asset, v) for (acc, asset), v in sorted(amounts.items()) if v)


def _add(amounts: dict[tuple[int, Asset], int], account: int, asset: Asset, v: int) -> None:
    amounts[(account, asset)] = amounts.get((account, asset), 0) + v


def plan_close(epoch: Epoch, nxt: Epoch, orders: Iterable[BookOrder], fee_bps: int) -> ClosePlan:
    """Close ``epoch``: clear its live orders (valid at its end, owner with a wallet), roll GTC orders still valid
    at ``nxt``'s end into ``nxt`` and expire the rest. Deterministic: the same order set gives the same plan."""
    ordered = sorted(orders, key=lambda o: o.id)
    live = [o for o in ordered if valid_at(o, epoch.end) and o.wallet]
    gone = [o for o in ordered if not (valid_at(o, epoch.end) and o.wallet)]
    n = len(live)
    ids = np.fromiter((o.id for o in live), np.int64, n)
    accounts = np.fromiter((o.account for o in live), np.int64, n)
    sides = np.fromiter((Side.BUY if o.side == "buy" else Side.SELL for o in live), np.int64, n)
    book = OrderBook.from_arrays(
        order_id=ids,
        user=accounts,
        side=sides,
        qty=np.fromiter((o.qty for o in live), np.int64, n),
        price=np.fromiter((o.price for o in live), np.int64, n),
    )
    result = clear(book, fee_bps)
    continues = np.fromiter((o.tif == TimeInForce.GTC and valid_at(o, nxt.end) for o in live), np.int64, n)
    locked_before = np.fromiter((o.locked for o in live), np.int64, n)
    out = outcomes(result, locked_before, continues)

    entries = tuple(
        EpochEntry(o.id, o.account, int(sides[i]), o.qty, o.price, int(result.filled[i]), int(result.netted[i]))
        for i, o in enumerate(live)
    )
    changes = [
        OrderChange(
            o.id,
            int(out.filled_now[i]),
            int(out.locked_after[i]),
            out.status[i],
            nxt.start if out.status[i] is OrderStatus.OPEN else epoch.start,
        )
        for i, o in enumerate(live)
    ]
    changes += [OrderChange(o.id, 0, 0, OrderStatus.EXPIRED, epoch.start) for o in gone]
    release: dict[tuple[int, Asset], int] = {}
    owed: dict[tuple[int, Asset], int] = {}
    for i, o in enumerate(live):
        _add(release, o.account, asset_of(o.side), int(out.release[i]))
        _add(owed, o.account, asset_of(o.side), int(out.owed[i]))
    for o in gone:
        _add(release, o.account, asset_of(o.side), o.locked)
    wallet = {o.account: o.wallet for o in live}
    trades = tuple(
        TradeIntent(
            t.seq,
            t.buy_order_id,
            t.sell_order_id,
            t.buyer,
            t.seller,
            str(wallet[t.buyer]),
            str(wallet[t.seller]),
            t.qty,
            t.price,
            t.value,
            t.fee,
        )
        for t in result.trades()
    )
    return ClosePlan(
        epoch=epoch,
        next=nxt,
        fee_bps=fee_bps,
        entries=entries,
        changes=tuple(changes),
        releases=_moves(release),
        owed=_moves(owed),
        trades=trades,
        status=EpochStatus.CLEARED if trades else EpochStatus.SETTLED,
        price=result.price,
        marginal_bid=result.marginal_bid,
        marginal_ask=result.marginal_ask,
        curve_volume=result.curve_volume,
        volume=result.volume,
        order_set_hash=result.order_set_hash,
    )


def check_cancel(t: CancelTarget) -> None:
    """Refuse a cancellation the rules forbid (raises); otherwise the order's whole lock goes back to available."""
    if t.status != OrderStatus.OPEN:
        raise ConflictError(f"order is {t.status}")
    if t.epoch_status != EpochStatus.OPEN or t.epoch_start != t.seen_epoch:
        raise EpochClosedError("the order's epoch is closed; it can be cancelled after clearing")


def trade_key(trade_id: int) -> str:
    """The settlement intent's key of a trade (unique per kind in the chain outbox)."""
    return f"trade:{trade_id}"


def settlement_payload(trade_id: int, t: TradeIntent) -> dict[str, Any]:
    """The settlement intent of a recorded trade (what ``central.market.settler`` builds the transfers from)."""
    return {
        "trade": trade_id,
        "buyer": t.buyer,
        "seller": t.seller,
        "buyer_wallet": t.buyer_wallet,
        "seller_wallet": t.seller_wallet,
        "qty": t.qty,
        "value": t.value,
        "fee": t.fee,
    }


def spent_at_settlement(trades: Sequence[tuple[int, int, int, int]]) -> tuple[EscrowMove, ...]:
    """The locks settled trades spend: per ``(buyer, seller, qty, value)``, the buyer's quote ``value`` and the
    seller's ``qty`` Wh (the seller's share ``value - fee`` and the fee leave the buyer's quote escrow)."""
    spent: dict[tuple[int, Asset], int] = {}
    for buyer, seller, qty, value in trades:
        _add(spent, buyer, Asset.QUOTE, value)
        _add(spent, seller, Asset.ENERGY, qty)
    return _moves(spent)


#: Transfer states still waiting for an outcome.
OPEN_TRANSFERS = ("built", "submitted")


def transfer_moves(kind: str, was: str, outcome: str, amount: int) -> tuple[int, int] | None:
    """How a transfer's outcome moves its escrow balance: ``(available, locked)`` deltas, or None when the
    transfer was already decided (nothing to record). A deposit credits available once confirmed; a withdrawal
    (whose amount was moved from available to locked when it started) spends the lock once confirmed and returns
    it to available otherwise. A transfer never sent (``built``) moved nothing."""
    if was not in OPEN_TRANSFERS:
        return None
    if was == "built":
        return (0, 0)
    if kind == "deposit":
        return (amount, 0) if outcome == "confirmed" else (0, 0)
    return (0, -amount) if outcome == "confirmed" else (amount, -amount)
