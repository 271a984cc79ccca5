"""Orders, locks, epochs and the clearer on real PostgreSQL (no chain: escrow credited directly)."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta

import asyncpg
import pytest
from solders.keypair import Keypair

from central.market.book import MarketBook, OrderView, epoch_lock_key
from central.market.clearing import order_set_hash
from central.market.epochs import EpochClock
from central.market.errors import (
    ConflictError,
    EpochClosedError,
    InsufficientEscrowError,
    InvalidOrderError,
    NotFoundError,
)
from central.market.escrow_seeds import EscrowAddresses
from central.market.model import PlaceOutcome
from tests.central.market.market_fixtures import T0, Clock, make_user


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def book(pool: asyncpg.Pool, clock: Clock) -> MarketBook:
    return MarketBook(pool, EpochClock(60), fee_bps=100, addresses=EscrowAddresses(Keypair().pubkey()), now=clock)


async def trader(pool: asyncpg.Pool, book: MarketBook, energy: int = 0, quote: int = 0) -> uuid.UUID:
    uid = await make_user(pool, wallet=Keypair())
    acc = await book.account_of(uid)
    await pool.execute(
        "UPDATE escrow_balances SET available = CASE asset WHEN 'energy' THEN $2::bigint ELSE $3::bigint END "
        "WHERE account = $1",
        acc,
        energy,
        quote,
    )
    return uid


async def balances(pool: asyncpg.Pool, book: MarketBook, uid: uuid.UUID) -> dict[str, tuple[int, int]]:
    acc = await book.account_of(uid)
    rows = await pool.fetch("SELECT asset, available, locked FROM escrow_balances WHERE account = $1", acc)
    return {r["asset"]: (r["available"], r["locked"]) for r in rows}


async def test_place_locks_and_cancel_unlocks(pool: asyncpg.Pool, book: MarketBook) -> None:
    seller = await trader(pool, book, energy=10_000)
    buyer = await trader(pool, book, quote=5_000)
    s = await book.place(seller, "sell", 4000, 900)
    b = await book.place(buyer, "buy", 3000, 1500)
    assert (s.locked, b.locked) == (4000, 4500)  # buy lock = floor(3000 * 1500 / 1000)
    assert (await balances(pool, book, seller))["energy"] == (6000, 4000)
    assert (await balances(pool, book, buyer))["quote"] == (500, 4500)
    depth = await book.depth()
    assert depth["bids"] == [{"price": 1500, "qty": 3000, "orders": 1}]
    assert depth["asks"] == [{"price": 900, "qty": 4000, "orders": 1}]
    c = await book.cancel(buyer, b.id)
    assert (c.status, c.locked) == ("cancelled", 0)
    assert (await balances(pool, book, buyer))["quote"] == (5000, 0)
    with pytest.raises(ConflictError):
        await book.cancel(buyer, b.id)
    with pytest.raises(NotFoundError):
        await book.cancel(seller, b.id)  # not theirs


async def test_validation_and_insufficient_escrow(pool: asyncpg.Pool, book: MarketBook) -> None:
    uid = await trader(pool, book, energy=100, quote=100)
    with pytest.raises(InsufficientEscrowError):
        await book.place(uid, "sell", 101, 10)
    with pytest.raises(InsufficientEscrowError):
        await book.place(uid, "buy", 1000, 101)  # needs 101
    for bad in [("sell", 0, 10), ("buy", 10, 0), ("hold", 10, 10)]:
        with pytest.raises(InvalidOrderError):
            await book.place(uid, *bad)
    with pytest.raises(InvalidOrderError):
        await book.place(uid, "buy", 10, 10, tif="forever")
    nowallet = await make_user(pool)
    with pytest.raises(ConflictError, match="wallet"):
        await book.place(nowallet, "buy", 10, 10)
    assert (await balances(pool, book, uid)) == {"energy": (100, 0), "quote": (100, 0)}


async def test_first_order_of_a_new_trader_creates_the_account_then_checks_escrow(
    pool: asyncpg.Pool, book: MarketBook
) -> None:
    uid = await make_user(pool, wallet=Keypair())  # wallet linked, no market account yet
    with pytest.raises(InsufficientEscrowError):
        await book.place(uid, "buy", 1000, 1000)  # locks 1000 quote units it does not have
    assert await balances(pool, book, uid) == {"energy": (0, 0), "quote": (0, 0)}
    assert await pool.fetchval("SELECT count(*) FROM orders") == 0


async def test_clear_trades_rolls_gtc_expires_epoch_orders(pool: asyncpg.Pool, book: MarketBook, clock: Clock) -> None:
    s1 = await trader(pool, book, energy=10_000)
    s2 = await trader(pool, book, energy=10_000)
    b1 = await trader(pool, book, quote=100_000)
    o_s1 = await book.place(s1, "sell", 5000, 1000)
    o_s2 = await book.place(s2, "sell", 5000, 3000, tif="gtc")  # does not cross: rolls over
    o_b1 = await book.place(b1, "buy", 8000, 2000)  # long side: 5000 fill, 3000 expire
    clock.advance(60)
    [e] = await book.clear_due()
    assert (e.status, e.price, e.volume, e.order_count, e.trade_count) == ("cleared", 1500, 5000, 3, 1)
    assert bytes.fromhex(e.order_set_hash or "") == order_set_hash(await book.epoch_order_set(e.start))
    orders = {o.id: o for u in (s1, s2, b1) for o in await book.orders_of(u)}
    assert (orders[o_s1.id].status, orders[o_s1.id].filled, orders[o_s1.id].locked) == ("filled", 5000, 0)
    assert (orders[o_s2.id].status, orders[o_s2.id].locked) == ("open", 5000)
    assert orders[o_s2.id].epoch_start == T0 + (clock.t - T0)  # rolled into the next epoch
    assert (orders[o_b1.id].status, orders[o_b1.id].filled, orders[o_b1.id].locked) == ("expired", 5000, 0)
    # Buyer: locked 16000; owes value 5000 * 1500 / 1000 = 7500 (still locked until settlement), 8500 released.
    assert (await balances(pool, book, b1))["quote"] == (100_000 - 7500, 7500)
    assert (await balances(pool, book, s1))["energy"] == (5000, 5000)  # sold 5000 stays locked until settlement
    trades = await pool.fetch("SELECT * FROM trades")
    assert [(t["qty"], t["price"], t["value"], t["fee"]) for t in trades] == [(5000, 1500, 7500, 75)]
    assert await book.clear_due() == []  # nothing due any more


async def test_order_placed_after_close_goes_to_next_epoch_and_closed_epoch_refuses_cancel(
    pool: asyncpg.Pool, book: MarketBook, clock: Clock
) -> None:
    uid = await trader(pool, book, energy=10_000)
    o = await book.place(uid, "sell", 100, 100, tif="gtc")
    clock.advance(60)  # epoch over, not cleared yet: a new order lands in the new epoch
    o2 = await book.place(uid, "sell", 100, 100)
    assert o2.epoch_start == o.epoch_start + (clock.t - T0)
    await pool.execute("UPDATE epochs SET status = 'closed' WHERE start_at = $1", o2.epoch_start)
    with pytest.raises(EpochClosedError):
        await book.place(uid, "sell", 100, 100)
    with pytest.raises(EpochClosedError):
        await book.cancel(uid, o2.id)


async def test_gtc_expiry(pool: asyncpg.Pool, book: MarketBook, clock: Clock) -> None:
    uid = await trader(pool, book, energy=1000)
    await book.place(uid, "sell", 1000, 100, tif="gtc", expires_at=T0 + timedelta(seconds=130))
    clock.advance(60)
    await book.clear_due()  # valid at the close at 60 s and at the next one (120 s): rolls over
    assert (await book.orders_of(uid))[0].status == "open"
    clock.advance(60)
    await book.clear_due()  # not valid at the close at 180 s: expires now, lock released
    [after] = await book.orders_of(uid)
    assert (after.status, after.locked) == ("expired", 0)
    assert (await balances(pool, book, uid))["energy"] == (1000, 0)
    with pytest.raises(InvalidOrderError):
        await book.place(uid, "sell", 1, 1, expires_at=clock.t + timedelta(hours=1))


async def test_one_clearer_at_a_time(pool: asyncpg.Pool, book: MarketBook, clock: Clock) -> None:
    seller = await trader(pool, book, energy=10_000)
    buyer = await trader(pool, book, quote=100_000)
    await book.place(seller, "sell", 1000, 100)
    await book.place(buyer, "buy", 1000, 100)
    clock.advance(60)
    results = await asyncio.gather(*(book.clear_due() for _ in range(4)))
    assert sum(len(r) for r in results) == 1
    assert await pool.fetchval("SELECT count(*) FROM trades") == 1


async def test_orders_racing_the_clearer_are_either_cleared_or_refused(
    pool: asyncpg.Pool, book: MarketBook, clock: Clock
) -> None:
    users = [await trader(pool, book, energy=10**9, quote=10**12) for _ in range(6)]
    clock.advance(59)
    e0 = book.clock.at(clock.t)
    outcomes: list[OrderView | Exception] = []

    delays = random.Random(3)

    async def place(i: int) -> None:
        await asyncio.sleep(delays.random() * 0.06)
        try:
            outcomes.append(await book.place(users[i % 6], "buy" if i % 2 else "sell", 100 + i, 100 + i % 7))
        except EpochClosedError as e:
            outcomes.append(e)

    async def close_midway() -> None:
        await asyncio.sleep(0.02)
        clock.advance(1)
        await book.clear_due()

    await asyncio.gather(*(place(i) for i in range(60)), close_midway())
    placed_e0 = {o.id for o in outcomes if not isinstance(o, Exception) and o.epoch_start == e0.start}
    cleared = {
        r["order_id"] for r in await pool.fetch("SELECT order_id FROM epoch_orders WHERE epoch_start = $1", e0.start)
    }
    assert placed_e0 == cleared  # nothing slipped in after the close, nothing placed before it was left out
    assert await pool.fetchval("SELECT count(*) FROM orders WHERE epoch_start = $1 AND status = 'open'", e0.start) == 0
    # Locks: every open order's lock plus what trades owe equals the escrow locked, per user and asset.
    rows = await pool.fetch(
        "SELECT b.account, b.asset, b.locked, "
        "COALESCE((SELECT sum(o.locked) FROM orders o WHERE o.account = b.account AND o.status = 'open' AND "
        "(o.side = 'sell') = (b.asset = 'energy')), 0) AS orders, "
        "COALESCE((SELECT sum(CASE WHEN b.asset = 'energy' THEN t.qty ELSE t.value END) FROM trades t WHERE "
        "t.status = 'pending' AND ((b.asset = 'energy' AND t.seller = b.account) OR "
        "(b.asset = 'quote' AND t.buyer = b.account))), 0) AS owed FROM escrow_balances b"
    )
    assert all(r["locked"] == r["orders"] + r["owed"] for r in rows)


async def test_order_waiting_on_the_closing_epoch_sees_the_close(pool: asyncpg.Pool, book: MarketBook) -> None:
    """An order that waits for the epoch lock while the clearer closes the epoch is refused (it must not land in
    the epoch with a snapshot taken before the close), and locks nothing."""
    uid = await trader(pool, book, quote=10_000)
    first = await book.place(uid, "buy", 1000, 1000)
    async with pool.acquire() as clearer, clearer.transaction():
        await clearer.execute("SELECT pg_advisory_xact_lock($1, $2)", *epoch_lock_key(first.epoch_start))
        await clearer.execute("UPDATE epochs SET status = 'closed' WHERE start_at = $1", first.epoch_start)
        waiting = asyncio.ensure_future(book.place(uid, "buy", 1000, 1000))
        await asyncio.sleep(0.3)
        assert not waiting.done()  # blocked on the epoch's lock
    with pytest.raises(EpochClosedError):
        await waiting
    assert await balances(pool, book, uid) == {"energy": (0, 0), "quote": (9000, 1000)}


async def test_first_order_still_on_its_way_at_the_close_is_refused(
    pool: asyncpg.Pool, book: MarketBook, clock: Clock
) -> None:
    """The epoch's first order read the clock before the end but reaches the database after the clearer: the clearer
    must not decide "nothing due" (the epoch has no row yet) and leave the order to land in an epoch it passed over."""
    uid = await trader(pool, book, quote=10_000)
    clock.advance(59)
    req = book.order_request(uid, "buy", 1000, 1000, "epoch", None)  # epoch e0, read before the close
    clock.advance(1)
    [e] = await book.clear_due()
    assert (e.start, e.order_count) == (req.epoch.start, 0)
    assert (await book.store.place(req)).outcome is PlaceOutcome.CLOSED
    assert await balances(pool, book, uid) == {"energy": (0, 0), "quote": (10_000, 0)}


async def test_clearer_waits_for_the_first_order_creating_the_epoch(
    pool: asyncpg.Pool, book: MarketBook, clock: Clock
) -> None:
    """The epoch's first order holds the epoch's shared lock and has created its row, not yet committed, when the
    clearer looks for due epochs: the clearer waits for it and clears the epoch with the order in its snapshot."""
    uid = await trader(pool, book, quote=10_000)
    clock.advance(59)
    e0 = book.clock.at(clock.t)
    async with pool.acquire() as placer, placer.transaction():  # the order's transaction, committed at the end
        row = await placer.fetchrow(
            "SELECT * FROM market_place_order($1, 'buy', 1000, 1000, 'epoch', NULL, $2, $3, 1000, 'quote', $4, $5)",
            uid,
            e0.start,
            e0.end,
            *epoch_lock_key(e0.start),
        )
        assert row is not None
        assert row["outcome"] == "placed"
        clock.advance(1)
        clearing = asyncio.ensure_future(book.clear_due())
        await asyncio.sleep(0.3)
        assert not clearing.done()  # waiting for the order's shared lock on e0
    [e] = await clearing
    assert (e.start, e.order_count) == (e0.start, 1)
    cleared = await pool.fetch("SELECT order_id FROM epoch_orders WHERE epoch_start = $1", e0.start)
    assert [r["order_id"] for r in cleared] == [row["id"]]


async def test_close_does_not_deadlock_with_a_batch_creating_the_next_epoch(
    pool: asyncpg.Pool, book: MarketBook, clock: Clock
) -> None:
    """A batch of the new epoch row-locks its escrow rows first, then creates the epoch's row; the close creates the
    same row (the next epoch) and then locks escrow rows to release. The close's row must not be an uncommitted insert
    the batch waits for while holding rows the close waits for (a deadlock)."""
    uid = await trader(pool, book, quote=10_000)
    acc = await book.account_of(uid)
    await book.place(uid, "buy", 1000, 1000)  # in e0, expires at the close: its lock is released
    clock.advance(60)
    e1 = book.clock.at(clock.t)
    async with pool.acquire() as batch, batch.transaction():  # market_place_orders: escrow rows first
        await batch.execute("SELECT 1 FROM escrow_balances WHERE account = $1 ORDER BY asset FOR UPDATE", acc)
        clearing = asyncio.ensure_future(book.clear_due())
        await asyncio.sleep(0.3)
        assert not clearing.done()  # waiting for the escrow row to release the expired order's lock
        row = await batch.fetchrow(
            "SELECT * FROM market_place_order($1, 'buy', 1000, 1000, 'epoch', NULL, $2, $3, 1000, 'quote', $4, $5)",
            uid,
            e1.start,
            e1.end,
            *epoch_lock_key(e1.start),
        )
        assert row is not None
        assert row["outcome"] == "placed"
    [e] = await clearing
    assert (e.order_count, await balances(pool, book, uid)) == (1, {"energy": (0, 0), "quote": (9000, 1000)})
