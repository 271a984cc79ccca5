"""Zonal clearing for one epoch: a hierarchy of uniform-price call auctions over the zone tree, then the utility as
the outside option. Pure (no I/O), vectorised with numpy, integer-only, deterministic
(docs/decisions/0017-zonal-clearing.md says why this method).

Inputs: the epoch's order book (``central.market.clearing.OrderBook``), each order's zone (an index into
``ZoneParams``, the tree with this epoch's fees, losses and utility prices) and the platform fee in bps.

**Markets.** Every zone has one market. Markets are cleared bottom-up, one tree depth at a time (deepest first): the
market of zone ``m`` holds the orders of meters in ``m`` and what is left of the orders of ``m``'s child markets
after those cleared (the *residual*, forwarded across the child's boundary). With one zone this is exactly
``central.market.clearing.clear`` (same trades, same prices, same fees).

**An order in market m.** An order from zone ``z`` has a *path* to ``m``: the boundaries between them. ``Λ``, ``F``,
``P`` are the path's sums of ``loss_bps``, ``fee_per_kwh`` and ``fee_bps``. The market trades *m-Wh* (energy at
``m``'s level). With ``q`` the order's remaining Wh and ``a``/``b`` its limit (``B = 10000``):

- a sell offers ``floor(q (B - Λ) / B)`` m-Wh (what its Wh deliver at ``m``) at the *effective* price
  ``ceil((a B² + F B (B - Λ)) / ((B - Λ)(B - P)))`` — the least m-price at which it still earns ``a`` per Wh sent
  after its side's grid fees;
- a buy asks for ``floor(q B / (B - Λ))`` m-Wh at the effective price ``floor((b (B - Λ) - F B) / (B + P))`` — the
  most m-price at which what it pays, grid fees included, stays within ``b`` per Wh delivered.
An order with nothing to offer there (0 m-Wh, a buy's effective price < 1, a sell's above ``MAX_PRICE``) leaves the
hierarchy (it can still meet the utility). Local orders (empty path) keep their own quantity and price.

**Clearing a market.** The rules of ``central.market.clearing`` (priority by effective price then time, curve
volume, midpoint price of the marginal effective bid and ask, rationing by time, no self-trade by netting, pairing Wh
by Wh) applied to the effective quantities and prices: one uniform price ``p_m`` per market.

**A trade of x m-Wh in market m** between a sell with path (Λs, Fs, Ps) and a buy with path (Λb, Fb, Pb):

- ``value = floor(x p_m / 1000)``;
- grid fee paid by the seller ``gs = floor(Fs x / 1000) + floor(value Ps / B)``, by the buyer
  ``gb = floor(Fb x / 1000) + floor(value Pb / B)`` (each side pays the boundaries on its side of the market);
- platform fee ``fee = min(floor(value fee_bps / B), value - gs)`` (paid by the seller, as in a single zone);
- the buyer pays ``value + gb``, the seller receives ``value - gs - fee``, the grid operator ``gs + gb``, the
  treasury ``fee``: **money is conserved to the base unit**;
- energy, rounded per order *cumulatively* over its trades in the market (``X`` = the order's m-Wh so far, the trade's
  amount is the difference of the rounded cumulative values, so rounding never accumulates): the seller sends
  ``ceil(X B / (B - Λs))`` Wh, the buyer receives ``ceil(X (B - Λb) / B)`` Wh; the difference is the trade's
  **loss** (≥ 0), which goes to the grid operator. **Energy is conserved**: sent = delivered + loss.
A sell's Wh sent never exceed its remaining quantity and a buy's payments never exceed ``floor(delivered b / 1000)``
(so its escrow lock always covers them); a seller's earning per Wh sent is at least its limit up to rounding of one
base unit per trade.

**Utility (outside option).** After the root market, every order with Wh left whose limit accepts its zone's utility
price trades the rest with the utility (within the utility's capacity for the epoch, ``ZoneParams.utility_energy``
Wh to sell and ``utility_quote`` to pay, taken in time priority; -1 = unlimited): a buy with ``b >= retail`` buys at
``retail``, a sell with ``a <= feed_in`` sells at ``feed_in`` (no grid fee — the tariff includes the network —, no
loss, no platform fee; ``value = floor(q price / 1000)``). Utility trades come after all peer trades, in time
priority; their counterparty index is -1.

**Order-set hash** (``ZonalResult.order_set_hash``): SHA-256 of ``b"GTX-ORDERSET-Z1\\n"`` ‖ u32 length ‖
``ZoneParams.encode()`` ‖ u64 count ‖ one 37-byte record per order sorted by order id: u64 order_id ‖ u64 user ‖
u8 side ‖ u64 qty ‖ u64 price ‖ u32 zone (little-endian). The published set (orders with zones, and the zone
parameters) is all anyone needs, with ``fee_bps``, to recompute every trade.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from central.market.clearing import I64, MAX_PRICE, OrderBook, Side, net_side, per_user_sum
from central.market.errors import InvalidOrderError
from central.market.zones import ROOT, ZoneParams

B: Final = 10_000
ORDER_SET_MAGIC: Final = b"GTX-ORDERSET-Z1\n"
UTILITY: Final = -1  # counterparty index of utility trades
_RECORD = np.dtype(
    [("order_id", "<u8"), ("user", "<u8"), ("side", "u1"), ("qty", "<u8"), ("price", "<u8"), ("zone", "<u4")]
)


def encode_zonal_order_set(book: OrderBook, zone: I64, params: ZoneParams) -> bytes:
    order = book.id_order
    rec = np.empty(len(book), dtype=_RECORD)
    for name, col in (
        ("order_id", book.order_id),
        ("user", book.user),
        ("side", book.side),
        ("qty", book.qty),
        ("price", book.price),
        ("zone", zone),
    ):
        rec[name] = col[order]
    p = params.encode()
    return ORDER_SET_MAGIC + struct.pack("<I", len(p)) + p + len(book).to_bytes(8, "little") + rec.tobytes()


def decode_zonal_order_set(data: bytes) -> tuple[OrderBook, I64, ZoneParams]:
    """The order book, zones and zone parameters of a published order set (inverse of the encoding)."""
    head = len(ORDER_SET_MAGIC)
    if data[:head] != ORDER_SET_MAGIC or len(data) < head + 4:
        raise InvalidOrderError("not a zonal order set")
    (plen,) = struct.unpack_from("<I", data, head)
    params = ZoneParams.decode(data[head + 4 : head + 4 + plen])
    off = head + 4 + plen
    count = int.from_bytes(data[off : off + 8], "little")
    body = data[off + 8 :]
    if len(body) != count * _RECORD.itemsize:
        raise InvalidOrderError("order set length does not match its count")
    rec = np.frombuffer(body, dtype=_RECORD)
    book = OrderBook.from_arrays(
        order_id=rec["order_id"], user=rec["user"], side=rec["side"], qty=rec["qty"], price=rec["price"]
    )
    return book, rec["zone"].astype(np.int64), params


def zonal_order_set_hash(book: OrderBook, zone: I64, params: ZoneParams) -> bytes:
    return hashlib.sha256(encode_zonal_order_set(book, zone, params)).digest()


@dataclass(frozen=True, eq=False)
class ZonalResult:
    """Outcome of one zonal clearing. Per-order arrays align with the book, per-zone arrays with ``params.zones``;
    trade arrays hold book indices (-1 = the utility)."""

    book: OrderBook
    zone: I64
    params: ZoneParams
    order_set_hash: bytes
    fee_bps: int
    zone_price: I64  # per zone: the market's uniform price, -1 when it traded nothing
    zone_volume: I64  # per zone: m-Wh traded in the zone's market
    filled: I64  # per order: Wh sold (sent) or bought (delivered), utility included
    netted: I64  # per order: m-Wh withheld by the no-self-trade rule (summed over markets)
    utility_filled: I64  # per order: the part of ``filled`` traded with the utility
    trade_buy: I64
    trade_sell: I64
    trade_market: I64  # zone whose market cleared the trade (utility trades: the order's zone)
    trade_price: I64
    trade_qty: I64  # m-Wh
    trade_sent: I64  # Wh out of the seller's escrow
    trade_delivered: I64  # Wh to the buyer
    trade_value: I64
    trade_grid_fee_seller: I64
    trade_grid_fee_buyer: I64
    trade_fee: I64

    @property
    def trade_loss(self) -> I64:
        loss: I64 = self.trade_sent - self.trade_delivered
        return loss

    @property
    def trade_grid_fee(self) -> I64:
        fee: I64 = self.trade_grid_fee_seller + self.trade_grid_fee_buyer
        return fee

    @property
    def buyer_pays(self) -> I64:
        paid: I64 = self.trade_value + self.trade_grid_fee_buyer
        return paid

    @property
    def seller_receives(self) -> I64:
        got: I64 = self.trade_value - self.trade_grid_fee_seller - self.trade_fee
        return got

    @property
    def is_utility(self) -> npt.NDArray[np.bool_]:
        u: npt.NDArray[np.bool_] = (self.trade_buy == UTILITY) | (self.trade_sell == UTILITY)
        return u

    @property
    def volume(self) -> int:
        return int(self.trade_delivered.sum())


def _frac(value: I64, bps: I64 | int) -> I64:
    """floor(value * bps / 10000) without int64 overflow."""
    q, r = np.divmod(value, B)
    out: I64 = (q * bps + r * bps // B).astype(np.int64, copy=False)
    return out


def _ceil_div(a: I64, b: I64 | int) -> I64:
    out: I64 = -((-a) // b)
    return out


def _group_cum(x: I64, start: npt.NDArray[np.bool_]) -> I64:
    """Running sum of ``x`` restarting where ``start`` is true."""
    c = np.cumsum(x)
    first = np.maximum.accumulate(np.where(start, np.arange(x.size), 0))
    out: I64 = c - (c - x)[first]
    return out


def _group_diff(cum: I64, start: npt.NDArray[np.bool_]) -> I64:
    prev = np.r_[np.int64(0), cum[:-1]]
    prev[start] = 0
    out: I64 = cum - prev
    return out


def _dedupe_sorted(s: I64) -> I64:
    out: I64 = s[np.r_[True, s[1:] != s[:-1]]] if s.size else s
    return out


def _merge_unique(a: I64, b: I64) -> I64:
    """Sorted union of two sorted arrays (a stable sort merges the two runs in linear time)."""
    c = np.concatenate((a, b))
    c.sort(kind="stable")
    return _dedupe_sorted(c)


def _intersect(a: I64, b: I64) -> I64:
    """Sorted values present in both arrays."""
    c = np.concatenate((_dedupe_sorted(np.sort(a)), _dedupe_sorted(np.sort(b))))
    c.sort(kind="stable")
    out: I64 = c[:-1][c[1:] == c[:-1]]
    return out


def _segments(market: I64, n_zones: int) -> tuple[I64, I64]:
    """First and end positions of each zone's run in a market-sorted array."""
    ks = np.arange(n_zones)
    lo: I64 = np.searchsorted(market, ks, "left").astype(np.int64)
    hi: I64 = np.searchsorted(market, ks, "right").astype(np.int64)
    return lo, hi


