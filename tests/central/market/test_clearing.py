"""The clearing engine against worked examples, the literal Wh-level definition and the loop reference."""

from __future__ import annotations

import hashlib
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central.market.clearing import (
    MAX_PRICE,
    MAX_QTY_WH,
    ORDER_SET_MAGIC,
    Order,
    OrderBook,
    Side,
    clear,
    encode_order_set,
    order_set_hash,
    trade_fee,
    trade_value,
)
from central.market.errors import InvalidOrderError
from tests.central.market.market_reference import reference_clear, unit_curve_volume

B, S = Side.BUY, Side.SELL


def book(*rows: tuple[int, int, Side, int, int]) -> OrderBook:
    return OrderBook.from_orders(Order(*r) for r in rows)


def test_simple_cross_midpoint_price_and_trade() -> None:
    r = clear(book((1, 10, B, 5000, 120), (2, 20, S, 5000, 80)), fee_bps=100)
    assert (r.curve_volume, r.volume, r.price, r.marginal_bid, r.marginal_ask) == (5000, 5000, 100, 120, 80)
    [t] = r.trades()
    assert (t.buy_order_id, t.sell_order_id, t.buyer, t.seller, t.qty, t.price) == (1, 2, 10, 20, 5000, 100)
    assert t.value == 500  # 5000 Wh * 100 per kWh / 1000
    assert t.fee == 5  # 1 % of 500


def test_no_cross_gives_no_price() -> None:
    r = clear(book((1, 10, B, 100, 50), (2, 20, S, 100, 51)), fee_bps=100)
    assert (r.curve_volume, r.volume, r.price) == (0, 0, None)
    assert r.trades() == []
    assert clear(book((1, 10, B, 100, 50)), 100).price is None
    assert clear(OrderBook.from_orders([]), 100).volume == 0


def test_marginal_orders_set_price_floor_of_midpoint() -> None:
    # bids 130 (3 kWh), 101 (2 kWh); asks 90 (2 kWh), 100 (4 kWh): the 5th Wh-block crosses 101 >= 100, V = 5 kWh.
    r = clear(book((1, 1, B, 3000, 130), (2, 2, B, 2000, 101), (3, 3, S, 2000, 90), (4, 4, S, 4000, 100)), 0)
    assert (r.curve_volume, r.marginal_bid, r.marginal_ask, r.price) == (5000, 101, 100, 100)  # floor(100.5)
    assert [(t.buy_order_id, t.sell_order_id, t.qty) for t in r.trades()] == [(1, 3, 2000), (1, 4, 1000), (2, 4, 2000)]
    assert r.filled.tolist() == [3000, 2000, 2000, 3000]


def test_long_side_rationed_by_time_priority_at_the_margin() -> None:
    # 10 kWh offered; bids: 200 (4 kWh) then three at 150 placed in order 5, 6, 7 for 4 kWh each.
    r = clear(
        book(
            (7, 3, B, 4000, 150),
            (5, 1, B, 4000, 150),
            (6, 2, B, 4000, 150),
            (4, 4, B, 4000, 200),
            (9, 9, S, 10_000, 100),
        ),
        fee_bps=0,
    )
    fills = dict(zip(r.book.order_id.tolist(), r.filled.tolist(), strict=True))
    assert fills == {4: 4000, 5: 4000, 6: 2000, 7: 0, 9: 10_000}  # oldest at the margin first, then partial
    assert (r.marginal_bid, r.marginal_ask, r.price) == (150, 100, 125)


def test_short_side_ask_rationing_too() -> None:
    r = clear(book((1, 1, B, 3000, 100), (2, 2, S, 2000, 50), (3, 3, S, 2000, 50), (4, 4, S, 2000, 40)), 0)
    fills = dict(zip(r.book.order_id.tolist(), r.filled.tolist(), strict=True))
    assert fills == {1: 3000, 4: 2000, 2: 1000, 3: 0}


def test_user_never_trades_with_themself_net_position_kept() -> None:
    # User 1 bids 100 and asks 50 for 10 kWh each; user 2 bids 60. Without the rule user 1 would buy from itself.
    r = clear(book((1, 1, B, 10_000, 100), (2, 1, S, 10_000, 50), (3, 2, B, 10_000, 60)), 100)
    assert r.curve_volume == 10_000
    assert r.volume == 0
    assert r.trades() == []
    assert r.netted.tolist() == [10_000, 10_000, 0]


