"""Orders and epochs on PostgreSQL: accounts, placing and cancelling orders (with escrow locks), and the clearer.

Concurrency: placing/cancelling takes the epoch's advisory lock in shared mode and then checks the epoch is open
(placing does it all in one statement, ``central.market.placing``, whose steps each see a fresh snapshot after the
lock);
the clearer takes the same lock exclusively to close it, so an order is either in the book that clears or refused
with ``EpochClosedError``. (Advisory locks live in memory: thousands of concurrent placements do not write
row-lock state into the epoch row, as ``FOR SHARE`` would.)
Only one clearer runs at a time: the whole clearing transaction holds the advisory lock ``CLEARING_LOCK_KEY``
(``pg_try_advisory_xact_lock``), so any number of workers may call ``clear_due`` safely.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np

from central import locks
from central.market.clearing import OrderBook, Side, clear
from central.market.epochs import Epoch, EpochClock, EpochStatus
from central.market.errors import (
    ConflictError,
    EpochClosedError,
    InsufficientEscrowError,
    InvalidOrderError,
    NotFoundError,
)
from central.market.escrow_seeds import Asset, EscrowAddresses
from central.market.events import lock_balances, notify
from central.market.orders import (
    SIDE_NAMES,
    OrderStatus,
    TimeInForce,
    lock_amount,
    outcomes,
    parse_side,
    validate_order,
)
from central.market.placing import OrderPlacer, PlaceArgs
from central.market.settler import enqueue_trades

log = logging.getLogger(__name__)

#: Advisory-lock key of the clearer (``central.locks``).
CLEARING_LOCK_KEY = locks.MARKET_CLEARING.key


#: First key of the per-epoch advisory locks (two-int4 form: a key space apart from the bigint keys).
EPOCH_LOCK_CLASS = locks.MARKET_EPOCH.space


def epoch_lock_key(start: datetime) -> tuple[int, int]:
    return EPOCH_LOCK_CLASS, int(start.timestamp()) % 2**31


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class OrderView:
    id: int
    side: str
    qty: int
    price: int
    filled: int
    tif: str
    expires_at: datetime | None
    epoch_start: datetime
    locked: int
    status: str
    created_at: datetime


@dataclass(frozen=True)
class EpochSummary:
    start: datetime
    end: datetime
    status: str
    price: int | None
    volume: int
    curve_volume: int
    order_count: int
    trade_count: int
    order_set_hash: str | None
    fee_bps: int | None = None


_ORDER_COLS = "id, side, qty, price, filled, tif, expires_at, epoch_start, locked, status, created_at"

_ACCOUNT_SQL = "SELECT account FROM market_accounts WHERE user_id = $1"


async def _existing_account(conn: asyncpg.Connection, user_id: UUID) -> int | None:
    """The user's market account number, or None before their first market action."""
    acc = await conn.fetchval(_ACCOUNT_SQL, user_id)
    return None if acc is None else int(acc)


def _order(r: asyncpg.Record) -> OrderView:
    return OrderView(**{k: r[k] for k in OrderView.__dataclass_fields__})


def _epoch(r: asyncpg.Record) -> EpochSummary:
    h = r["order_set_hash"]
    return EpochSummary(
        r["start_at"],
        r["end_at"],
        r["status"],
        r["price"],
        r["volume"],
        r["curve_volume"],
        r["order_count"],
        r["trade_count"],
        bytes(h).hex() if h is not None else None,
        r["fee_bps"],
    )


