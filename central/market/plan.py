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
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import Any

import numpy as np

from central.market.clearing import I64, ClearingResult, OrderBook, Side, clear
from central.market.config import ZonesConfig
from central.market.epochs import Epoch, EpochStatus
from central.market.errors import ConflictError, EpochClosedError, InvalidOrderError
from central.market.escrow_seeds import Asset
from central.market.model import (
    BookOrder,
    CancelTarget,
    ClosePlan,
    EpochEntry,
    EscrowMove,
    OrderChange,
    TradeIntent,
    UtilityState,
    ZoneOutcome,
    asset_of,
)
from central.market.orders import OrderStatus, TimeInForce, outcomes, outcomes_of
from central.market.zonal import UTILITY, ZonalResult, clear_zonal
from central.market.zones import ZoneParams

#: The chain outbox's kind of the market's settlement intents (one per trade, key ``trade_key(id)``).
SETTLEMENT_KIND = "market.settlement"


def _moves(amounts: dict[tuple[int, Asset], int]) -> tuple[EscrowMove, ...]:
    return tuple(EscrowMove(acc, asset, v) for (acc, asset), v in sorted(amounts.items()) if v)


def _add(amounts: dict[tuple[int, Asset], int], account: int, asset: Asset, v: int) -> None:
    amounts[(account, asset)] = amounts.get((account, asset), 0) + v


def plan_close(
    epoch: Epoch,
    nxt: Epoch,
    orders: Iterable[BookOrder],
    fee_bps: int,
    zoning: ZonesConfig | None = None,
    utility: UtilityState | None = None,
) -> ClosePlan:
    """Close ``epoch``: clear its live orders (valid at its end, owner with a wallet), roll GTC orders still valid
    at ``nxt``'s end into ``nxt`` and expire the rest. Deterministic: the same order set gives the same plan.
    With ``zoning`` the clearing is zonal (``central.market.zonal``; each order in its owner's meter's zone), and
    with ``utility`` the utility trades at the zones' tariffs (its own orders, if any, expire untraded)."""
    # Columnar throughout (one pass over the orders, numpy arrays turned into lists once): a book holds tens of
    # thousands of orders, and per-element numpy indexing or repeated attribute passes cost more than the clearing.
    ordered = sorted(orders, key=attrgetter("id"))
    end, nxt_end = epoch.end, nxt.end
    live: list[BookOrder] = []
    gone: list[BookOrder] = []
    for o in ordered:
        ok = (o.expires_at is None or o.expires_at >= end) and o.wallet
        (live if ok and (utility is None or o.account != utility.account) else gone).append(o)
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
    gtc = TimeInForce.GTC
    continues = np.array(
        [o.tif == gtc and (o.expires_at is None or o.expires_at >= nxt_end) for o in live], dtype=np.int64
    )
    locked_before = np.array([o.locked for o in live], dtype=np.int64)
    wallet = {o.account: str(o.wallet) for o in live}
    if zoning is not None:
        z = _zonal(epoch, book, live, wallet, zoning, fee_bps, utility)
        out = outcomes_of(book, z.result.filled, z.owed, locked_before, continues)
        trades, netted, zone_l = z.trades, z.result.netted.tolist(), z.result.zone.tolist()
        figures: tuple[int | None, int | None, int | None, int, int, bytes] = (
            None, None, None, 0, z.result.volume, z.result.order_set_hash
        )
        zone_params, zone_outcomes, reserved = z.result.params.encode(), z.outcomes, z.reserved
    else:
        result = clear(book, fee_bps)
        out = outcomes(result, locked_before, continues)
        trades = _trades(result, wallet)
        netted, zone_l = result.netted.tolist(), [0] * len(live)
        figures = (
            result.price, result.marginal_bid, result.marginal_ask, result.curve_volume, result.volume,
            result.order_set_hash,
        )
        zone_params, zone_outcomes, reserved = None, (), ()

    filled = out.filled_now.tolist()
    entries = tuple(map(EpochEntry, ids_l, accounts_l, sides_l, qty_l, price_l, filled, netted, zone_l))
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
        price=figures[0],
        marginal_bid=figures[1],
        marginal_ask=figures[2],
        curve_volume=figures[3],
        volume=figures[4],
        order_set_hash=figures[5],
        zone_params=zone_params,
        zones=zone_outcomes,
        reserved=reserved,
    )


