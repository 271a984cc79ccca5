"""The market's rules on the in-memory store (no PostgreSQL): the pure close plan and the service over the fake.

Properties (Hypothesis): escrow is conserved (what traders escrowed = what settlement paid to sellers + fees +
what buyers received + what stays in escrow, per asset), no balance ever goes negative, and the plan of an epoch
depends only on its order set (any arrival order gives the same plan and the published hash).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from central.market.clearing import order_set_hash
from central.market.epochs import EpochClock
from central.market.errors import ConflictError, EpochClosedError, InsufficientEscrowError, NotFoundError
from central.market.escrow_seeds import Asset
from central.market.memory import TREASURY, InMemoryMarketStore
from central.market.model import BookOrder, EscrowRow, TransferRecord
from central.market.orders import OrderStatus
from central.market.plan import plan_close
from central.market.reconcile import compare
from central.market.service import MarketService
from tests.central.market.market_fixtures import T0, Clock

CLOCK = EpochClock(60)
E0 = CLOCK.at(T0)
E1 = CLOCK.next(E0)


def market(fee_bps: int = 100) -> tuple[InMemoryMarketStore, MarketService, Clock]:
    store = InMemoryMarketStore()
    clock = Clock()
    return store, MarketService(store, CLOCK, fee_bps, now=clock), clock


async def trader(store: InMemoryMarketStore, energy: int = 0, quote: int = 0, *, wallet: bool = True) -> uuid.UUID:
    uid = uuid.uuid4()
    if wallet:
        store.link_wallet(uid, f"wallet-{uid}")
    acc = await store.account_of(uid)
    store.credit(acc, Asset.ENERGY, energy)
    store.credit(acc, Asset.QUOTE, quote)
    return uid


def assert_no_negative(store: InMemoryMarketStore) -> None:
    assert all(b.available >= 0 and b.locked >= 0 for b in store.balances.values())


# ------------------------------------------------------------------------------------------------- examples


async def test_clear_trades_rolls_gtc_expires_epoch_orders_on_the_fake() -> None:
    store, svc, clock = market()
    s1, s2, b1 = (
        await trader(store, energy=10_000),
        await trader(store, energy=10_000),
        await trader(store, quote=10**5),
    )
    o_s1 = await svc.place(s1, "sell", 5000, 1000)
    o_s2 = await svc.place(s2, "sell", 5000, 3000, tif="gtc")
    o_b1 = await svc.place(b1, "buy", 8000, 2000)
    clock.advance(60)
    [e] = await svc.clear_due()
    assert (e.status, e.price, e.volume, e.order_count, e.trade_count) == ("cleared", 1500, 5000, 3, 1)
    assert bytes.fromhex(e.order_set_hash or "") == order_set_hash(await svc.epoch_order_set(e.start))
    orders = {o.id: o for u in (s1, s2, b1) for o in await svc.orders_of(u)}
    assert (orders[o_s1.id].status, orders[o_s1.id].filled) == ("filled", 5000)
    assert (orders[o_s2.id].status, orders[o_s2.id].locked, orders[o_s2.id].epoch_start) == ("open", 5000, E1.start)
    assert (orders[o_b1.id].status, orders[o_b1.id].filled, orders[o_b1.id].locked) == ("expired", 5000, 0)
    acc_b1, acc_s1 = await svc.account_of(b1), await svc.account_of(s1)
    assert store.balance(acc_b1, Asset.QUOTE) == (10**5 - 7500, 7500)  # owed stays locked until settlement
    assert store.balance(acc_s1, Asset.ENERGY) == (5000, 5000)
    assert [(t.qty, t.price, t.value, t.fee) for t in store.trades] == [(5000, 1500, 7500, 75)]
    assert [k for k, _ in store.intents] == ["trade:1"]
    assert await svc.clear_due() == []
    store.confirm_settlements()
    assert await store.apply_settled() == 1
    assert await store.apply_settled() == 0  # idempotent
    assert store.balance(acc_b1, Asset.QUOTE) == (10**5 - 7500, 0)
    assert store.paid == {(acc_s1, Asset.QUOTE): 7425, (TREASURY, Asset.QUOTE): 75, (acc_b1, Asset.ENERGY): 5000}
    assert (await svc.epoch(e.start)).status == "settled"  # type: ignore[union-attr]


async def test_place_cancel_and_refusals_on_the_fake() -> None:
    store, svc, clock = market()
    uid = await trader(store, quote=5000)
    o = await svc.place(uid, "buy", 3000, 1500)
    with pytest.raises(InsufficientEscrowError):
        await svc.place(uid, "buy", 1000, 1000)
    with pytest.raises(ConflictError, match="wallet"):
        await svc.place(await trader(store, wallet=False), "buy", 1, 1)
    with pytest.raises(NotFoundError):
        await svc.cancel(await trader(store), o.id)
    c = await svc.cancel(uid, o.id)
    assert (c.status, c.locked) == ("cancelled", 0)
    with pytest.raises(ConflictError):
        await svc.cancel(uid, o.id)
    o2 = await svc.place(uid, "buy", 1000, 1000, tif="gtc")
    store.epoch_rows[E0.start] = replace(store.epoch_rows[E0.start], status="closed")
    with pytest.raises(EpochClosedError):
        await svc.place(uid, "buy", 1, 1)
    with pytest.raises(EpochClosedError):
        await svc.cancel(uid, o2.id)
    clock.advance(60)
    [e] = await svc.clear_due()  # a closed (not yet cleared) epoch is cleared too
    assert (e.status, e.order_count) == ("settled", 1)  # no trade: settled at once
    assert (await svc.orders_of(uid, open_only=True))[0].epoch_start == E1.start


async def test_one_close_at_a_time_on_the_fake() -> None:
    store, svc, clock = market()
    s, b = await trader(store, energy=10_000), await trader(store, quote=10**5)
    await svc.place(s, "sell", 1000, 100)
    await svc.place(b, "buy", 1000, 100)
    clock.advance(600)  # ten epochs due (each close opens the next)
    results = await asyncio.gather(*(svc.clear_due() for _ in range(4)))
    starts = [e.start for r in results for e in r]
    assert sorted(starts) == [E0.start + timedelta(seconds=60 * i) for i in range(10)]  # each once, oldest first
    assert len(store.trades) == 1


async def test_wallet_less_and_expired_orders_release_their_lock_at_the_close() -> None:
    store, svc, clock = market()
    uid = await trader(store, energy=1000)
    await svc.place(uid, "sell", 1000, 100, tif="gtc", expires_at=T0 + timedelta(seconds=130))
    clock.advance(60)
    await svc.clear_due()
    assert (await svc.orders_of(uid))[0].status == "open"
    clock.advance(60)
    await svc.clear_due()
    [after] = await svc.orders_of(uid)
    assert (after.status, after.locked) == ("expired", 0)
    acc = await svc.account_of(uid)
    assert store.balance(acc, Asset.ENERGY) == (1000, 0)
    o = await svc.place(uid, "sell", 500, 100)
    del store.wallets[uid]  # wallet unlinked before the close: the order cannot trade
    clock.advance(60)
    await svc.clear_due()
    assert (await svc.orders_of(uid))[0].id == o.id
    assert (await svc.orders_of(uid))[0].status == "expired"
    assert store.balance(acc, Asset.ENERGY) == (1000, 0)


# ------------------------------------------------------------------------------------------------- properties

orders_st = st.lists(
    st.tuples(
        st.integers(0, 5),  # trader
        st.sampled_from(["buy", "sell"]),
        st.integers(1, 5000),  # qty
        st.integers(1, 3000),  # price
        st.sampled_from(["epoch", "gtc"]),
        st.booleans(),  # cancel it afterwards
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders=orders_st, epochs=st.integers(1, 3), fee_bps=st.integers(0, 500), funds=st.integers(0, 20_000))
async def test_escrow_is_conserved_and_never_negative(
    orders: list[tuple[int, str, int, int, str, bool]], epochs: int, fee_bps: int, funds: int
) -> None:
    store, svc, clock = market(fee_bps)
    users = [await trader(store, energy=funds, quote=funds * 2) for _ in range(6)]
    escrowed = {Asset.ENERGY: 6 * funds, Asset.QUOTE: 12 * funds}
    for e in range(epochs):
        for who, side, qty, price, tif, cancel in orders[e::epochs]:
            try:
                o = await svc.place(users[who], side, qty, price, tif)
            except InsufficientEscrowError:
                continue
            if cancel and qty % 3 == 0:
                await svc.cancel(users[who], o.id)
            assert_no_negative(store)
        clock.advance(60)
        for summary in await svc.clear_due():
            assert summary.trade_count == sum(t.epoch_start == summary.start for t in store.trades)
        assert_no_negative(store)
        # Every lock is an open order's or owed to a pending trade.
        for (acc, asset), b in store.balances.items():
            orders_lock = sum(
                r.view.locked
                for r in store.orders.values()
                if r.account == acc
                and r.view.status == OrderStatus.OPEN
                and (r.view.side == "sell") == (asset == "energy")
            )
            owed = sum(
                (t.qty if asset == Asset.ENERGY else t.value)
                for t in store.trades
                if t.status == "pending" and (t.seller if asset == Asset.ENERGY else t.buyer) == acc
            )
            assert b.locked == orders_lock + owed
        store.confirm_settlements()
        await store.apply_settled()
        assert_no_negative(store)
    for asset in Asset:
        in_escrow = sum(b.available + b.locked for (_, a), b in store.balances.items() if a == asset)
        paid = sum(v for (_, a), v in store.paid.items() if a == asset)
        assert escrowed[asset] == in_escrow + paid
    fees = store.paid.get((TREASURY, Asset.QUOTE), 0)
    assert fees == sum(t.fee for t in store.trades)
    assert sum(v for (acc, a), v in store.paid.items() if a == Asset.QUOTE and acc != TREASURY) == sum(
        t.value - t.fee for t in store.trades
    )


book_st = st.lists(
    st.builds(
        BookOrder,
        id=st.integers(1, 10**6),
        account=st.integers(1, 6),
        side=st.sampled_from(["buy", "sell"]),
        qty=st.integers(1, 10_000),
        price=st.integers(1, 5000),
        locked=st.just(0),
        tif=st.sampled_from(["epoch", "gtc"]),
        expires_at=st.sampled_from([None, E0.end, E1.end, E0.end - timedelta(seconds=1)]),
        wallet=st.sampled_from(["w", "w", "w", None]),
    ),
    unique_by=lambda o: o.id,
    max_size=60,
)


def with_locks(orders: list[BookOrder]) -> list[BookOrder]:
    return [replace(o, locked=o.qty if o.side == "sell" else o.qty * o.price // 1000) for o in orders]


@settings(max_examples=150, deadline=None)
@given(orders=book_st, fee_bps=st.integers(0, 10_000), seed=st.integers(0, 2**32))
def test_plan_is_deterministic_and_conserves_each_lock(orders: list[BookOrder], fee_bps: int, seed: int) -> None:
    book = with_locks(orders)
    plan = plan_close(E0, E1, book, fee_bps)
    shuffled = book[:]
    random.Random(seed).shuffle(shuffled)
    assert plan_close(E0, E1, shuffled, fee_bps) == plan  # the order set decides, not its arrival order
    ids = [e.order_id for e in plan.entries]
    assert ids == sorted(ids)
    # Locked before = released + owed + kept, per account and asset; nothing negative.
    for asset in Asset:
        for acc in {o.account for o in book}:
            before = sum(o.locked for o in book if o.account == acc and (o.side == "sell") == (asset == "energy"))
            kept = sum(
                c.locked
                for c in plan.changes
                for o in book
                if o.id == c.id and o.account == acc and (o.side == "sell") == (asset == "energy")
            )
            released = sum(m.amount for m in plan.releases if (m.account, m.asset) == (acc, asset))
            owed = sum(m.amount for m in plan.owed if (m.account, m.asset) == (acc, asset))
            assert before == released + owed + kept
    assert all(m.amount > 0 for m in plan.releases + plan.owed)
    # Owed quote = the trades' value = sellers' share + fees; owed energy = Wh traded.
    assert sum(m.amount for m in plan.owed if m.asset == Asset.QUOTE) == sum(t.value for t in plan.trades)
    assert sum(m.amount for m in plan.owed if m.asset == Asset.ENERGY) == sum(t.qty for t in plan.trades) == plan.volume
    assert all(0 <= t.fee <= t.value for t in plan.trades)
    # Only orders with a wallet, valid at the close, take part; every order of the book changes.
    assert {c.id for c in plan.changes} == {o.id for o in book}
    assert all(o.wallet and (o.expires_at is None or o.expires_at >= E0.end) for o in book if o.id in ids)
    assert plan.status == ("cleared" if plan.trades else "settled")


transfers_st = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "withdrawal"]),
        st.integers(1, 1000),
        st.sampled_from(["confirmed", "failed", "expired", None]),  # None: still in flight
        st.booleans(),  # a deposit the wallet never submitted
    ),
    max_size=30,
)


@settings(max_examples=100, deadline=None)
@given(transfers=transfers_st)
async def test_transfers_conserve_escrow_and_never_go_negative(
    transfers: list[tuple[str, int, str | None, bool]],
) -> None:
    store = InMemoryMarketStore()
    uid = uuid.uuid4()
    store.link_wallet(uid, "w")
    wallet, acc = await store.wallet_and_account(uid)
    in_flight: list[uuid.UUID] = []
    net = 0  # confirmed deposits - confirmed withdrawals
    for kind, amount, outcome, unsubmitted in transfers:
        rec = TransferRecord(uuid.uuid4(), acc, Asset.QUOTE, kind, amount, wallet, b"m", 1, None)
        if kind == "deposit":
            await store.record_transfer(rec)
            if not unsubmitted:
                await store.submit_deposit(acc, rec.id, lambda _row: "s")
        else:

            async def build(_a: int, _w: str, rec: TransferRecord = rec) -> TransferRecord:
                return replace(rec, signature="s")

            try:
                await store.start_withdrawal(uid, Asset.QUOTE, amount, build)
            except InsufficientEscrowError:
                continue
        if outcome is None:
            in_flight.append(rec.id)
            continue
        await store.finish_transfer(rec.id, outcome, None)
        await store.finish_transfer(rec.id, "confirmed", None)  # a second outcome is ignored
        sent = kind == "withdrawal" or not unsubmitted
        if outcome == "confirmed" and sent:
            net += amount if kind == "deposit" else -amount
        assert_no_negative(store)
    available, locked = store.balance(acc, Asset.QUOTE)
    pending_withdrawals = sum(
        store.transfers[t].rec.amount for t in in_flight if store.transfers[t].rec.kind == "withdrawal"
    )
    assert locked == pending_withdrawals
    assert available + locked == net


def test_reconciliation_compares_each_row_with_its_on_chain_amount() -> None:
    rows = [EscrowRow(1, "quote", "a", 5, 3), EscrowRow(1, "energy", "b", 0, 0), EscrowRow(2, "quote", "c", 0, 7)]
    report = compare(rows, [8, 1, 7], pending=2)
    assert (report.checked, report.pending, report.ok) == (3, 2, False)
    assert [(m.account, m.asset, m.on_chain, m.available, m.locked) for m in report.mismatches] == [
        (1, "energy", 1, 0, 0)
    ]
    assert compare(rows, [8, 0, 7]).ok