def test_netting_only_removes_the_round_trip() -> None:
    # User 1 buys 6 kWh and sells 4 kWh in the crossed region: nets 4, still buys 2 from others.
    r = clear(
        book(
            (1, 1, B, 6000, 200),
            (2, 2, B, 4000, 150),
            (3, 1, S, 4000, 10),
            (4, 3, S, 6000, 20),
        ),
        0,
    )
    assert r.curve_volume == 10_000
    assert r.netted.tolist() == [4000, 0, 4000, 0]
    assert r.filled.tolist() == [2000, 4000, 0, 6000]
    assert all(t.buyer != t.seller for t in r.trades())
    assert sum(t.qty for t in r.trades()) == r.volume == 6000


def test_fee_arithmetic_to_the_base_unit() -> None:
    # value = floor(1234 Wh * 1001 / 1000) = 1235; fee = floor(1235 * 137 / 10000) = 16
    r = clear(book((1, 1, B, 1234, 1001), (2, 2, S, 1234, 1001)), fee_bps=137)
    [t] = r.trades()
    assert (t.value, t.fee) == (1235, 16)
    assert trade_value(1234, 1001) == 1235
    assert trade_fee(1235, 137) == 16
    # Largest values: no int64 overflow in value or fee.
    big = clear(book((1, 1, B, MAX_QTY_WH, MAX_PRICE), (2, 2, S, MAX_QTY_WH, MAX_PRICE)), fee_bps=10_000)
    [t] = big.trades()
    assert t.value == MAX_QTY_WH * MAX_PRICE // 1000
    assert t.fee == t.value


def test_validation_errors() -> None:
    with pytest.raises(InvalidOrderError, match="unique"):
        book((1, 1, B, 1, 1), (1, 2, S, 1, 1))
    with pytest.raises(InvalidOrderError, match="qty"):
        book((1, 1, B, 0, 1))
    with pytest.raises(InvalidOrderError, match="price"):
        book((1, 1, B, 1, MAX_PRICE + 1))
    with pytest.raises(InvalidOrderError, match="side"):
        OrderBook.from_arrays(order_id=[1], user=[1], side=[2], qty=[1], price=[1])
    with pytest.raises(InvalidOrderError, match="length"):
        OrderBook.from_arrays(order_id=[1, 2], user=[1], side=[0], qty=[1], price=[1])
    with pytest.raises(InvalidOrderError, match="integers"):
        OrderBook.from_arrays(order_id=[1.5], user=[1], side=[0], qty=[1], price=[1])
    with pytest.raises(InvalidOrderError, match="non-negative"):
        book((-1, 1, B, 1, 1))
    with pytest.raises(InvalidOrderError, match="exceeds"):
        OrderBook.from_arrays(order_id=np.array([2**64 - 1], dtype=np.uint64), user=[1], side=[0], qty=[1], price=[1])
    with pytest.raises(InvalidOrderError, match="fee_bps"):
        clear(book((1, 1, B, 1, 1)), 10_001)


def test_order_set_hash_golden_vector() -> None:
    b = book((2, 7, S, 1500, 90), (1, 5, B, 1000, 100))
    enc = encode_order_set(b)
    rec1 = (
        (1).to_bytes(8, "little")
        + (5).to_bytes(8, "little")
        + b"\x00"
        + (1000).to_bytes(8, "little")
        + (100).to_bytes(8, "little")
    )
    rec2 = (
        (2).to_bytes(8, "little")
        + (7).to_bytes(8, "little")
        + b"\x01"
        + (1500).to_bytes(8, "little")
        + (90).to_bytes(8, "little")
    )
    assert enc == ORDER_SET_MAGIC + (2).to_bytes(8, "little") + rec1 + rec2
    assert order_set_hash(b) == hashlib.sha256(enc).digest()
    assert clear(b, 100).order_set_hash == order_set_hash(b)
    assert order_set_hash(b).hex() == "0497a91019e781e308dd56c05b006514419b3d95ca49c2aa84c0f5483881cb37"


# ---- property tests --------------------------------------------------------------------------------------------


@st.composite
def books(draw: st.DrawFn, max_orders: int = 40, max_qty: int = 5000) -> list[Order]:
    n = draw(st.integers(0, max_orders))
    users = draw(st.integers(1, 6))
    lo = draw(st.integers(1, 200))
    spread = draw(st.integers(0, 30))
    ids = draw(st.lists(st.integers(0, 10_000), min_size=n, max_size=n, unique=True))
    return [
        Order(
            oid,
            draw(st.integers(0, users - 1)),
            draw(st.sampled_from([B, S])),
            draw(st.integers(1, max_qty)),
            draw(st.integers(lo, lo + spread)),
        )
        for oid in ids
    ]


