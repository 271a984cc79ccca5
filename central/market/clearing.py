"""Uniform-price call auction for one epoch: pure (no I/O), vectorised with numpy, deterministic.

Inputs are the epoch's live orders: ``order_id`` (unique; it is also the time priority — lower id = placed earlier),
``user`` (the market account number of the owner), ``side`` (0 = buy/bid, 1 = sell/ask), ``qty`` (Wh) and
``price`` (limit, quote base units per kWh). All integers; no floats anywhere.

The rules, in order:

1. **Priority.** Bids sorted by price descending then order id ascending; asks by price ascending then order id
   ascending. The k-th Wh of the bid curve is the k-th Wh of the bids in that order (same for asks).
2. **Volume.** The curve volume ``V`` is the largest ``v`` such that the price of the bid holding the v-th Wh of the
   bid curve is >= the price of the ask holding the v-th Wh of the ask curve (0 if even the first Wh does not cross).
3. **Price.** With ``pb``/``pa`` the prices of the bid/ask holding the V-th Wh (the marginal bid and ask), the
   clearing price is ``floor((pb + pa) / 2)``. Every bid filled has price >= pb >= price and every ask filled has
   price <= pa <= price, so every fill respects its limit.
4. **Fills, rationing.** Each side fills its first V Wh in priority order, so the long side is rationed by time
   priority at the margin (orders at the marginal price fill oldest first; the last one may fill partially).
5. **No self-trade (netting).** A user whose bids fill ``d`` Wh and whose asks fill ``s`` Wh in step 4 would be both
   buyer and seller; ``m = min(d, s)`` Wh are *netted*: removed from that user's bid fills and from their ask fills,
   lowest priority first (the marginal end). Netted Wh are not traded (the orders keep them unfilled), so afterwards
   every user fills on one side only and no trade can pair a user with themself. Every user's *net* position
   (bought minus sold, and the money for it at the uniform price) is exactly that of the auction without the rule; only
   the pointless round trip (and its fee) disappears, and no other user's fills change.
6. **Pairing into trades.** The remaining bid fills (priority order, zero fills dropped) and ask fills (likewise) are
   laid end to end; the k-th traded Wh pairs the bid and the ask holding it. Each maximal run with the same
   (bid, ask) pair is one trade; trades are numbered in that order, which is the settlement order.
7. **Money (docs/decisions/0003-integer-units.md).** Per trade: ``value = floor(qty * price / 1000)``,
   ``fee = floor(value * fee_bps / 10000)`` paid by the seller (the seller receives ``value - fee``, the treasury
   ``fee``).

**Order-set hash** (``ClearingResult.order_set_hash``): SHA-256 of the canonical encoding
``b"GTX-ORDERSET-V1\\n"`` ‖ u64 count ‖ one 33-byte record per order sorted by order id ascending:
u64 order_id ‖ u64 user ‖ u8 side ‖ u64 qty ‖ u64 price (all little-endian). Given the published orders anyone can
recompute the hash and, with ``fee_bps``, the exact trades.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from functools import cached_property
from typing import Final

import numpy as np
import numpy.typing as npt

from central.market.errors import InvalidOrderError

I64 = npt.NDArray[np.int64]

MAX_QTY_WH: Final = 10**9  # 1 GWh per order; qty * price stays below 2**63
MAX_PRICE: Final = 10**9  # quote base units per kWh (1000 quote tokens/kWh at 6 decimals)
MAX_FEE_BPS: Final = 10_000
MAX_ID: Final = 2**63 - 1
MAX_ORDERS: Final = 2**32 - 1  # time ranks fit the low 32 bits of the sort keys
ORDER_SET_MAGIC: Final = b"GTX-ORDERSET-V1\n"
_RECORD = np.dtype([("order_id", "<u8"), ("user", "<u8"), ("side", "u1"), ("qty", "<u8"), ("price", "<u8")])


class Side(IntEnum):
    BUY = 0
    SELL = 1


@dataclass(frozen=True, slots=True)
class Order:
    order_id: int
    user: int
    side: Side
    qty: int
    price: int


@dataclass(frozen=True, slots=True)
class Trade:
    seq: int  # position in the epoch's settlement order, 0-based
    buy_order_id: int
    sell_order_id: int
    buyer: int
    seller: int
    qty: int
    price: int
    value: int
    fee: int


def _int_array(values: npt.ArrayLike, name: str) -> I64:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidOrderError(f"{name} must be one-dimensional")
    if arr.size and arr.dtype.kind not in "iu":
        raise InvalidOrderError(f"{name} must hold integers, not {arr.dtype}")
    if arr.dtype == np.uint64 and arr.size and int(arr.max()) > MAX_ID:
        raise InvalidOrderError(f"{name} exceeds {MAX_ID}")
    return np.ascontiguousarray(arr, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class OrderBook:
    """The order set of one epoch as parallel int64 arrays (validated at construction, not to be mutated)."""

    order_id: I64
    user: I64
    side: I64
    qty: I64
    price: I64

    @classmethod
    def from_arrays(
        cls,
        *,
        order_id: npt.ArrayLike,
        user: npt.ArrayLike,
        side: npt.ArrayLike,
        qty: npt.ArrayLike,
        price: npt.ArrayLike,
    ) -> OrderBook:
        book = cls(
            order_id=_int_array(order_id, "order_id"),
            user=_int_array(user, "user"),
            side=_int_array(side, "side"),
            qty=_int_array(qty, "qty"),
            price=_int_array(price, "price"),
        )
        book._validate()
        return book

    @classmethod
    def from_orders(cls, orders: Iterable[Order]) -> OrderBook:
        rows = [(o.order_id, o.user, int(o.side), o.qty, o.price) for o in orders]
        for row in rows:
            for v in row:
                if not -(2**63) <= v <= MAX_ID:
                    raise InvalidOrderError(f"value {v} out of range in order {row[0]}")
        cols = np.array(rows, dtype=np.int64).reshape(-1, 5).T
        return cls.from_arrays(order_id=cols[0], user=cols[1], side=cols[2], qty=cols[3], price=cols[4])

    def __len__(self) -> int:
        return int(self.order_id.size)

    def _validate(self) -> None:
        n = self.order_id.size
        if any(a.size != n for a in (self.user, self.side, self.qty, self.price)):
            raise InvalidOrderError("order book columns differ in length")
        if n == 0:
            return
        if int(self.order_id.min()) < 0 or int(self.user.min()) < 0:
            raise InvalidOrderError("order ids and users must be non-negative")
        if not np.isin(self.side, (Side.BUY, Side.SELL)).all():
            raise InvalidOrderError("side must be 0 (buy) or 1 (sell)")
        if int(self.qty.min()) < 1 or int(self.qty.max()) > MAX_QTY_WH:
            raise InvalidOrderError(f"qty must be 1..{MAX_QTY_WH} Wh")
        if int(self.price.min()) < 1 or int(self.price.max()) > MAX_PRICE:
            raise InvalidOrderError(f"price must be 1..{MAX_PRICE}")
        if n > MAX_ORDERS:
            raise InvalidOrderError(f"at most {MAX_ORDERS} orders per book")
        ids = self.order_id[self.id_order]
        if n > 1 and not bool((ids[1:] > ids[:-1]).all()):
            raise InvalidOrderError("order ids must be unique")

    @cached_property
    def id_order(self) -> I64:
        """Indices that sort the book by order id (time priority); identity when already sorted."""
        ids = self.order_id
        if ids.size < 2 or bool((ids[1:] > ids[:-1]).all()):
            return np.arange(ids.size, dtype=np.int64)
        order: I64 = np.argsort(ids).astype(np.int64, copy=False)
        return order

    @cached_property
    def rank(self) -> I64:
        """Each order's time-priority rank (0 = oldest)."""
        rank = np.empty(self.order_id.size, dtype=np.int64)
        rank[self.id_order] = np.arange(self.order_id.size, dtype=np.int64)
        return rank

    def orders(self) -> list[Order]:
        return [
            Order(int(i), int(u), Side(int(s)), int(q), int(p))
            for i, u, s, q, p in zip(
                self.order_id.tolist(),
                self.user.tolist(),
                self.side.tolist(),
                self.qty.tolist(),
                self.price.tolist(),
                strict=True,
            )
        ]