class MarketBook:
    """Accounts, orders and epochs. ``now`` is injectable for tests (epoch boundaries)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: EpochClock,
        fee_bps: int,
        addresses: EscrowAddresses,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self.pool = pool
        self.clock = clock
        self.fee_bps = fee_bps
        self.addresses = addresses
        self.now = now
        self.placer = OrderPlacer(pool)

    # ---------------------------------------------------------------------------------------------- accounts

    async def account(self, conn: asyncpg.Connection, user_id: UUID) -> int:
        """The user's market account number, created (with its two escrow rows) on first use."""
        acc = await _existing_account(conn, user_id)
        if acc is not None:
            return acc
        acc = await conn.fetchval(
            "INSERT INTO market_accounts (user_id) VALUES ($1) ON CONFLICT (user_id) DO NOTHING RETURNING account",
            user_id,
        )
        if acc is None:  # a concurrent request created it
            return int(await conn.fetchval(_ACCOUNT_SQL, user_id))
        await conn.executemany(
            "INSERT INTO escrow_balances (account, asset, address) VALUES ($1, $2, $3)",
            [(acc, a.value, str(self.addresses.escrow(acc, a))) for a in Asset],
        )
        return int(acc)

    async def account_of(self, user_id: UUID) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            return await self.account(conn, user_id)

    # ---------------------------------------------------------------------------------------------- orders

    async def _ensure_epoch(self, conn: asyncpg.Connection, epoch: Epoch) -> None:
        await conn.execute(
            "INSERT INTO epochs (start_at, end_at) VALUES ($1, $2) ON CONFLICT DO NOTHING", epoch.start, epoch.end
        )

    async def place(
        self, user_id: UUID, side: str, qty: int, price: int, tif: str = "epoch", expires_at: datetime | None = None
    ) -> OrderView:
        now = self.now()
        s = parse_side(side)
        try:
            t = TimeInForce(tif)
        except ValueError:
            raise InvalidOrderError("tif must be 'epoch' or 'gtc'") from None
        validate_order(qty, price, t, expires_at, now)
        epoch = self.clock.at(now)
        if expires_at is not None and expires_at < epoch.end:
            raise InvalidOrderError("expires_at is before the current epoch closes")
        lock = lock_amount(s, qty, price)
        asset = Asset.ENERGY if s is Side.SELL else Asset.QUOTE
        args: PlaceArgs = (
            user_id,
            SIDE_NAMES[s],
            qty,
            price,
            t.value,
            expires_at,
            epoch.start,
            epoch.end,
            lock,
            asset.value,
            *epoch_lock_key(epoch.start),
        )
        row = await self.placer.place(args)  # with the process's other concurrent placements, in one statement
        if row["outcome"] == "no_account":  # the user's first market action: create the account, then place
            await self.account_of(user_id)
            row = await self.placer.place_one(args)
        if row["outcome"] == "no_wallet":
            raise ConflictError("link a wallet before trading")
        if row["outcome"] == "closed":
            raise EpochClosedError("the current epoch is closed; retry in a moment")
        if row["outcome"] == "insufficient":
            raise InsufficientEscrowError(f"not enough available {asset.value} in escrow (need {lock})")
        return _order(row)

    async def cancel(self, user_id: UUID, order_id: int) -> OrderView:
        async with self.pool.acquire() as conn, conn.transaction():
            acc = await self.account(conn, user_id)
            # Lock order: epoch (share) before order before escrow, as the clearer does.
            seen = await conn.fetchval("SELECT epoch_start FROM orders WHERE id = $1 AND account = $2", order_id, acc)
            if seen is None:
                raise NotFoundError("no such order")
            await conn.execute("SELECT pg_advisory_xact_lock_shared($1, $2)", *epoch_lock_key(seen))
            epoch_status = await conn.fetchval("SELECT status FROM epochs WHERE start_at = $1", seen)
            row = await conn.fetchrow(
                "SELECT status, locked, side, epoch_start FROM orders WHERE id = $1 FOR UPDATE", order_id
            )
            if row["status"] != OrderStatus.OPEN:
                raise ConflictError(f"order is {row['status']}")
            if epoch_status != EpochStatus.OPEN or row["epoch_start"] != seen:
                raise EpochClosedError("the order's epoch is closed; it can be cancelled after clearing")
            asset = Asset.ENERGY if row["side"] == "sell" else Asset.QUOTE
            await conn.execute(
                "UPDATE escrow_balances SET available = available + $3, locked = locked - $3, updated_at = now() "
                "WHERE account = $1 AND asset = $2",
                acc,
                asset.value,
                row["locked"],
            )
            updated = await conn.fetchrow(
                f"UPDATE orders SET status = 'cancelled', locked = 0, updated_at = now() WHERE id = $1 "  # noqa: S608
                f"RETURNING {_ORDER_COLS}",
                order_id,
            )
            order = _order(updated)
            await notify(conn, {"type": "order", "account": acc, "order": _order_json(order)})
            return order

    async def orders_of(self, user_id: UUID, *, open_only: bool = False, limit: int = 100) -> list[OrderView]:
        async with self.pool.acquire() as conn:
            acc = await _existing_account(conn, user_id)
            if acc is None:
                return []
            rows = await conn.fetch(
                f"SELECT {_ORDER_COLS} FROM orders WHERE account = $1 AND ($2 = false OR status = 'open') "  # noqa: S608
                "ORDER BY id DESC LIMIT $3",
                acc,
                open_only,
                limit,
            )
            return [_order(r) for r in rows]

    # ---------------------------------------------------------------------------------------------- public

    async def depth(self, levels: int = 20) -> dict[str, Any]:
        """Aggregated open book of the current epoch: price levels with total Wh and order count."""
        epoch = self.clock.at(self.now())
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT side, price, sum(qty - filled)::bigint AS qty, count(*) AS orders FROM orders "
                "WHERE status = 'open' AND epoch_start = $1 GROUP BY side, price",
                epoch.start,
            )
        bids = sorted(((r["price"], r["qty"], r["orders"]) for r in rows if r["side"] == "buy"), reverse=True)
        asks = sorted((r["price"], r["qty"], r["orders"]) for r in rows if r["side"] == "sell")
        level = ("price", "qty", "orders")
        return {
            "epoch_start": epoch.start,
            "epoch_end": epoch.end,
            "bids": [dict(zip(level, b, strict=True)) for b in bids[:levels]],
            "asks": [dict(zip(level, a, strict=True)) for a in asks[:levels]],
        }

    async def epochs(self, limit: int = 50) -> list[EpochSummary]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM epochs ORDER BY start_at DESC LIMIT $1", limit)
        return [_epoch(r) for r in rows]

    async def epoch(self, start: datetime) -> EpochSummary | None:
        async with self.pool.acquire() as conn:
            r = await conn.fetchrow("SELECT * FROM epochs WHERE start_at = $1", start)
        return _epoch(r) if r is not None else None

    async def recent_trades(self, limit: int = 100) -> list[dict[str, Any]]:
        """Latest trades (public: no accounts), newest first."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT id, epoch_start, qty, price, value, status, signature, settled_at, created_at FROM trades "
                "ORDER BY id DESC LIMIT $1",
                limit,
            )
        return [dict(r) for r in rows]

    async def fills_of(self, user_id: UUID, limit: int = 100) -> list[dict[str, Any]]:
        """The caller's trades (as buyer or seller), newest first."""
        async with self.pool.acquire() as conn:
            acc = await _existing_account(conn, user_id)
            if acc is None:
                return []
            rows = await conn.fetch(
                "SELECT id, epoch_start, CASE WHEN buyer = $1 THEN 'buy' ELSE 'sell' END AS side, "
                "CASE WHEN buyer = $1 THEN buy_order ELSE sell_order END AS order_id, qty, price, value, "
                "CASE WHEN buyer = $1 THEN 0 ELSE fee END AS fee, status, signature, settled_at FROM trades "
                "WHERE buyer = $1 OR seller = $1 ORDER BY id DESC LIMIT $2",
                acc,
                limit,
            )
        return [dict(r) for r in rows]

    async def epoch_order_set(self, start: datetime) -> OrderBook:
        """The exact order set an epoch cleared (recompute its hash with ``central.market.clearing``)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT order_id, account, side, qty, price FROM epoch_orders WHERE epoch_start = $1", start
            )
        cols = np.array([tuple(r) for r in rows], dtype=np.int64).reshape(-1, 5).T
        return OrderBook.from_arrays(order_id=cols[0], user=cols[1], side=cols[2], qty=cols[3], price=cols[4])

    # ---------------------------------------------------------------------------------------------- clearing

    async def clear_due(self) -> list[EpochSummary]:
        """Close and clear every epoch that has ended, oldest first. Returns [] if another process is clearing."""
        done: list[EpochSummary] = []
        while True:
            async with self.pool.acquire() as conn, conn.transaction():
                if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", CLEARING_LOCK_KEY):
                    return done
                now = self.now()
                start = await conn.fetchval(
                    "SELECT start_at FROM epochs WHERE status IN ('open', 'closed') AND end_at <= $1 "
                    "ORDER BY start_at LIMIT 1",
                    now,
                )
                if start is None:
                    return done
                done.append(await self._clear_epoch(conn, self.clock.starting(start)))

    async def _clear_epoch(self, conn: asyncpg.Connection, epoch: Epoch) -> EpochSummary:
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *epoch_lock_key(epoch.start))
        await conn.execute("UPDATE epochs SET status = 'closed', closed_at = now() WHERE start_at = $1", epoch.start)
        nxt = self.clock.next(epoch)
        await self._ensure_epoch(conn, nxt)
        # Orders taking part: open in this epoch and valid at its close, owner with a linked wallet.
        rows = await conn.fetch(
            "SELECT o.id, o.account, o.side, o.qty - o.filled AS qty, o.price, o.locked, o.tif, o.expires_at, "
            "w.address AS wallet FROM orders o JOIN market_accounts a ON a.account = o.account "
            "LEFT JOIN wallets w ON w.user_id = a.user_id "
            "WHERE o.status = 'open' AND o.epoch_start = $1",
            epoch.start,
        )
        live = [r for r in rows if (r["expires_at"] is None or r["expires_at"] >= epoch.end) and r["wallet"]]
        gone = [r for r in rows if not ((r["expires_at"] is None or r["expires_at"] >= epoch.end) and r["wallet"])]
        n = len(live)
        ids = np.fromiter((r["id"] for r in live), np.int64, n)
        accounts = np.fromiter((r["account"] for r in live), np.int64, n)
        sides = np.fromiter((0 if r["side"] == "buy" else 1 for r in live), np.int64, n)
        book = OrderBook.from_arrays(
            order_id=ids,
            user=accounts,
            side=sides,
            qty=np.fromiter((r["qty"] for r in live), np.int64, n),
            price=np.fromiter((r["price"] for r in live), np.int64, n),
        )
        result = clear(book, self.fee_bps)
        continues = np.fromiter(
            (r["tif"] == "gtc" and (r["expires_at"] is None or r["expires_at"] >= nxt.end) for r in live), np.int64, n
        )
        locked_before = np.fromiter((r["locked"] for r in live), np.int64, n)
        out = outcomes(result, locked_before, continues)

        await conn.copy_records_to_table(
            "epoch_orders",
            records=[
                (
                    epoch.start,
                    int(ids[i]),
                    int(accounts[i]),
                    int(sides[i]),
                    int(book.qty[i]),
                    int(book.price[i]),
                    int(result.filled[i]),
                    int(result.netted[i]),
                )
                for i in range(n)
            ],
        )
        # Order updates (through a temp table: one statement for any book size).
        await conn.execute(
            "CREATE TEMP TABLE _ord (id bigint, filled bigint, locked bigint, status text, "
            "epoch_start timestamptz) ON COMMIT DROP"
        )
        upd = [
            (
                int(ids[i]),
                int(out.filled_now[i]),
                int(out.locked_after[i]),
                out.status[i].value,
                nxt.start if out.status[i] is OrderStatus.OPEN else epoch.start,
            )
            for i in range(n)
        ]
        upd += [(r["id"], 0, 0, OrderStatus.EXPIRED.value, epoch.start) for r in gone]
        await conn.copy_records_to_table("_ord", records=upd)
        await conn.execute(
            "UPDATE orders o SET filled = o.filled + t.filled, locked = t.locked, status = t.status, "
            "epoch_start = t.epoch_start, updated_at = now() FROM _ord t WHERE o.id = t.id"
        )
        # Escrow: releases go back to available (what is owed stays locked until settlement).
        release: dict[tuple[int, str], int] = {}
        for i in range(n):
            key = (int(accounts[i]), "quote" if sides[i] == Side.BUY else "energy")
            release[key] = release.get(key, 0) + int(out.release[i])
        for r in gone:
            key = (r["account"], "quote" if r["side"] == "buy" else "energy")
            release[key] = release.get(key, 0) + r["locked"]
        await conn.execute("CREATE TEMP TABLE _rel (account bigint, asset text, amount bigint) ON COMMIT DROP")
        await conn.copy_records_to_table("_rel", records=[(a, s, v) for (a, s), v in release.items() if v])
        await lock_balances(conn, "_rel")
        await conn.execute(
            "UPDATE escrow_balances b SET available = b.available + r.amount, locked = b.locked - r.amount, "
            "updated_at = now() FROM _rel r WHERE b.account = r.account AND b.asset = r.asset"
        )
        # Trades, with destination wallets fixed now.
        wallet = {r["account"]: r["wallet"] for r in live}
        trades = result.trades()
        await conn.copy_records_to_table(
            "trades",
            columns=[
                "epoch_start",
                "seq",
                "buy_order",
                "sell_order",
                "buyer",
                "seller",
                "buyer_wallet",
                "seller_wallet",
                "qty",
                "price",
                "value",
                "fee",
            ],
            records=[
                (
                    epoch.start,
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
                for t in trades
            ],
        )
        if trades:  # settlement intents, in this same transaction (exactly once from clearing to chain)
            await enqueue_trades(
                conn,
                await conn.fetch(
                    "SELECT id, buyer, seller, buyer_wallet, seller_wallet, qty, value, fee FROM trades "
                    "WHERE epoch_start = $1 ORDER BY seq",
                    epoch.start,
                ),
            )
        status = EpochStatus.CLEARED if trades else EpochStatus.SETTLED
        r = await conn.fetchrow(
            "UPDATE epochs SET status = $2, fee_bps = $3, price = $4, marginal_bid = $5, marginal_ask = $6, "
            "curve_volume = $7, volume = $8, order_count = $9, trade_count = $10, order_set_hash = $11, "
            "cleared_at = now(), settled_at = CASE WHEN $2 = 'settled' THEN now() END "
            "WHERE start_at = $1 RETURNING *",
            epoch.start,
            status.value,
            self.fee_bps,
            result.price,
            result.marginal_bid,
            result.marginal_ask,
            result.curve_volume,
            result.volume,
            n,
            len(trades),
            result.order_set_hash,
        )
        summary = _epoch(r)
        log.info(
            "epoch %s cleared: %d orders, %d trades, %d Wh at %s",
            epoch.start.isoformat(),
            n,
            len(trades),
            result.volume,
            result.price,
        )
        await notify(conn, {"type": "epoch", "epoch": _epoch_json(summary)})
        return summary


def _order_json(o: OrderView) -> dict[str, Any]:
    return {
        "id": o.id,
        "side": o.side,
        "qty": o.qty,
        "price": o.price,
        "filled": o.filled,
        "status": o.status,
        "epoch_start": o.epoch_start.isoformat(),
    }


def _epoch_json(e: EpochSummary) -> dict[str, Any]:
    return {
        "start": e.start.isoformat(),
        "end": e.end.isoformat(),
        "status": e.status,
        "price": e.price,
        "volume": e.volume,
        "trade_count": e.trade_count,
        "order_set_hash": e.order_set_hash,
    }