def check_invariants(orders: list[Order], fee_bps: int) -> None:
    r = clear(OrderBook.from_orders(orders), fee_bps)
    trades = r.trades()
    by_id = {o.order_id: o for o in orders}
    assert all(t.buyer != t.seller for t in trades)
    assert r.volume == sum(t.qty for t in trades) == int(r.filled[r.book.side == B].sum())
    assert int(r.filled[r.book.side == S].sum()) == r.volume
    assert np.all(r.filled + r.netted <= r.book.qty)
    assert np.all(r.filled >= 0)
    assert np.all(r.netted >= 0)
    for t in trades:
        assert by_id[t.buy_order_id].price >= t.price >= by_id[t.sell_order_id].price
        assert t.value == t.qty * t.price // 1000
        assert t.fee == t.value * fee_bps // 10000
    # each user fills on one side only, and net positions match the auction without the no-self-trade rule
    gross = r.filled + r.netted
    sides: dict[int, set[int]] = {}
    for o, f in zip(r.book.orders(), r.filled.tolist(), strict=True):
        if f:
            sides.setdefault(o.user, set()).add(o.side)
    assert all(len(s) == 1 for s in sides.values())
    for u in set(r.book.user.tolist()):
        mine = r.book.user == u
        net = int(r.filled[mine & (r.book.side == B)].sum() - r.filled[mine & (r.book.side == S)].sum())
        net_gross = int(gross[mine & (r.book.side == B)].sum() - gross[mine & (r.book.side == S)].sum())
        assert net == net_gross
    assert int(gross[r.book.side == B].sum()) == r.curve_volume


@pytest.mark.slow  # 1500 examples: about a minute
@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(books(), st.integers(0, 10_000))
def test_engine_equals_reference(orders: list[Order], fee_bps: int) -> None:
    r = clear(OrderBook.from_orders(orders), fee_bps)
    ref = reference_clear(orders, fee_bps)
    assert (r.curve_volume, r.volume, r.price) == (ref.curve_volume, ref.volume, ref.price)
    ids = r.book.order_id.tolist()
    assert dict(zip(ids, r.filled.tolist(), strict=True)) == ref.filled
    assert dict(zip(ids, r.netted.tolist(), strict=True)) == ref.netted
    assert [(t.buy_order_id, t.sell_order_id, t.qty, t.value, t.fee) for t in r.trades()] == ref.trades
    check_invariants(orders, fee_bps)


@settings(max_examples=400, deadline=None)
@given(books(max_orders=12, max_qty=30))
def test_curve_matches_literal_wh_definition(orders: list[Order]) -> None:
    r = clear(OrderBook.from_orders(orders), 0)
    assert (r.curve_volume, r.price) == unit_curve_volume(orders)


@settings(max_examples=200, deadline=None)
@given(books(), st.randoms(use_true_random=False))
def test_deterministic_under_any_input_order(orders: list[Order], rnd: random.Random) -> None:
    a = clear(OrderBook.from_orders(orders), 100)
    shuffled = list(orders)
    rnd.shuffle(shuffled)
    b = clear(OrderBook.from_orders(shuffled), 100)
    assert a.order_set_hash == b.order_set_hash
    assert a.trades() == b.trades()


@settings(max_examples=200, deadline=None)
@given(books(max_orders=10), st.data())
def test_hash_changes_with_any_field(orders: list[Order], data: st.DataObject) -> None:
    if not orders:
        return
    k = data.draw(st.integers(0, len(orders) - 1))
    o = orders[k]
    field = data.draw(st.sampled_from(["user", "side", "qty", "price"]))
    changed = {
        "user": Order(o.order_id, o.user + 1, o.side, o.qty, o.price),
        "side": Order(o.order_id, o.user, Side(1 - o.side), o.qty, o.price),
        "qty": Order(o.order_id, o.user, o.side, o.qty + 1, o.price),
        "price": Order(o.order_id, o.user, o.side, o.qty, o.price + 1),
    }[field]
    other = [*orders[:k], changed, *orders[k + 1 :]]
    assert order_set_hash(OrderBook.from_orders(orders)) != order_set_hash(OrderBook.from_orders(other))


def test_large_random_book_matches_reference() -> None:
    rng = np.random.default_rng(7)
    n = 20_000
    b = OrderBook.from_arrays(
        order_id=rng.permutation(n * 3)[:n],
        user=rng.integers(0, 500, n),
        side=rng.integers(0, 2, n),
        qty=rng.integers(1, 50_000, n),
        price=rng.integers(100, 200, n),
    )
    r = clear(b, 100)
    ref = reference_clear(b.orders(), 100)
    assert (r.volume, r.price) == (ref.volume, ref.price)
    assert [(t.buy_order_id, t.sell_order_id, t.qty, t.value, t.fee) for t in r.trades()] == ref.trades