def encode_order_set(book: OrderBook) -> bytes:
    """The canonical encoding of an order set (see the module docstring)."""
    order = book.id_order
    rec = np.empty(len(book), dtype=_RECORD)
    rec["order_id"] = book.order_id[order]
    rec["user"] = book.user[order]
    rec["side"] = book.side[order]
    rec["qty"] = book.qty[order]
    rec["price"] = book.price[order]
    return ORDER_SET_MAGIC + len(book).to_bytes(8, "little") + rec.tobytes()


def order_set_hash(book: OrderBook) -> bytes:
    return hashlib.sha256(encode_order_set(book)).digest()


@dataclass(frozen=True, eq=False)
class ClearingResult:
    """Outcome of one auction. Per-order arrays are aligned with the book; trade arrays hold book indices."""

    book: OrderBook
    order_set_hash: bytes
    fee_bps: int
    curve_volume: int  # V of rule 2 (before netting)
    volume: int  # Wh actually traded (= sum of trade qty)
    price: int | None  # None when nothing crosses
    marginal_bid: int | None
    marginal_ask: int | None
    filled: I64  # per order: Wh traded
    netted: I64  # per order: Wh withheld by the no-self-trade rule
    trade_buy: I64
    trade_sell: I64
    trade_qty: I64
    trade_value: I64
    trade_fee: I64

    def trades(self) -> list[Trade]:
        price = self.price or 0
        ids, users = self.book.order_id, self.book.user
        return [
            Trade(k, int(ids[b]), int(ids[s]), int(users[b]), int(users[s]), int(q), price, int(v), int(f))
            for k, (b, s, q, v, f) in enumerate(
                zip(
                    self.trade_buy.tolist(),
                    self.trade_sell.tolist(),
                    self.trade_qty.tolist(),
                    self.trade_value.tolist(),
                    self.trade_fee.tolist(),
                    strict=True,
                )
            )
        ]


