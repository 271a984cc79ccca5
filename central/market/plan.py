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
from operator import attrgetter
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


def _moves(amounts: dict[tuple[int, Asset], int]) -> tuple[EscrowMove, ...]:
    return tuple(EscrowMove(acc, asset, v) for (acc, asset), v in sorted(amounts.items()) if v)


def _add(amounts: dict[tuple[int, Asset], int], account: int, asset: Asset, v: int) -> None:
    amounts[(account, asset)] = amounts.get((account, asset), 0) + v


def plan_close(epoch: Epoch, nxt: Epoch, orders: Iterable[BookOrder], fee_bps: int) -> ClosePlan:
    """Close ``epoch``: clear its live orders (valid at its end, owner with a wallet), roll GTC orders still valid
    at ``nxt``'s end into ``nxt`` and expire the rest. Deterministic: the same order set gives the same plan."""
    # Columnar throughout (one pass over the orders, numpy arrays turned into lists once): a book holds tens of
    # thousands of orders, and per-element numpy indexing or repeated attribute passes cost more than the clearing.
    ordered = sorted(orders, key=attrgetter("id"))
    end, nxt_end = epoch.end, nxt.end
    live: list[BookOrder] = []
    gone: list[BookOrder] = []
    for o in ordered:
        (live if (o.expires_at is None or o.expires_at >= end) and o.wallet else gone).append(o)
    ids_l = [o.id for o in live]
    accounts_l = [o.account for o in live]
    sides_l = [Side.BUY.value if o.side == "buy" else Side.SELL.value for o in live]
    qty_l = [o.qty for o in live]
    price_l = [o.price for o in live]
    sides = np.array(sides_l, dtype=np.int64)
    book = OrderBook.from_arrays(
        order_id=np.array(ids_l, dtype=np.int64),
        user=np.array(accounts_l, dtype=np.int64),
        side=sides,
        qty=np.array(qty_l, dtype=np.int64),
        price=np.array(price_l, dtype=np.int64),
    )
    result = clear(book, fee_bps)
    gtc = TimeInForce.GTC
    continues = np.array(
        [o.tif == gtc and (o.expires_at is None or o.expires_at >= nxt_end) for o in live], dtype=np.int64
    )
    locked_before = np.array([o.locked for o in live], dtype=np.int64)
    out = outcomes(result, locked_before, continues)

    filled = result.filled.tolist()
    entries = tuple(map(EpochEntry, ids_l, accounts_l, sides_l, qty_l, price_l, filled, result.netted.tolist()))
    opened, start = nxt.start, epoch.start
    open_ = OrderStatus.OPEN
    changes = list(
        map(
            OrderChange,
            ids_l,
            out.filled_now.tolist(),
            out.locked_after.tolist(),
            out.status,
            [opened if st is open_ else start for st in out.status],
        )
    )
    expired = OrderStatus.EXPIRED
    changes += [OrderChange(o.id, 0, 0, expired, start) for o in gone]
    release: dict[tuple[int, Asset], int] = {}
    owed: dict[tuple[int, Asset], int] = {}
    assets = [asset_of(o.side) for o in live]
    for acc, asset, rel, ow in zip(accounts_l, assets, out.release.tolist(), out.owed.tolist(), strict=True):
        _add(release, acc, asset, rel)
        _add(owed, acc, asset, ow)
    for o in gone:
        _add(release, o.account, asset_of(o.side), o.locked)
    wallet = {o.account: str(o.wallet) for o in live}
    trades = tuple(
        TradeIntent(
            t.seq,
            t.buy_order_id,
            t.sell_order_id,
            t.buyer,
            t.seller,
            wallet[t.buyer],
            wallet[t.seller],
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
