"""Coalesced order placement (central.market.placing) on real PostgreSQL: concurrent orders share statements, yet each
gets its own outcome; two processes' batches over the same traders never deadlock; a batch the database refuses is
placed order by order, so one bad order does not take the others down."""

from __future__ import annotations

import asyncio
import logging
import uuid

import asyncpg
import pytest
from solders.keypair import Keypair

from central.market.book import MarketBook, epoch_lock_key
from central.market.epochs import EpochClock
from central.market.errors import InsufficientEscrowError
from central.market.escrow_seeds import EscrowAddresses
from central.market.placing import OrderPlacer, PlaceArgs
from tests.central.market.market_fixtures import Clock, make_user


def new_book(pool: asyncpg.Pool) -> MarketBook:
    return MarketBook(pool, EpochClock(60), fee_bps=100, addresses=EscrowAddresses(Keypair().pubkey()), now=Clock())


async def funded(pool: asyncpg.Pool, book: MarketBook, quote: int) -> uuid.UUID:
    uid = await make_user(pool, wallet=Keypair())
    acc = await book.account_of(uid)
    await pool.execute("UPDATE escrow_balances SET available = $2 WHERE account = $1 AND asset = 'quote'", acc, quote)
    return uid


async def test_concurrent_orders_each_get_their_own_outcome(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    book = new_book(pool)
    users = [await funded(pool, book, 5_000) for _ in range(6)]  # each can afford five orders locking 1000
    results = await asyncio.gather(
        *(book.place(users[i % 6], "buy", 1000, 1000) for i in range(48)), return_exceptions=True
    )
    placed = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(placed) == 30
    assert all(isinstance(r, InsufficientEscrowError) for r in refused)
    assert len({o.id for o in placed}) == 30
    assert await pool.fetchval("SELECT count(*) FROM orders") == 30
    rows = await pool.fetch("SELECT available, locked FROM escrow_balances WHERE asset = 'quote'")
    assert sorted((r["available"], r["locked"]) for r in rows) == [(0, 5_000)] * 6
    assert "one by one" not in caplog.text  # no batch failed


async def test_two_processes_batching_over_the_same_traders_do_not_deadlock(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    a, b = new_book(pool), new_book(pool)  # two workers, each with its own placer
    users = [await funded(pool, a, 1_000_000) for _ in range(8)]
    caplog.set_level(logging.WARNING, logger="central.market.placing")

    async def worker(book: MarketBook, order: list[uuid.UUID]) -> None:
        for _ in range(5):
            await asyncio.gather(*(book.place(u, "buy", 1000, 1000) for u in order))

    await asyncio.gather(worker(a, users), worker(b, users[::-1]))
    assert await pool.fetchval("SELECT count(*) FROM orders") == 80
    assert "one by one" not in caplog.text  # no batch hit a deadlock (nor anything else)


async def test_a_batch_the_database_refuses_is_placed_order_by_order(
    pool: asyncpg.Pool, caplog: pytest.LogCaptureFixture
) -> None:
    book = new_book(pool)
    users = [await funded(pool, book, 10_000) for _ in range(3)]
    epoch = book.clock.at(book.now())

    def args(uid: uuid.UUID, qty: int) -> PlaceArgs:
        return (
            uid,
            "buy",
            qty,
            1000,
            "epoch",
            None,
            epoch.start,
            epoch.end,
            qty,
            "quote",
            *epoch_lock_key(epoch.start),
        )

    placer = OrderPlacer(pool)
    bad = args(users[1], 0)  # qty 0 breaks a CHECK constraint (the API never sends it): the whole statement fails
    results = await asyncio.gather(
        placer.place(args(users[0], 1000)),
        placer.place(bad),
        placer.place(args(users[2], 1000)),
        return_exceptions=True,
    )
    assert isinstance(results[1], asyncpg.CheckViolationError)
    assert [r["outcome"] for r in (results[0], results[2]) if not isinstance(r, BaseException)] == ["placed", "placed"]
    assert await pool.fetchval("SELECT count(*) FROM orders") == 2
    assert "one by one" in caplog.text