@dataclass
class _Acc:
    """Trades and per-order sums accumulated over the passes."""

    chunks: list[tuple[I64, ...]]
    filled: I64
    netted: I64
    zone_price: I64
    zone_volume: I64


class _Pass:
    """One depth level: every market at that depth cleared at once (markets are contiguous runs after sorting)."""

    def __init__(self, book: OrderBook, n_zones: int, acc: _Acc, fee_bps: int) -> None:
        self.book, self.n_zones, self.acc, self.fee_bps = book, n_zones, acc, fee_bps

    def side(self, pos: I64, mkt: I64, pm: I64, *, buy: bool) -> I64:
        key = ((MAX_PRICE - pm) << 32) if buy else (pm << 32)
        key |= self.book.rank[pos]
        o = np.argsort(key)
        o2 = np.argsort(mkt[o].astype(np.int16), kind="stable")  # radix sort: markets, priority kept within
        out: I64 = o[o2].astype(np.int64, copy=False)
        return out

    def run(self, idx: I64, mkt: I64, lam: I64, fee: I64, pct: I64, rem: I64) -> npt.NDArray[np.bool_]:
        """Clear the entries; returns which entries may go on (they offered something here)."""
        book = self.book
        buy = book.side[idx] == Side.BUY
        qm, pm = rem.copy(), book.price[idx]
        pth = np.flatnonzero(lam | fee | pct)  # entries forwarded from below (the others keep qty and limit)
        if pth.size:
            lim, lp, fp, cp, bp = pm[pth], lam[pth], fee[pth], pct[pth], buy[pth]
            r = rem[pth]
            qm[pth] = np.where(bp, r * B // (B - lp), r * (B - lp) // B)
            pm[pth] = np.where(
                bp,
                (lim * (B - lp) - fp * B) // (B + cp),
                _ceil_div(lim * (B * B) + fp * B * (B - lp), (B - lp) * (B - cp)),
            )
        ok = (qm >= 1) & (pm >= 1) & (pm <= MAX_PRICE)
        live = ok
        if pth.size:
            # An entry that cannot cross anything in its market (a buy below every sell there, or the reverse)
            # neither fills nor sets the price: leave it out of the sort.
            z = self.n_zones
            lo_ask = np.full(z, MAX_PRICE + 1, dtype=np.int64)
            hi_bid = np.zeros(z, dtype=np.int64)
            np.minimum.at(lo_ask, mkt[ok & ~buy], pm[ok & ~buy])
            np.maximum.at(hi_bid, mkt[ok & buy], pm[ok & buy])
            live = ok & np.where(buy, pm >= lo_ask[mkt], pm <= hi_bid[mkt])
        e_b = np.flatnonzero(live & buy)
        e_a = np.flatnonzero(live & ~buy)
        if e_b.size == 0 or e_a.size == 0:
            return ok
        e_b = e_b[self.side(idx[e_b], mkt[e_b], pm[e_b], buy=True)]
        e_a = e_a[self.side(idx[e_a], mkt[e_a], pm[e_a], buy=False)]
        mb, ma = mkt[e_b], mkt[e_a]
        qb, qa = qm[e_b], qm[e_a]
        cb, ca = np.cumsum(qb), np.cumsum(qa)
        cleared = self._volumes(mb, ma, cb, ca, pm[e_b], pm[e_a])
        if cleared is None:
            return ok
        vol, price, sb, sa = cleared
        fb = np.clip(vol[mb] - (cb - qb - sb[mb]), 0, qb)
        fa = np.clip(vol[ma] - (ca - qa - sa[ma]), 0, qa)
        self._net(idx, mb, ma, e_b, e_a, fb, fa)
        keep_b, keep_a = np.flatnonzero(fb), np.flatnonzero(fa)
        if keep_b.size:
            self._trades(idx, mkt, lam, fee, pct, price, e_b[keep_b], e_a[keep_a], fb[keep_b], fa[keep_a])
        return ok

    def _volumes(self, mb: I64, ma: I64, cb: I64, ca: I64, bp: I64, ap: I64) -> tuple[I64, I64, I64, I64] | None:
        """Each market's curve volume and price (rules 2 and 3), and the Wh before each market's run per side."""
        z = self.n_zones
        lo_b, hi_b = _segments(mb, z)
        lo_a, hi_a = _segments(ma, z)
        cb0 = np.r_[np.int64(0), cb]
        ca0 = np.r_[np.int64(0), ca]
        sb, sa = cb0[lo_b], ca0[lo_a]  # Wh before each market's run
        tot = np.minimum(cb0[hi_b] - sb, ca0[hi_a] - sa)
        ks = np.flatnonzero(tot > 0)
        if ks.size == 0:
            return None
        sbk, sak = sb[ks], sa[ks]

        def crosses(v: I64) -> npt.NDArray[np.bool_]:
            c: npt.NDArray[np.bool_] = bp[np.searchsorted(cb, sbk + v)] >= ap[np.searchsorted(ca, sak + v)]
            return c

        ones = np.ones(ks.size, dtype=np.int64)
        c1 = crosses(ones)
        lo = np.where(c1, 1, 0).astype(np.int64)
        hi = np.where(c1, tot[ks], 0).astype(np.int64)
        while True:
            act = lo < hi
            if not act.any():
                break
            mid = np.where(act, (lo + hi + 1) // 2, np.maximum(lo, 1))
            c = crosses(mid)
            lo = np.where(act & c, mid, lo)
            hi = np.where(act & ~c, mid - 1, hi)
        vol = np.zeros(z, dtype=np.int64)
        vol[ks] = lo
        kv = ks[lo > 0]
        if kv.size == 0:
            return None
        pb = bp[np.searchsorted(cb, sb[kv] + vol[kv], "left")]
        pa = ap[np.searchsorted(ca, sa[kv] + vol[kv], "left")]
        price = np.full(z, -1, dtype=np.int64)
        price[kv] = (pb + pa) // 2
        self.acc.zone_price[kv] = price[kv]
        return vol, price, sb, sa

    def _net(self, idx: I64, mb: I64, ma: I64, e_b: I64, e_a: I64, fb: I64, fa: I64) -> None:
        """No self-trade (rule 5): net users filled on both sides of the same market (key = market, user)."""
        z = self.n_zones
        users = self.book.user[idx]
        kb_pos, ka_pos = np.flatnonzero(fb), np.flatnonzero(fa)
        ub_all, ua_all = users[e_b[kb_pos]], users[e_a[ka_pos]]
        top = max(int(ub_all.max(initial=0)), int(ua_all.max(initial=0))) + 1
        if top < 2**62 // z:  # account numbers are small: (market, user) fits one int64
            keys_b, keys_a = mb[kb_pos] * top + ub_all, ma[ka_pos] * top + ua_all
        else:
            _, inv = np.unique(np.r_[ub_all, ua_all], return_inverse=True)
            n_u = int(inv.max()) + 1
            keys_b = mb[kb_pos] * n_u + inv[: kb_pos.size]
            keys_a = ma[ka_pos] * n_u + inv[kb_pos.size :]
        both = _intersect(keys_b, keys_a)
        acc = self.acc
        if both.size:
            f_b, f_a = fb[kb_pos], fa[ka_pos]
            amount = np.minimum(per_user_sum(keys_b, f_b, both), per_user_sum(keys_a, f_a, both))
            g_b, g_a = f_b.copy(), f_a.copy()
            net_side(g_b, keys_b, both, amount)
            net_side(g_a, keys_a, both, amount)
            acc.netted[idx[e_b[kb_pos]]] += f_b - g_b
            acc.netted[idx[e_a[ka_pos]]] += f_a - g_a
            fb[kb_pos], fa[ka_pos] = g_b, g_a

    def _trades(
        self, idx: I64, mkt: I64, lam: I64, fee: I64, pct: I64, price: I64, e_b: I64, e_a: I64, fb: I64, fa: I64
    ) -> None:
        """Pair the fills Wh by Wh (rule 6) and work out each trade's money and energy."""
        z, acc = self.n_zones, self.acc
        cb2, ca2 = np.cumsum(fb), np.cumsum(fa)
        ends = _merge_unique(cb2, ca2)
        x = np.diff(ends, prepend=0)
        tb = np.searchsorted(cb2, ends, "left")
        ta = np.searchsorted(ca2, ends, "left")
        eb, ea = e_b[tb], e_a[ta]  # entries of each trade
        market = mkt[eb]
        p = price[market]
        value = x * p // 1000
        lb, la = lam[eb], lam[ea]
        gs = fee[ea] * x // 1000 + _frac(value, pct[ea])
        gb = fee[eb] * x // 1000 + _frac(value, pct[eb])
        pf = np.minimum(_frac(value, self.fee_bps), value - gs)
        start_b = np.r_[True, tb[1:] != tb[:-1]]
        start_a = np.r_[True, ta[1:] != ta[:-1]]
        xb, xa = _group_cum(x, start_b), _group_cum(x, start_a)
        got_cum = _ceil_div(xb * (B - lb), B)
        sent_cum = _ceil_div(xa * B, B - la)
        delivered = _group_diff(got_cum, start_b)
        sent = _group_diff(sent_cum, start_a)
        # Per-order totals: the cumulative value at each order's last trade (orders are contiguous runs).
        last_b = np.r_[start_b[1:], True]
        last_a = np.r_[start_a[1:], True]
        acc.filled[idx[eb[last_b]]] += got_cum[last_b]
        acc.filled[idx[ea[last_a]]] += sent_cum[last_a]
        m_lo, m_hi = _segments(market, z)
        cx = np.r_[np.int64(0), np.cumsum(x)]
        traded = cx[m_hi] - cx[m_lo]
        acc.zone_volume += traded
        acc.chunks.append((idx[eb], idx[ea], market, p, x, sent, delivered, value, gs, gb, pf))


def _utility_take(rem: I64, buy: npt.NDArray[np.bool_], price: I64, params: ZoneParams) -> I64:
    """What the utility takes of each order (time priority) within its capacity: Wh it can sell to buyers, quote
    it can pay sellers (the order at the margin is filled partly, later ones not at all)."""
    take = rem.copy()
    if params.utility_energy >= 0:
        r = rem[buy]
        before = np.cumsum(r) - r
        take[buy] = np.clip(params.utility_energy - before, 0, r)
    if params.utility_quote >= 0:
        sell = ~buy
        r, p = rem[sell], price[sell]
        full = r * p // 1000
        left = params.utility_quote - (np.cumsum(full) - full)
        # The most Wh q with floor(q p / 1000) <= left is ((left + 1) 1000 - 1) // p.
        take[sell] = np.where(full <= left, r, np.clip(((left + 1) * 1000 - 1) // p, 0, r))
    return take


def _utility(book: OrderBook, zarr: I64, params: ZoneParams, acc: _Acc) -> I64:
    """The utility stage: the rest of every order whose limit accepts its zone's tariff (within the capacity)."""
    zs = params.zones
    rem = book.qty - acc.filled
    retail = np.array([z.retail for z in zs], dtype=np.int64)[zarr]
    feed_in = np.array([z.feed_in for z in zs], dtype=np.int64)[zarr]
    is_buy = book.side == Side.BUY
    accepts = np.where(is_buy, (retail > 0) & (book.price >= retail), (feed_in > 0) & (book.price <= feed_in))
    u_mask = (rem > 0) & accepts
    u_idx = book.id_order[u_mask[book.id_order]]
    u_buy = is_buy[u_idx]
    u_price = np.where(u_buy, retail[u_idx], feed_in[u_idx])
    u_rem = _utility_take(rem[u_idx], u_buy, u_price, params)
    some = u_rem > 0
    u_idx, u_buy, u_price, u_rem = u_idx[some], u_buy[some], u_price[some], u_rem[some]
    u_zero = np.zeros(u_idx.size, dtype=np.int64)
    utility_filled = np.zeros(len(book), dtype=np.int64)
    utility_filled[u_idx] = u_rem
    acc.filled[u_idx] += u_rem
    acc.chunks.append(
        (
            np.where(u_buy, u_idx, UTILITY),
            np.where(u_buy, UTILITY, u_idx),
            zarr[u_idx],
            u_price,
            u_rem,
            u_rem,
            u_rem,
            u_rem * u_price // 1000,
            u_zero,
            u_zero,
            u_zero,
        )
    )
    return utility_filled


def clear_zonal(book: OrderBook, zone: npt.ArrayLike, params: ZoneParams, fee_bps: int) -> ZonalResult:
    """Clear one epoch over the zone tree (rules in the module docstring)."""
    if not 0 <= fee_bps <= B:
        raise InvalidOrderError(f"fee_bps must be 0..{B}")
    zarr = np.ascontiguousarray(np.asarray(zone), dtype=np.int64)
    n, n_z = len(book), len(params)
    if zarr.shape != (n,):
        raise InvalidOrderError("one zone per order")
    if n and (int(zarr.min()) < 0 or int(zarr.max()) >= n_z):
        raise InvalidOrderError(f"zones must be 0..{n_z - 1}")
    digest = zonal_order_set_hash(book, zarr, params)
    zs = params.zones
    depth = np.array(params.depth, dtype=np.int64)
    parent = np.array([z.parent for z in zs], dtype=np.int64)
    b_fee = np.array([z.boundary.fee_per_kwh for z in zs], dtype=np.int64)
    b_bps = np.array([z.boundary.fee_bps for z in zs], dtype=np.int64)
    b_loss = np.array([z.boundary.loss_bps for z in zs], dtype=np.int64)
    acc = _Acc([], np.zeros(n, np.int64), np.zeros(n, np.int64), np.full(n_z, -1, np.int64), np.zeros(n_z, np.int64))
    runner = _Pass(book, n_z, acc, fee_bps)
    odepth = depth[zarr]
    empty = np.zeros(0, dtype=np.int64)
    c_idx, c_mkt, c_lam, c_fee, c_pct = empty, empty, empty, empty, empty
    for d in range(int(depth.max()), -1, -1):
        fresh = np.flatnonzero(odepth == d)
        zeros = np.zeros(fresh.size, dtype=np.int64)
        idx = np.r_[c_idx, fresh]
        mkt = np.r_[c_mkt, zarr[fresh]]
        lam, fee, pct = np.r_[c_lam, zeros], np.r_[c_fee, zeros], np.r_[c_pct, zeros]
        if idx.size == 0:
            continue
        ok = runner.run(idx, mkt, lam, fee, pct, book.qty[idx] - acc.filled[idx])
        go = ok & (book.qty[idx] > acc.filled[idx]) & (parent[mkt] != ROOT)
        c = mkt[go]
        c_idx, c_mkt = idx[go], parent[c]
        c_lam, c_fee, c_pct = lam[go] + b_loss[c], fee[go] + b_fee[c], pct[go] + b_bps[c]

    utility_filled = _utility(book, zarr, params, acc)
    cols = [np.concatenate([ch[i] for ch in acc.chunks]).astype(np.int64, copy=False) for i in range(11)]
    return ZonalResult(
        book,
        zarr,
        params,
        digest,
        fee_bps,
        acc.zone_price,
        acc.zone_volume,
        acc.filled,
        acc.netted,
        utility_filled,
        *cols,
    )