def trade_value(qty: int, price: int) -> int:
    return qty * price // 1000


def trade_fee(value: int, fee_bps: int) -> int:
    return value * fee_bps // 10_000


def fee_array(value: I64, fee_bps: int) -> I64:
    # floor(value * bps / 10000) without the int64 overflow of value * bps: value = 10000 q + r.
    q, r = np.divmod(value, 10_000)
    fee: I64 = q * fee_bps + r * fee_bps // 10_000
    return fee


def _curve_volume(cb: I64, bp: I64, ca: I64, ap: I64) -> int:
    """Largest v with bid price at unit v >= ask price at unit v (the predicate is monotone in v)."""
    hi = min(int(cb[-1]), int(ca[-1]))

    def crosses(v: int) -> bool:
        return bool(bp[np.searchsorted(cb, v, "left")] >= ap[np.searchsorted(ca, v, "left")])

    if not crosses(1):
        return 0
    lo = 1  # crosses(lo) is true; find the last true in [lo, hi]
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if crosses(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def net_side(fill: I64, users: I64, netting_users: I64, amount: I64) -> None:
    """Remove ``amount[u]`` Wh from ``fill`` (priority order) for each netting user u, lowest priority first."""
    pos = np.flatnonzero(np.isin(users, netting_users))[::-1]  # reverse priority
    grp = np.searchsorted(netting_users, users[pos])
    order = np.argsort(grp, kind="stable")
    pos, grp = pos[order], grp[order]
    f = fill[pos]
    cum = np.cumsum(f)
    starts = np.flatnonzero(np.r_[True, grp[1:] != grp[:-1]])
    base = np.repeat(cum[starts] - f[starts], np.diff(np.r_[starts, grp.size]))
    before = cum - base - f  # Wh of the same user's lower-priority fills already netted
    fill[pos] = f - np.clip(amount[grp] - before, 0, f)


def per_user_sum(users: I64, fill: I64, netting_users: I64) -> I64:
    mask = np.isin(users, netting_users)
    out = np.zeros(netting_users.size, dtype=np.int64)
    np.add.at(out, np.searchsorted(netting_users, users[mask]), fill[mask])
    return out


def clear(book: OrderBook, fee_bps: int) -> ClearingResult:
    """Clear one epoch's order set (rules in the module docstring)."""
    if not 0 <= fee_bps <= MAX_FEE_BPS:
        raise InvalidOrderError(f"fee_bps must be 0..{MAX_FEE_BPS}")
    n = len(book)
    digest = order_set_hash(book)
    filled = np.zeros(n, dtype=np.int64)
    netted = np.zeros(n, dtype=np.int64)
    empty = np.zeros(0, dtype=np.int64)

    is_buy = book.side == Side.BUY
    b_idx = np.flatnonzero(is_buy)
    a_idx = np.flatnonzero(~is_buy)
    nothing = ClearingResult(
        book, digest, fee_bps, 0, 0, None, None, None, filled, netted, empty, empty, empty, empty, empty
    )
    if b_idx.size == 0 or a_idx.size == 0:
        return nothing
    # One int64 sort key per side: price (descending for bids) in the high bits, time rank (< 2**32) in the low.
    rank = book.rank
    b_ord = b_idx[np.argsort(((MAX_PRICE - book.price[b_idx]) << 32) | rank[b_idx])]
    a_ord = a_idx[np.argsort((book.price[a_idx] << 32) | rank[a_idx])]
    bq, aq = book.qty[b_ord], book.qty[a_ord]
    bp, ap = book.price[b_ord], book.price[a_ord]
    cb, ca = np.cumsum(bq), np.cumsum(aq)
    volume = _curve_volume(cb, bp, ca, ap)
    if volume == 0:
        return nothing
    kb = int(np.searchsorted(cb, volume, "left")) + 1  # orders with a fill: the first kb bids
    ka = int(np.searchsorted(ca, volume, "left")) + 1
    pb, pa = int(bp[kb - 1]), int(ap[ka - 1])
    price = (pb + pa) // 2
    b_ord, a_ord = b_ord[:kb], a_ord[:ka]
    fb = np.minimum(bq[:kb], volume - (cb[:kb] - bq[:kb]))
    fa = np.minimum(aq[:ka], volume - (ca[:ka] - aq[:ka]))

    # Rule 5: netting of users filled on both sides.
    ub, ua = book.user[b_ord], book.user[a_ord]
    both = np.intersect1d(ub, ua)
    if both.size:
        amount = np.minimum(per_user_sum(ub, fb, both), per_user_sum(ua, fa, both))
        fb0, fa0 = fb.copy(), fa.copy()
        net_side(fb, ub, both, amount)
        net_side(fa, ua, both, amount)
        netted[b_ord] = fb0 - fb
        netted[a_ord] = fa0 - fa
    filled[b_ord] = fb
    filled[a_ord] = fa

    # Rule 6: pair the k-th traded Wh of each side.
    keep_b, keep_a = fb > 0, fa > 0
    b_ord, fb = b_ord[keep_b], fb[keep_b]
    a_ord, fa = a_ord[keep_a], fa[keep_a]
    if fb.size == 0:
        return ClearingResult(
            book, digest, fee_bps, volume, 0, price, pb, pa, filled, netted, empty, empty, empty, empty, empty
        )
    cb2, ca2 = np.cumsum(fb), np.cumsum(fa)
    ends = np.union1d(cb2, ca2)
    qty = np.diff(ends, prepend=0)
    t_buy = b_ord[np.searchsorted(cb2, ends, "left")]
    t_sell = a_ord[np.searchsorted(ca2, ends, "left")]
    value = qty * price // 1000
    fee = fee_array(value, fee_bps)
    return ClearingResult(
        book, digest, fee_bps, volume, int(cb2[-1]), price, pb, pa, filled, netted, t_buy, t_sell, qty, value, fee
    )
