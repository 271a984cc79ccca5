"""A deliberately simple, loop-based reference of the clearing rules (central/market/clearing.py docstring).

Independent of the numpy engine: plain lists, a two-pointer walk of the curves, per-user dictionaries. Used by the
Hypothesis cross-checks and by bench/clearing.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from central.market.clearing import Order, Side


@dataclass
class RefResult:
    curve_volume: int
    volume: int
    price: int | None
    filled: dict[int, int]
    netted: dict[int, int]
    trades: list[tuple[int, int, int, int, int]]  # (buy order id, sell order id, qty, value, fee)


def reference_clear(orders: list[Order], fee_bps: int) -> RefResult:
    bids = sorted((o for o in orders if o.side == Side.BUY), key=lambda o: (-o.price, o.order_id))
    asks = sorted((o for o in orders if o.side == Side.SELL), key=lambda o: (o.price, o.order_id))
    filled = {o.order_id: 0 for o in orders}
    netted = {o.order_id: 0 for o in orders}

    # Walk both curves Wh-aligned while the current bid still crosses the current ask.
    i = j = 0
    rb = bids[0].qty if bids else 0
    ra = asks[0].qty if asks else 0
    volume = 0
    last = None
    while i < len(bids) and j < len(asks) and bids[i].price >= asks[j].price:
        q = min(rb, ra)
        volume += q
        filled[bids[i].order_id] += q
        filled[asks[j].order_id] += q
        last = (bids[i].price, asks[j].price)
        rb -= q
        ra -= q
        if rb == 0:
            i += 1
            rb = bids[i].qty if i < len(bids) else 0
        if ra == 0:
            j += 1
            ra = asks[j].qty if j < len(asks) else 0
    if last is None:
        return RefResult(0, 0, None, filled, netted, [])
    price = (last[0] + last[1]) // 2

    # Netting: users filled on both sides lose min(bought, sold) on each side, lowest priority first.
    bought: dict[int, int] = {}
    sold: dict[int, int] = {}
    for o in bids:
        bought[o.user] = bought.get(o.user, 0) + filled[o.order_id]
    for o in asks:
        sold[o.user] = sold.get(o.user, 0) + filled[o.order_id]
    for side in (bids, asks):
        left = {u: min(bought.get(u, 0), sold.get(u, 0)) for u in bought | sold}
        for o in reversed(side):
            take = min(left[o.user], filled[o.order_id])
            if take:
                filled[o.order_id] -= take
                netted[o.order_id] += take
                left[o.user] -= take

    # Pair the remaining fills Wh by Wh.
    fb = [[o.order_id, filled[o.order_id]] for o in bids if filled[o.order_id]]
    fa = [[o.order_id, filled[o.order_id]] for o in asks if filled[o.order_id]]
    trades = []
    i = j = 0
    while i < len(fb) and j < len(fa):
        q = min(fb[i][1], fa[j][1])
        value = q * price // 1000
        trades.append((fb[i][0], fa[j][0], q, value, value * fee_bps // 10000))
        fb[i][1] -= q
        fa[j][1] -= q
        i += fb[i][1] == 0
        j += fa[j][1] == 0
    assert i == len(fb)
    assert j == len(fa)
    return RefResult(volume, sum(t[2] for t in trades), price, filled, netted, trades)


def unit_curve_volume(orders: list[Order]) -> tuple[int, int | None]:
    """The literal definition on Wh units (tiny books only): (V, clearing price) without netting."""
    bids = sorted((o for o in orders if o.side == Side.BUY), key=lambda o: (-o.price, o.order_id))
    asks = sorted((o for o in orders if o.side == Side.SELL), key=lambda o: (o.price, o.order_id))
    bid_units = [o.price for o in bids for _ in range(o.qty)]
    ask_units = [o.price for o in asks for _ in range(o.qty)]
    v = 0
    for k in range(min(len(bid_units), len(ask_units))):
        if bid_units[k] >= ask_units[k]:
            v = k + 1
    if v == 0:
        return 0, None
    return v, (bid_units[v - 1] + ask_units[v - 1]) // 2
