"""Zonal clearing (central/market/zonal.py): a hand-computed zone-tree example, the conservation and fee properties,
recomputation from the published order set, and identity with the single-zone engine."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central.market.clearing import Order, OrderBook, Side, clear
from central.market.errors import InvalidOrderError
from central.market.zonal import (
    UTILITY,
    ZonalResult,
    clear_zonal,
    decode_zonal_order_set,
    encode_zonal_order_set,
    zonal_order_set_hash,
)
from central.market.zones import ROOT, Boundary, Zone, ZoneParams

B, S = Side.BUY, Side.SELL
BPS = 10_000


def trades(r: ZonalResult) -> list[tuple[int, ...]]:
    ids = r.book.order_id.tolist()

    def oid(i: int) -> int:
        return UTILITY if i == UTILITY else ids[i]

    return [
        (oid(b), oid(s), m, p, x, snt, dlv, v, gs, gb, f)
        for b, s, m, p, x, snt, dlv, v, gs, gb, f in zip(
            r.trade_buy.tolist(),
            r.trade_sell.tolist(),
            r.trade_market.tolist(),
            r.trade_price.tolist(),
            r.trade_qty.tolist(),
            r.trade_sent.tolist(),
            r.trade_delivered.tolist(),
            r.trade_value.tolist(),
            r.trade_grid_fee_seller.tolist(),
            r.trade_grid_fee_buyer.tolist(),
            r.trade_fee.tolist(),
            strict=True,
        )
    ]


def test_zone_tree_example_by_hand() -> None:
    """Tree: grid (0, root) ← north (1: 20/kWh, no %, no loss) ← a (2: 10/kWh, 1 %, 2 % loss) and b (3: 10/kWh).
    Utility everywhere: retail 400, feed-in 40. Platform fee 100 bps. Orders (id, user, side, Wh, limit, zone):
    #1 u1 sell 10000 @100 a; #2 u2 buy 4000 @180 a; #3 u3 buy 3000 @200 b; #4 u4 buy 2000 @150 north;
    #6 u6 sell 700 @35 grid.

    Depth 2 — market a: bid 180 (4000) vs ask 100 (10000): V = 4000, price floor((180 + 100) / 2) = 140.
      Trade #2←#1: 4000 Wh, value 4000·140/1000 = 560, platform fee floor(5.6) = 5, no grid fee, no loss.
      Market b: only a buy, nothing. Residuals go up: #1 (6000 Wh) across a: Λ = 200, F = 10, P = 100 →
      offers floor(6000·9800/10000) = 5880 north-Wh at ceil((100·10⁸ + 10·10⁴·9800) / (9800·9900))
      = ceil(10 980 000 000 / 97 020 000) = ceil(113.17) = 114. #3 (3000 Wh) across b: Λ = 0, F = 10, P = 0 →
      3000 Wh at floor((200·10000 − 10·10000) / 10000) = 190.
    Depth 1 — market north: bids 190 (#3, 3000), 150 (#4, 2000, local) vs ask 114 (5880): V = 5000, marginal bid
      150, marginal ask 114, price floor(264 / 2) = 132.
      Trade #3←#1, x = 3000: value 396; seller grid fee 10·3000/1000 + floor(396·1 %) = 30 + 3 = 33; buyer grid
      fee 10·3000/1000 = 30; platform fee min(floor(3.96), 396 − 33) = 3. Buyer pays 426 = seller 360 + grid 63
      + platform 3. Energy: seller's cumulative 3000 → ceil(3000·10000/9800) = 3062 Wh sent; delivered 3000;
      loss 62.
      Trade #4←#1, x = 2000: value 264; seller grid fee 20 + floor(2.64) = 22; buyer grid fee 0 (local);
      platform fee 2. Buyer pays 264 = 240 + 22 + 2. Energy: cumulative 5000 → ceil(5102.04) = 5103, so
      5103 − 3062 = 2041 sent; delivered 2000; loss 41.
      #1 has sent 4000 + 3062 + 2041 = 9103; its 897 Wh left go to the grid market (nothing buys there).
    Depth 0 — market grid: asks only, nothing.
    Utility: #6 sells at 35 <= feed-in 40: 700 Wh at 40 → value 28 (no fees). #1's rest asks 100 > 40: unfilled.
    Totals: sold 9803 Wh = bought 9700 + losses 103. Buyers pay 560 + 426 + 264 + 28 = 1278 = sellers 555 + 360
    + 240 + 28 (1183) + grid fees 85 + platform fees 10.
    """
    params = ZoneParams(
        (
            Zone("grid", ROOT, retail=400, feed_in=40),
            Zone("north", 0, Boundary(20, 0, 0), retail=400, feed_in=40),
            Zone("a", 1, Boundary(10, 100, 200), retail=400, feed_in=40),
            Zone("b", 1, Boundary(10, 0, 0), retail=400, feed_in=40),
        )
    )
    rows = [(1, 1, S, 10000, 100, 2), (2, 2, B, 4000, 180, 2), (3, 3, B, 3000, 200, 3), (4, 4, B, 2000, 150, 1),
            (6, 6, S, 700, 35, 0)]
    book = OrderBook.from_orders(Order(*r[:5]) for r in rows)
    r = clear_zonal(book, [row[5] for row in rows], params, 100)
    assert trades(r) == [
        # buy, sell, market, price, x, sent, delivered, value, grid fee seller, grid fee buyer, platform fee
        (2, 1, 2, 140, 4000, 4000, 4000, 560, 0, 0, 5),
        (3, 1, 1, 132, 3000, 3062, 3000, 396, 33, 30, 3),
        (4, 1, 1, 132, 2000, 2041, 2000, 264, 22, 0, 2),
        (UTILITY, 6, 0, 40, 700, 700, 700, 28, 0, 0, 0),
    ]
    assert r.zone_price.tolist() == [-1, 132, 140, -1]
    assert r.zone_volume.tolist() == [0, 5000, 4000, 0]
    assert r.filled.tolist() == [9103, 4000, 3000, 2000, 700]
    assert r.utility_filled.tolist() == [0, 0, 0, 0, 700]
    assert int(r.trade_sent.sum()) == 9803
    assert int(r.trade_delivered.sum()) == 9700
    assert int(r.trade_loss.sum()) == 103
    assert int(r.buyer_pays.sum()) == 1278
    assert int(r.seller_receives.sum()) == 1183
    assert int(r.trade_grid_fee.sum()) == 85
    assert int(r.trade_fee.sum()) == 10


# ------------------------------------------------------------------------------------------------ properties


@st.composite
def zone_trees(draw: st.DrawFn) -> ZoneParams:
    n = draw(st.integers(1, 7))
    zones = [Zone("z0", ROOT, retail=draw(st.sampled_from([0, 250, 400])), feed_in=draw(st.sampled_from([0, 30, 60])))]
    budget = [(0, 0, 0)]  # path sums so far (fee, bps, loss), kept within the tree limits
    for i in range(1, n):
        parent = draw(st.integers(0, i - 1))
        pf, pb, pl = budget[parent]
        fee = draw(st.integers(0, 40))
        bps = draw(st.integers(0, min(800, 5000 - pb)))
        loss = draw(st.integers(0, min(1500, 5000 - pl)))
        zones.append(
            Zone(f"z{i}", parent, Boundary(fee, bps, loss), draw(st.sampled_from([0, 250, 400])),
                 draw(st.sampled_from([0, 30, 60])))
        )
        budget.append((pf + fee, pb + bps, pl + loss))
    energy = draw(st.one_of(st.just(-1), st.integers(0, 30_000)))
    quote = draw(st.one_of(st.just(-1), st.integers(0, 5_000)))
    return ZoneParams(tuple(zones), energy, quote)


@st.composite
def zonal_books(draw: st.DrawFn) -> tuple[OrderBook, list[int], ZoneParams, int]:
    params = draw(zone_trees())
    ids = draw(st.lists(st.integers(1, 10**6), unique=True, max_size=40))
    orders, zones = [], []
    for oid in ids:
        side = draw(st.sampled_from([B, S]))
        qty = draw(st.one_of(st.integers(1, 30), st.integers(1, 20_000)))
        price = draw(st.integers(20, 450))
        orders.append(Order(oid, draw(st.integers(0, 8)), side, qty, price))
        zones.append(draw(st.integers(0, len(params) - 1)))
    return OrderBook.from_orders(orders), zones, params, draw(st.sampled_from([0, 100, 250]))


def path_sums(params: ZoneParams, z: int, market: int) -> tuple[int, int, int, list[int]]:
    """Fee per kWh, fee bps, loss bps and the boundaries from zone ``z`` up to ``market`` (an ancestor)."""
    up = params.ancestors(z)
    assert market in up, "a trade clears only in a market above both of its orders"
    crossed = up[: up.index(market)]
    zs = params.zones
    return (
        sum(zs[c].boundary.fee_per_kwh for c in crossed),
        sum(zs[c].boundary.fee_bps for c in crossed),
        sum(zs[c].boundary.loss_bps for c in crossed),
        crossed,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(zonal_books())
def test_conservation_fees_and_limits(case: tuple[OrderBook, list[int], ZoneParams, int]) -> None:
    book, zone_list, params, fee_bps = case
    r = clear_zonal(book, zone_list, params, fee_bps)
    zone = np.array(zone_list, dtype=np.int64)
    side, qty, price = book.side, book.qty, book.price
    util = r.is_utility

    # Energy: every trade sends what it delivers plus its loss; per order, what it traded is its fill (<= qty).
    assert (r.trade_loss >= 0).all()
    assert int(r.trade_delivered.sum()) == int(r.trade_sent.sum()) - int(r.trade_loss.sum())
    sent = np.zeros(len(book), np.int64)
    got = np.zeros(len(book), np.int64)
    np.add.at(sent, r.trade_sell[r.trade_sell >= 0], r.trade_sent[r.trade_sell >= 0])
    np.add.at(got, r.trade_buy[r.trade_buy >= 0], r.trade_delivered[r.trade_buy >= 0])
    assert (np.where(side == S, sent, got) == r.filled).all()
    assert ((sent == 0) | (side == S)).all()
    assert ((got == 0) | (side == B)).all()
    assert (r.filled <= qty).all()
    assert (r.utility_filled <= r.filled).all()

    # Money, to the base unit: buyers pay = sellers receive + grid fees + platform fee; nobody receives < 0.
    assert (r.buyer_pays == r.seller_receives + r.trade_grid_fee + r.trade_fee).all()
    assert (r.seller_receives >= 0).all()
    assert (r.trade_grid_fee[util] == 0).all()
    assert (r.trade_fee[util] == 0).all()
    assert (r.trade_loss[util] == 0).all()
    # A buyer never pays more than its limit for what it receives (its escrow lock covers it).
    paid = np.zeros(len(book), np.int64)
    np.add.at(paid, r.trade_buy[r.trade_buy >= 0], r.buyer_pays[r.trade_buy >= 0])
    assert (paid <= r.filled * price // 1000).all()

    # The utility stays within its capacity.
    if params.utility_energy >= 0:
        assert int(r.trade_delivered[util & (r.trade_sell == UTILITY)].sum()) <= params.utility_energy
    if params.utility_quote >= 0:
        assert int(r.trade_value[util & (r.trade_buy == UTILITY)].sum()) <= params.utility_quote

    # Every boundary between seller and buyer is on a paid path, and each side pays exactly its path's fees/loss.
    per_order_market: dict[tuple[int, int], int] = {}
    for t in range(r.trade_qty.size):
        b, s, m = int(r.trade_buy[t]), int(r.trade_sell[t]), int(r.trade_market[t])
        x, v = int(r.trade_qty[t]), int(r.trade_value[t])
        assert x > 0
        if util[t]:
            o = b if b != UTILITY else s
            assert m == zone[o]
            assert int(r.trade_price[t]) == (params.zones[m].retail if b != UTILITY else params.zones[m].feed_in)
            assert int(r.trade_qty[t]) == int(r.utility_filled[o]) <= int(qty[o] - (r.filled[o] - r.utility_filled[o]))
            continue
        assert book.user[b] != book.user[s], "no self-trade"
        fs, ps, ls, cs = path_sums(params, int(zone[s]), m)
        fb, pb, lb, cb = path_sums(params, int(zone[b]), m)
        seller_side, buyer_side = params.crossed(int(zone[s]), int(zone[b]))
        assert set(seller_side) <= set(cs), "a boundary on the seller's side is unpaid"
        assert set(buyer_side) <= set(cb), "a boundary on the buyer's side is unpaid"
        assert int(r.trade_grid_fee_seller[t]) == fs * x // 1000 + v * ps // BPS
        assert int(r.trade_grid_fee_buyer[t]) == fb * x // 1000 + v * pb // BPS
        assert int(r.trade_fee[t]) == min(v * fee_bps // BPS, v - int(r.trade_grid_fee_seller[t]))
        p = int(r.trade_price[t])
        assert p == int(r.zone_price[m])
        assert v == x * p // 1000
        # Limits: the market price lies between the effective ask and bid of the two orders.
        assert p >= -((-(int(price[s]) * BPS * BPS + fs * BPS * (BPS - ls))) // ((BPS - ls) * (BPS - ps)))
        assert p <= (int(price[b]) * (BPS - lb) - fb * BPS) // (BPS + pb)
        assert r.trade_delivered[t] <= x <= r.trade_sent[t]
        per_order_market[(s, m)] = ls
        per_order_market[(b, m)] = -1 - lb

    # Losses: per order and market, the Wh sent / delivered are the rounded cumulative m-Wh (rounding never adds up).
    for (o, m), code in per_order_market.items():
        mine = (r.trade_market == m) & ~util & ((r.trade_sell == o) if code >= 0 else (r.trade_buy == o))
        xs = int(r.trade_qty[mine].sum())
        if code >= 0:
            assert int(r.trade_sent[mine].sum()) == -((-xs * BPS) // (BPS - code))
        else:
            lb = -1 - code
            assert int(r.trade_delivered[mine].sum()) == -((-xs * (BPS - lb)) // BPS)


@settings(max_examples=60, deadline=None)
@given(zonal_books())
def test_recomputed_from_the_published_order_set(case: tuple[OrderBook, list[int], ZoneParams, int]) -> None:
    book, zone_list, params, fee_bps = case
    r = clear_zonal(book, zone_list, params, fee_bps)
    published = encode_zonal_order_set(book, np.array(zone_list, dtype=np.int64), params)
    book2, zone2, params2 = decode_zonal_order_set(published)
    r2 = clear_zonal(book2, zone2, params2, fee_bps)
    assert r2.order_set_hash == r.order_set_hash == zonal_order_set_hash(book2, zone2, params2)
    assert trades(r2) == trades(r)
    assert (r2.zone_price == r.zone_price).all()
    assert (r2.filled[book2.id_order] == r.filled[book.id_order]).all()
    # Shuffling the input order changes nothing (only ids carry time priority).
    perm = np.random.default_rng(len(book)).permutation(len(book))
    shuffled = OrderBook.from_arrays(
        order_id=book.order_id[perm], user=book.user[perm], side=book.side[perm], qty=book.qty[perm],
        price=book.price[perm],
    )
    r3 = clear_zonal(shuffled, np.array(zone_list, dtype=np.int64)[perm], params, fee_bps)
    assert r3.order_set_hash == r.order_set_hash
    assert trades(r3) == trades(r)


@settings(max_examples=60, deadline=None)
@given(zonal_books())
def test_one_zone_without_utility_is_the_single_auction(case: tuple[OrderBook, list[int], ZoneParams, int]) -> None:
    book, _, _, fee_bps = case
    r = clear_zonal(book, [0] * len(book), ZoneParams.single(), fee_bps)
    s = clear(book, fee_bps)
    assert (r.trade_buy == s.trade_buy).all()
    assert (r.trade_sell == s.trade_sell).all()
    assert (r.trade_qty == s.trade_qty).all()
    assert (r.trade_value == s.trade_value).all()
    assert (r.trade_fee == s.trade_fee).all()
    assert (r.filled == s.filled).all()
    assert (r.netted == s.netted).all()
    assert (r.trade_sent == s.trade_qty).all()
    assert (r.trade_delivered == s.trade_qty).all()
    assert int(r.zone_price[0]) == (-1 if s.price is None else s.price)


def test_the_utility_is_the_outside_option() -> None:
    """A consumer with no peer supply buys at its zone's retail price, a prosumer with no peer demand sells at its
    zone's feed-in price; orders whose limits refuse the tariff stay unfilled; peers come first."""
    params = ZoneParams((Zone("grid", ROOT), Zone("x", 0, Boundary(5, 0, 100), retail=300, feed_in=50),
                         Zone("y", 0, Boundary(5, 0, 100), retail=320, feed_in=45)))
    buys = OrderBook.from_orders([Order(1, 1, B, 1500, 310), Order(3, 3, B, 100, 200)])
    r = clear_zonal(buys, [1, 1], params, 100)
    assert trades(r) == [(1, UTILITY, 1, 300, 1500, 1500, 1500, 450, 0, 0, 0)]
    assert r.utility_filled.tolist() == [1500, 0]
    sells = OrderBook.from_orders([Order(2, 2, S, 800, 45), Order(4, 4, S, 100, 100)])
    r = clear_zonal(sells, [2, 2], params, 100)
    assert trades(r) == [(UTILITY, 2, 2, 45, 800, 800, 800, 36, 0, 0, 0)]
    # With both, they trade with each other across the grid (at the grid market's price, fees paid) instead.
    both = OrderBook.from_orders([Order(1, 1, B, 1500, 310), Order(2, 2, S, 800, 45)])
    r = clear_zonal(both, [1, 2], params, 100)
    assert [t[:3] for t in trades(r)] == [(1, 2, 0), (1, UTILITY, 1)]
    assert int(r.trade_grid_fee[0]) > 0
    assert int(r.trade_loss[0]) > 0


def test_invalid_inputs_are_refused() -> None:
    book = OrderBook.from_orders([Order(1, 1, B, 10, 10)])
    with pytest.raises(InvalidOrderError):
        clear_zonal(book, [1], ZoneParams.single(), 0)
    with pytest.raises(InvalidOrderError):
        clear_zonal(book, [0, 0], ZoneParams.single(), 0)
    with pytest.raises(InvalidOrderError):
        ZoneParams((Zone("a", ROOT), Zone("b", 0, Boundary(loss_bps=5001))))
    with pytest.raises(InvalidOrderError):
        ZoneParams((Zone("a", ROOT), Zone("b", 2), Zone("c", 0)))
    with pytest.raises(InvalidOrderError):
        ZoneParams((Zone("a", ROOT, Boundary(fee_per_kwh=1)),))
    with pytest.raises(InvalidOrderError):
        decode_zonal_order_set(b"GTX-ORDERSET-V1\n")


def test_the_utility_within_its_capacity() -> None:
    """Capacity 2000 Wh to sell and 50 quote units to pay, in time priority: buyers #1 (1500) and #2 (1000 → 500);
    sellers at feed-in 40: #3 (800 Wh, value 32) fits, #4 (1000 Wh, value 40) gets the Wh worth at most 18 left:
    q = ((18 + 1)·1000 − 1) // 40 = 474 (value floor(474·40/1000) = 18), #5 nothing."""
    zs = (Zone("grid", ROOT, retail=300, feed_in=40), Zone("x", 0, Boundary(), 300, 40))
    params = ZoneParams(zs, utility_energy=2000, utility_quote=50)
    only_buys = OrderBook.from_orders([Order(1, 1, B, 1500, 310), Order(2, 2, B, 1000, 300)])
    r = clear_zonal(only_buys, [1, 1], params, 0)
    assert r.utility_filled.tolist() == [1500, 500]
    only_sells = OrderBook.from_orders([Order(3, 3, S, 800, 30), Order(4, 4, S, 1000, 40), Order(5, 5, S, 100, 10)])
    r = clear_zonal(only_sells, [1, 1, 1], params, 0)
    assert r.utility_filled.tolist() == [800, 474, 0]
    assert r.trade_value.tolist() == [32, 18]
    assert int(r.trade_value.sum()) <= 50
    assert ZoneParams.decode(params.encode()).utility_quote == 50