def _trades(result: ClearingResult, wallet: dict[int, str]) -> tuple[TradeIntent, ...]:
    return tuple(
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


@dataclass(frozen=True)
class _Zonal:
    result: ZonalResult
    owed: I64
    trades: tuple[TradeIntent, ...]
    outcomes: tuple[ZoneOutcome, ...]
    reserved: tuple[EscrowMove, ...]


def _zonal(
    epoch: Epoch,
    book: OrderBook,
    live: list[BookOrder],
    wallet: dict[int, str],
    zoning: ZonesConfig,
    fee_bps: int,
    utility: UtilityState | None,
) -> _Zonal:
    """Zonal clearing of the live orders (docs/decisions/0017-zonal-clearing.md). With the utility's account, its
    tariffs apply within what its escrow holds (its capacity); without one they are left out (the published zone
    parameters say which)."""
    full = zoning.params_at(epoch.start)
    if utility is None:
        params = ZoneParams(tuple(replace(z, retail=0, feed_in=0) for z in full.zones))
    else:
        params = ZoneParams(full.zones, utility.energy, utility.quote)
    zone = np.array([zoning.zone_of_meter(o.meter or "") for o in live], dtype=np.int64)
    result = clear_zonal(book, zone, params, fee_bps)
    owed = np.zeros(len(book), dtype=np.int64)
    tb, ts = result.trade_buy, result.trade_sell
    np.add.at(owed, tb[tb >= 0], result.buyer_pays[tb >= 0])
    np.add.at(owed, ts[ts >= 0], result.trade_sent[ts >= 0])
    ids, users = book.order_id.tolist(), book.user.tolist()
    operator = zoning.grid_operator or None

    def party(i: int) -> tuple[int | None, int, str]:
        if i == UTILITY:
            if utility is None:  # the engine trades with the utility only when the tariffs are in the parameters
                raise InvalidOrderError("a utility trade without a utility")
            return None, utility.account, utility.wallet
        return ids[i], users[i], wallet[users[i]]

    trades = []
    for k, (b, s, m, p, sent, d, v, gs, gb, f) in enumerate(
        zip(
            tb.tolist(), ts.tolist(), result.trade_market.tolist(), result.trade_price.tolist(),
            result.trade_sent.tolist(), result.trade_delivered.tolist(), result.trade_value.tolist(),
            result.trade_grid_fee_seller.tolist(), result.trade_grid_fee_buyer.tolist(), result.trade_fee.tolist(),
            strict=True,
        )
    ):
        (bo, bu, bw), (so, su, sw) = party(b), party(s)
        peer = UTILITY not in (b, s)
        trades.append(
            TradeIntent(
                k, bo, so, bu, su, bw, sw, sent, p, v, f, zone=m, delivered=d, grid_fee_seller=gs,
                grid_fee_buyer=gb, grid_operator=operator if peer else None,
            )
        )
    n_z = len(params)
    per_zone = {name: np.zeros(n_z, dtype=np.int64) for name in ("fees", "losses", "bought", "sold")}
    mkt = result.trade_market
    np.add.at(per_zone["fees"], mkt, result.trade_grid_fee)
    np.add.at(per_zone["losses"], mkt, result.trade_loss)
    np.add.at(per_zone["bought"], mkt[ts == UTILITY], result.trade_delivered[ts == UTILITY])
    np.add.at(per_zone["sold"], mkt[tb == UTILITY], result.trade_sent[tb == UTILITY])
    outcomes = tuple(
        ZoneOutcome(i, z.name, None if p < 0 else p, v, f, lo, ub, us)
        for i, (z, p, v, f, lo, ub, us) in enumerate(
            zip(params.zones, result.zone_price.tolist(), result.zone_volume.tolist(),
                *(per_zone[k].tolist() for k in ("fees", "losses", "bought", "sold")), strict=True)
        )
    )
    reserved: tuple[EscrowMove, ...] = ()
    if utility is not None:
        reserved = _moves({
            (utility.account, Asset.ENERGY): int(result.trade_sent[ts == UTILITY].sum()),
            (utility.account, Asset.QUOTE): int(result.trade_value[tb == UTILITY].sum()),
        })
    return _Zonal(result, owed, tuple(trades), outcomes, reserved)


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
        "delivered": t.qty if t.delivered is None else t.delivered,
        "grid_fee_seller": t.grid_fee_seller,
        "grid_fee_buyer": t.grid_fee_buyer,
        "grid_operator": t.grid_operator,
    }


def spent_at_settlement(trades: Sequence[tuple[int, int, int, int]]) -> tuple[EscrowMove, ...]:
    """The locks settled trades spend: per ``(buyer, seller, qty, paid)``, the buyer's quote ``paid`` (the value,
    plus the buyer's grid fee in a zonal trade) and the seller's ``qty`` Wh sent (the seller's share, the grid fees
    and the platform fee all leave the buyer's quote escrow; the delivered Wh and the loss the seller's energy
    escrow)."""
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
