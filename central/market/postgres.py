"""PostgreSQL adapter of :class:`central.market.port.MarketStore`.

Concurrency: placing/cancelling takes the epoch's advisory lock in shared mode and then checks the epoch is open
(placing does it all in one statement, ``central.market.placing``, whose steps each see a fresh snapshot after the
lock); closing takes the same lock exclusively, so an order is either in the book that clears or refused. (Advisory
locks live in memory: thousands of concurrent placements do not write row-lock state into the epoch row, as
``FOR SHARE`` would.) Only one close runs at a time: its whole transaction holds the advisory lock
``CLEARING_LOCK_KEY`` (``pg_try_advisory_xact_lock``), so any number of workers may clear safely.

An epoch's row is created by its first order (under the shared lock), so "no row due" does not mean "no order": the
close of the last ended epoch takes its lock and creates its row itself when missing (``close_next_due``). The close
commits the current epoch's row before it locks anything: batches of that epoch lock escrow rows before creating it.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from central import locks
from central.chain.outbox import enqueue_many
from central.market.epochs import Epoch, EpochStatus
from central.market.errors import ConflictError, InsufficientEscrowError, NotFoundError
from central.market.escrow_seeds import Asset, EscrowAddresses
from central.market.events import lock_balances, notify
from central.market.model import (
    BookOrder,
    CancelTarget,
    ClosePlan,
    DepositToSign,
    DepthLevel,
    EpochSummary,
    EscrowRow,
    OrderRequest,
    OrderView,
    Placed,
    PlaceOutcome,
    TransferRecord,
    TransferState,
    TransferView,
    UtilityState,
    ZoneOutcome,
    asset_of,
    epoch_event,
    order_event,
    settled_event,
    trades_event,
)
from central.market.placing import OrderPlacer, PlaceArgs
from central.market.plan import SETTLEMENT_KIND, check_cancel, spent_at_settlement, trade_key, transfer_moves
from central.market.port import OrderSetRow, Planner

#: Advisory-lock key of the clearer (``central.locks``).
CLEARING_LOCK_KEY = locks.MARKET_CLEARING.key

#: First key of the per-epoch advisory locks (two-int4 form: a key space apart from the bigint keys).
EPOCH_LOCK_CLASS = locks.MARKET_EPOCH.space


def epoch_lock_key(start: datetime) -> tuple[int, int]:
    return EPOCH_LOCK_CLASS, int(start.timestamp()) % 2**31


#: A settlement intent's payload: ``trade`` (the trade's id) and these columns (``plan.settlement_payload``).
SETTLEMENT_FIELDS = (
    "buyer", "seller", "buyer_wallet", "seller_wallet", "qty", "value", "fee", "delivered", "grid_fee_seller",
    "grid_fee_buyer", "grid_operator",
)
_PAYLOAD_KEYS = ("trade", *SETTLEMENT_FIELDS)
#: The closing epoch's open orders as ``BookOrder``s; zoned, with the owner's meter (the lowest serial) that places
#: the order in a grid zone.
_CLOSE_ORDERS = (
    "SELECT o.id, o.account, o.side, o.qty - o.filled AS qty, o.price, o.locked, o.tif, o.expires_at, "
    "w.address AS wallet, NULL AS meter FROM orders o JOIN market_accounts a ON a.account = o.account "
    "LEFT JOIN wallets w ON w.user_id = a.user_id WHERE o.status = 'open' AND o.epoch_start = $1"
)
_CLOSE_ORDERS_ZONED = _CLOSE_ORDERS.replace(
    "NULL AS meter", "(SELECT min(m.serial) FROM meters m WHERE m.owner_id = a.user_id) AS meter"
)
_ORDER_COLS = "id, side, qty, price, filled, tif, expires_at, epoch_start, locked, status, created_at"
_ACCOUNT_SQL = "SELECT account FROM market_accounts WHERE user_id = $1"


def order_view(r: asyncpg.Record) -> OrderView:
    return OrderView(**{k: r[k] for k in OrderView.__dataclass_fields__})


def epoch_summary(r: asyncpg.Record) -> EpochSummary:
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


async def existing_account(conn: asyncpg.Connection, user_id: UUID) -> int | None:
    """The user's market account number, or None before their first market action."""
    acc = await conn.fetchval(_ACCOUNT_SQL, user_id)
    return None if acc is None else int(acc)


async def account_in(conn: asyncpg.Connection, user_id: UUID, addresses: EscrowAddresses) -> int:
    """The user's market account number, created (with its two escrow rows) on first use, in ``conn``'s
    transaction."""
    acc = await existing_account(conn, user_id)
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
        [(acc, a.value, str(addresses.escrow(acc, a))) for a in Asset],
    )
    return int(acc)


_TRANSFER_COLS = "id, asset, kind, amount, wallet, status, signature, error, created_at"


def _balances(rows: Sequence[asyncpg.Record]) -> dict[str, dict[str, int | str]]:
    return {r["asset"]: {"address": r["address"], "available": r["available"], "locked": r["locked"]} for r in rows}


async def _wallet(conn: asyncpg.Connection, user_id: UUID) -> str:
    w = await conn.fetchval("SELECT address FROM wallets WHERE user_id = $1", user_id)
    if w is None:
        raise ConflictError("link a wallet first")
    return str(w)


async def _record(conn: asyncpg.Connection | asyncpg.Pool, rec: TransferRecord) -> None:
    await conn.execute(
        "INSERT INTO escrow_transfers (id, account, asset, kind, amount, wallet, message, last_valid_block_height, "
        "status, signature, submitted_at) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text, CASE WHEN $10::text IS NULL THEN NULL ELSE now() END)",
        rec.id,
        rec.account,
        rec.asset.value,
        rec.kind,
        rec.amount,
        rec.wallet,
        rec.message,
        rec.last_valid_block_height,
        "built" if rec.signature is None else "submitted",
        rec.signature,
    )


async def escrow_snapshot(pool: asyncpg.Pool) -> tuple[list[EscrowRow], set[tuple[int, str]]]:
    """Every escrow row and the (account, asset) pairs with work in flight (a transfer submitted, or a trade whose
    settlement intent is submitted or confirmed but not yet applied), in one repeatable-read snapshot."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
        rows = await conn.fetch(
            "SELECT account, asset, address, available, locked FROM escrow_balances ORDER BY account, asset"
        )
        busy = await conn.fetch(
            "SELECT account, asset FROM escrow_transfers WHERE status = 'submitted' "
            "UNION SELECT x.account, x.asset FROM trades t CROSS JOIN LATERAL "
            "(SELECT c.state FROM chain_intent c WHERE c.kind = $1 AND c.key = 'trade:' || t.id) i "
            "CROSS JOIN LATERAL (VALUES (t.buyer, 'quote'), (t.seller, 'energy')) AS x(account, asset) "
            "WHERE t.status = 'pending' AND i.state IN ('submitted', 'confirmed')",
            SETTLEMENT_KIND,
        )
    escrow = [EscrowRow(r["account"], r["asset"], r["address"], r["available"], r["locked"]) for r in rows]
    return escrow, {(r["account"], r["asset"]) for r in busy}


class PgMarketStore:
    def __init__(self, pool: asyncpg.Pool, addresses: EscrowAddresses) -> None:
        self.pool = pool
        self.addresses = addresses
        self.placer = OrderPlacer(pool)

    # ---------------------------------------------------------------------------------------------- accounts

    async def account_of(self, user_id: UUID) -> int:
        async with self.pool.acquire() as conn:
            acc = await existing_account(conn, user_id)  # the common case in one statement, no transaction
            if acc is not None:
                return acc
            async with conn.transaction():
                return await account_in(conn, user_id, self.addresses)

    async def existing_account(self, user_id: UUID) -> int | None:
        async with self.pool.acquire() as conn:
            return await existing_account(conn, user_id)

    # ---------------------------------------------------------------------------------------------- orders

    async def place(self, req: OrderRequest) -> Placed:
        args: PlaceArgs = (
            req.user_id,
            req.side,
            req.qty,
            req.price,
            req.tif,
            req.expires_at,
            req.epoch.start,
            req.epoch.end,
            req.lock,
            req.asset.value,
            *epoch_lock_key(req.epoch.start),
        )
        row = await self.placer.place(args)  # with the process's other concurrent placements, in one statement
        if row["outcome"] == PlaceOutcome.NO_ACCOUNT:  # the user's first market action: create the account, retry
            await self.account_of(req.user_id)
            row = await self.placer.place_one(args)
        outcome = PlaceOutcome(row["outcome"])
        return Placed(outcome, order_view(row) if outcome is PlaceOutcome.PLACED else None)

    async def cancel(self, user_id: UUID, order_id: int) -> OrderView:
        async with self.pool.acquire() as conn, conn.transaction():
            acc = await account_in(conn, user_id, self.addresses)
            # Lock order: epoch (share) before order before escrow, as the clearer does.
            seen = await conn.fetchval("SELECT epoch_start FROM orders WHERE id = $1 AND account = $2", order_id, acc)
            if seen is None:
                raise NotFoundError("no such order")
            await conn.execute("SELECT pg_advisory_xact_lock_shared($1, $2)", *epoch_lock_key(seen))
            epoch_status = await conn.fetchval("SELECT status FROM epochs WHERE start_at = $1", seen)
            row = await conn.fetchrow(
                "SELECT status, locked, side, epoch_start FROM orders WHERE id = $1 FOR UPDATE", order_id
            )
            check_cancel(
                CancelTarget(row["status"], row["side"], row["locked"], row["epoch_start"], seen, epoch_status)
            )
            await conn.execute(
                "UPDATE escrow_balances SET available = available + $3, locked = locked - $3, updated_at = now() "
                "WHERE account = $1 AND asset = $2",
                acc,
                asset_of(row["side"]).value,
                row["locked"],
            )
            updated = await conn.fetchrow(
                f"UPDATE orders SET status = 'cancelled', locked = 0, updated_at = now() WHERE id = $1 "  # noqa: S608
                f"RETURNING {_ORDER_COLS}",
                order_id,
            )
            order = order_view(updated)
            await notify(conn, order_event(acc, order))
            return order

    async def orders_of(self, account: int, *, open_only: bool, limit: int) -> list[OrderView]:
        rows = await self.pool.fetch(
            f"SELECT {_ORDER_COLS} FROM orders WHERE account = $1 AND ($2 = false OR status = 'open') "  # noqa: S608
            "ORDER BY id DESC LIMIT $3",
            account,
            open_only,
            limit,
        )
        return [order_view(r) for r in rows]

    # ---------------------------------------------------------------------------------------------- public

    async def depth(self, epoch_start: datetime) -> list[DepthLevel]:
        rows = await self.pool.fetch(
            "SELECT side, price, sum(qty - filled)::bigint AS qty, count(*) AS orders FROM orders "
            "WHERE status = 'open' AND epoch_start = $1 GROUP BY side, price",
            epoch_start,
        )
        return [DepthLevel(r["side"], r["price"], r["qty"], r["orders"]) for r in rows]

    async def epochs(self, limit: int) -> list[EpochSummary]:
        rows = await self.pool.fetch("SELECT * FROM epochs ORDER BY start_at DESC LIMIT $1", limit)
        return [epoch_summary(r) for r in rows]

    async def epoch(self, start: datetime) -> EpochSummary | None:
        r = await self.pool.fetchrow("SELECT * FROM epochs WHERE start_at = $1", start)
        return epoch_summary(r) if r is not None else None

    async def recent_trades(self, limit: int) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT id, epoch_start, qty, price, value, status, signature, settled_at, created_at FROM trades "
            "ORDER BY id DESC LIMIT $1",
            limit,
        )
        return [dict(r) for r in rows]

    async def fills_of(self, account: int, limit: int) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT id, epoch_start, CASE WHEN buyer = $1 THEN 'buy' ELSE 'sell' END AS side, "
            "CASE WHEN buyer = $1 THEN buy_order ELSE sell_order END AS order_id, "
            "CASE WHEN buyer = $1 THEN coalesce(delivered, qty) ELSE qty END AS qty, price, value, "
            "CASE WHEN buyer = $1 THEN 0 ELSE fee END AS fee, status, signature, settled_at, zone, "
            "CASE WHEN buyer = $1 THEN grid_fee_buyer ELSE grid_fee_seller END AS grid_fee, "
            "qty - coalesce(delivered, qty) AS loss, (buy_order IS NULL OR sell_order IS NULL) AS utility "
            "FROM trades WHERE buyer = $1 OR seller = $1 ORDER BY id DESC LIMIT $2",
            account,
            limit,
        )
        return [dict(r) for r in rows]

    async def epoch_zoning(self, start: datetime) -> tuple[bytes | None, list[int], list[ZoneOutcome]]:
        """A zonal epoch's published zone parameters (None: single zone), its orders' zones in order-id order and
        each zone's outcome."""
        params = await self.pool.fetchval("SELECT zone_params FROM epochs WHERE start_at = $1", start)
        zones = await self.pool.fetch(
            "SELECT zone FROM epoch_orders WHERE epoch_start = $1 ORDER BY order_id", start
        )
        rows = await self.pool.fetch(
            "SELECT zone, name, price, volume, grid_fees, losses, utility_bought, utility_sold FROM epoch_zones "
            "WHERE epoch_start = $1 ORDER BY zone",
            start,
        )
        return params, [r[0] for r in zones], [ZoneOutcome(*r) for r in rows]

    async def meter_exists(self, serial: str) -> bool:
        return bool(await self.pool.fetchval("SELECT EXISTS (SELECT 1 FROM meters WHERE serial = $1)", serial))

    async def epoch_order_set(self, start: datetime) -> list[OrderSetRow]:
        rows = await self.pool.fetch(
            "SELECT order_id, account, side, qty, price FROM epoch_orders WHERE epoch_start = $1 ORDER BY order_id",
            start,
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    # ---------------------------------------------------------------------------------------------- escrow

    async def wallet_and_account(self, user_id: UUID) -> tuple[str, int]:
        async with self.pool.acquire() as conn, conn.transaction():
            wallet = await _wallet(conn, user_id)
            return wallet, await account_in(conn, user_id, self.addresses)

    async def escrow_opened(self, account: int, asset: Asset) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT opened FROM escrow_balances WHERE account = $1 AND asset = $2", account, asset.value
            )
        )

    async def mark_opened(self, account: int, asset: Asset) -> None:
        await self.pool.execute(
            "UPDATE escrow_balances SET opened = true WHERE account = $1 AND asset = $2", account, asset.value
        )

    async def escrow_balances(self, account: int) -> dict[str, dict[str, int | str]]:
        rows = await self.pool.fetch(
            "SELECT asset, address, available, locked FROM escrow_balances WHERE account = $1", account
        )
        return _balances(rows)

    async def user_escrow_balances(self, user_id: UUID) -> dict[str, dict[str, int | str]]:
        rows = await self.pool.fetch(
            "SELECT b.asset, b.address, b.available, b.locked FROM market_accounts a"
            " JOIN escrow_balances b ON b.account = a.account WHERE a.user_id = $1",
            user_id,
        )
        return _balances(rows)

    async def record_transfer(self, rec: TransferRecord) -> None:
        await _record(self.pool, rec)

    async def waiting_deposits(self, account: int) -> int:
        return int(await self.pool.fetchval(
            "SELECT count(*) FROM escrow_transfers WHERE account = $1 AND kind = 'deposit' AND status = 'built'",
            account,
        ))

    async def start_withdrawal(
        self, user_id: UUID, asset: Asset, amount: int, build: Callable[[int, str], Awaitable[TransferRecord]]
    ) -> TransferRecord:
        async with self.pool.acquire() as conn, conn.transaction():
            wallet = await _wallet(conn, user_id)
            account = await account_in(conn, user_id, self.addresses)
            ok = await conn.fetchval(
                "UPDATE escrow_balances SET available = available - $3, locked = locked + $3, updated_at = now() "
                "WHERE account = $1 AND asset = $2 AND available >= $3 RETURNING 1",
                account,
                asset.value,
                amount,
            )
            if ok is None:
                raise InsufficientEscrowError(f"not enough available {asset.value} in escrow")
            rec = await build(account, wallet)
            await _record(conn, rec)
            return rec

    async def submit_deposit(self, account: int, transfer_id: UUID, cosign: Callable[[DepositToSign], str]) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT status, message, wallet, signature FROM escrow_transfers "
                "WHERE id = $1 AND account = $2 AND kind = 'deposit' FOR UPDATE",
                transfer_id,
                account,
            )
            if row is None:
                raise NotFoundError("no such deposit")
            signature = cosign(DepositToSign(row["status"], bytes(row["message"]), row["wallet"]))
            await conn.execute(
                "UPDATE escrow_transfers SET status = 'submitted', signature = $2, submitted_at = now() WHERE id = $1",
                transfer_id,
                signature,
            )

    async def transfer_state(self, transfer_id: UUID) -> TransferState:
        r = await self.pool.fetchrow(
            "SELECT id, status, signature, last_valid_block_height FROM escrow_transfers WHERE id = $1", transfer_id
        )
        return TransferState(r["id"], r["status"], r["signature"], r["last_valid_block_height"])

    async def transfer_view(self, transfer_id: UUID) -> TransferView:
        r = await self.pool.fetchrow(f"SELECT {_TRANSFER_COLS} FROM escrow_transfers WHERE id = $1", transfer_id)  # noqa: S608
        return TransferView(**{k: r[k] for k in TransferView.__dataclass_fields__})

    async def open_transfers(self, only: UUID | None) -> list[TransferState]:
        rows = await self.pool.fetch(
            "SELECT id, status, signature, last_valid_block_height FROM escrow_transfers "
            "WHERE status IN ('built', 'submitted') AND ($1::uuid IS NULL OR id = $1)",
            only,
        )
        return [TransferState(r["id"], r["status"], r["signature"], r["last_valid_block_height"]) for r in rows]

    async def finish_transfer(self, transfer_id: UUID, status: str, error: str | None) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            r = await conn.fetchrow(
                "SELECT account, asset, kind, amount, status FROM escrow_transfers WHERE id = $1 FOR UPDATE",
                transfer_id,
            )
            moves = transfer_moves(r["kind"], r["status"], status, r["amount"])
            if moves is None:
                return
            await conn.execute(
                "UPDATE escrow_transfers SET status = $2, error = $3, finished_at = now() WHERE id = $1",
                transfer_id,
                status,
                error,
            )
            if r["status"] == "built":
                return  # never sent: no balance was touched
            if moves != (0, 0):
                await conn.execute(
                    "UPDATE escrow_balances SET available = available + $3, locked = locked + $4, updated_at = now() "
                    "WHERE account = $1 AND asset = $2",
                    r["account"],
                    r["asset"],
                    *moves,
                )
            await notify(conn, {"type": "account", "account": r["account"]})

    # ---------------------------------------------------------------------------------------------- settlement

    async def apply_settled(self) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            # Driven from the (few) pending trades, each looking up its intent by the unique (kind, key) index.
            trades = await conn.fetch(
                "WITH done AS (SELECT t.id, i.signature FROM trades t CROSS JOIN LATERAL "
                "(SELECT c.signature FROM chain_intent c WHERE c.kind = $1 AND c.key = 'trade:' || t.id "
                "AND c.state = 'confirmed') i WHERE t.status = 'pending') "
                "UPDATE trades t SET status = 'settled', signature = done.signature, settled_at = now() FROM done "
                "WHERE t.id = done.id AND t.status = 'pending' "
                "RETURNING t.id, t.epoch_start, t.buyer, t.seller, t.qty, t.price, t.value, t.fee, t.grid_fee_buyer, "
                "t.signature",
                SETTLEMENT_KIND,
            )
            if not trades:
                return 0
            spent = spent_at_settlement(
                [(t["buyer"], t["seller"], t["qty"], t["value"] + t["grid_fee_buyer"]) for t in trades]
            )
            await conn.execute("CREATE TEMP TABLE _spent (account bigint, asset text, amount bigint) ON COMMIT DROP")
            await conn.copy_records_to_table("_spent", records=[(m.account, m.asset.value, m.amount) for m in spent])
            await lock_balances(conn, "_spent")
            await conn.execute(
                "UPDATE escrow_balances b SET locked = b.locked - s.amount, updated_at = now() FROM _spent s "
                "WHERE b.account = s.account AND b.asset = s.asset"
            )
            epochs = sorted({t["epoch_start"] for t in trades})
            finished = await conn.fetch(
                "UPDATE epochs e SET status = 'settled', settled_at = now() WHERE e.start_at = ANY($1::timestamptz[]) "
                "AND e.status = 'cleared' AND NOT EXISTS "
                "(SELECT 1 FROM trades t WHERE t.epoch_start = e.start_at AND t.status = 'pending') RETURNING start_at",
                epochs,
            )
            await notify(conn, trades_event([(t["id"], t["qty"], t["price"], t["signature"]) for t in trades]))
            for e in finished:
                await notify(conn, settled_event(e["start_at"]))
            return len(trades)

    async def pending_settlements(self, limit: int) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT payload FROM chain_intent WHERE kind = $1 AND state = 'pending' "
            "AND (not_before IS NULL OR not_before <= now()) ORDER BY id LIMIT $2",
            SETTLEMENT_KIND,
            limit,
        )
        return [json.loads(r["payload"]) for r in rows]

    async def open_settlements(self) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT count(*) FROM chain_intent WHERE kind = $1 AND (state = 'submitted' OR (state = 'pending' "
                "AND (not_before IS NULL OR not_before <= now())))",
                SETTLEMENT_KIND,
            )
        )

    # ---------------------------------------------------------------------------------------------- closing

    async def close_next_due(
        self, ended: Epoch, planner: Planner, utility: UUID | None = None, *, zoned: bool = False
    ) -> EpochSummary | None:
        async with self.pool.acquire() as conn:
            # The current epoch's row (the next one of the epoch closing, in the usual case), committed before the
            # close: its placers create it too, under its shared lock, after row-locking their escrow rows (batches);
            # were it the close's uncommitted insert, such a placer would wait for the close while holding rows the
            # close then locks to release (a deadlock).
            await conn.execute(
                "INSERT INTO epochs (start_at, end_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                ended.end,
                ended.end + (ended.end - ended.start),
            )
            return await self._close_next_due(conn, ended, planner, utility, zoned=zoned)

    async def _close_next_due(
        self, conn: asyncpg.Connection, ended: Epoch, planner: Planner, utility: UUID | None, *, zoned: bool
    ) -> EpochSummary | None:
        async with conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", CLEARING_LOCK_KEY):
                return None
            start = await conn.fetchval(
                "SELECT start_at FROM epochs WHERE status IN ('open', 'closed') AND end_at <= $1 "
                "ORDER BY start_at LIMIT 1",
                ended.end,
            )
            if start is None:
                # No row due, but the last ended epoch's first order may be on its way (it creates the row under the
                # shared lock): wait for it under the exclusive lock, then the row is there, or create it (closed
                # below) so that a later one is refused. Already cleared: nothing to do.
                start = ended.start
                await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *epoch_lock_key(start))
                await conn.execute(
                    "INSERT INTO epochs (start_at, end_at) VALUES ($1, $2) ON CONFLICT DO NOTHING", start, ended.end
                )
                status = await conn.fetchval("SELECT status FROM epochs WHERE start_at = $1", start)
                if status not in (EpochStatus.OPEN, EpochStatus.CLOSED):
                    return None
            else:
                await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *epoch_lock_key(start))
            await conn.execute("UPDATE epochs SET status = 'closed', closed_at = now() WHERE start_at = $1", start)
            # Orders taking part: open in this epoch (the plan drops the expired and the wallet-less).
            # (The records are dropped before planning: fewer live objects, fewer full garbage collections.)
            orders = _book_orders(
                await conn.fetch(
                    _CLOSE_ORDERS_ZONED if zoned else _CLOSE_ORDERS,
                    start,
                )
            )
            state = await _utility_state(conn, utility) if utility is not None else None
            with _collector_paused():  # the plan allocates tens of thousands of small objects, none of them cyclic
                plan = planner(start, orders, state)
            summary = await _apply(conn, plan)
            await notify(conn, epoch_event(summary))
            return summary


async def _utility_state(conn: asyncpg.Connection, user_id: UUID) -> UtilityState | None:
    """The utility's account, wallet and available escrow, its escrow rows locked until the close commits."""
    row = await conn.fetchrow(
        "SELECT a.account, w.address FROM market_accounts a JOIN wallets w ON w.user_id = a.user_id "
        "WHERE a.user_id = $1",
        user_id,
    )
    if row is None:
        return None
    bal = {
        r["asset"]: r["available"]
        for r in await conn.fetch(
            "SELECT asset, available FROM escrow_balances WHERE account = $1 ORDER BY asset FOR UPDATE", row[0]
        )
    }
    return UtilityState(row[0], row[1], bal.get(Asset.ENERGY.value, 0), bal.get(Asset.QUOTE.value, 0))


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector held off for a synchronous step (no await inside: no other task runs meanwhile)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _book_orders(rows: list[asyncpg.Record]) -> list[BookOrder]:
    """Positional: the close's query selects BookOrder's fields in order (no per-row dict for a large book)."""
    return [BookOrder(*r) for r in rows]


async def _apply(conn: asyncpg.Connection, plan: ClosePlan) -> EpochSummary:
    epoch, nxt = plan.epoch, plan.next
    await conn.execute(
        "INSERT INTO epochs (start_at, end_at) VALUES ($1, $2) ON CONFLICT DO NOTHING", nxt.start, nxt.end
    )
    await conn.copy_records_to_table(
        "epoch_orders",
        records=[
            (epoch.start, e.order_id, e.account, e.side, e.qty, e.price, e.filled, e.netted, e.zone)
            for e in plan.entries
        ],
    )
    # Order updates (through a temp table: one statement for any book size).
    await conn.execute(
        "CREATE TEMP TABLE _ord (id bigint, filled bigint, locked bigint, status text, "
        "epoch_start timestamptz) ON COMMIT DROP"
    )
    await conn.copy_records_to_table(
        "_ord", records=[(c.id, c.filled, c.locked, c.status.value, c.epoch_start) for c in plan.changes]
    )
    await conn.execute(
        "UPDATE orders o SET filled = o.filled + t.filled, locked = t.locked, status = t.status, "
        "epoch_start = t.epoch_start, updated_at = now() FROM _ord t WHERE o.id = t.id"
    )
    # Escrow: releases go back to available (what is owed stays locked until settlement).
    await conn.execute("CREATE TEMP TABLE _rel (account bigint, asset text, amount bigint) ON COMMIT DROP")
    await conn.copy_records_to_table("_rel", records=[(m.account, m.asset.value, m.amount) for m in plan.releases])
    await lock_balances(conn, "_rel")
    await conn.execute(
        "UPDATE escrow_balances b SET available = b.available + r.amount, locked = b.locked - r.amount, "
        "updated_at = now() FROM _rel r WHERE b.account = r.account AND b.asset = r.asset"
    )
    for m in plan.reserved:  # the utility's side of its trades, locked until settlement spends it
        await conn.execute(
            "UPDATE escrow_balances SET available = available - $3, locked = locked + $3, updated_at = now() "
            "WHERE account = $1 AND asset = $2",
            m.account,
            m.asset.value,
            m.amount,
        )
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
            "zone",
            "delivered",
            "grid_fee_seller",
            "grid_fee_buyer",
            "grid_operator",
        ],
        records=[
            (
                epoch.start,
                t.seq,
                t.buy_order,
                t.sell_order,
                t.buyer,
                t.seller,
                t.buyer_wallet,
                t.seller_wallet,
                t.qty,
                t.price,
                t.value,
                t.fee,
                t.zone,
                t.delivered,
                t.grid_fee_seller,
                t.grid_fee_buyer,
                t.grid_operator,
            )
            for t in plan.trades
        ],
    )
    if plan.zones:
        await conn.copy_records_to_table(
            "epoch_zones",
            records=[
                (epoch.start, z.zone, z.name, z.price, z.volume, z.grid_fees, z.losses, z.utility_bought,
                 z.utility_sold)
                for z in plan.zones
            ],
        )
    if plan.trades:  # settlement intents, in this same transaction (exactly once from clearing to chain)
        rows = await conn.fetch(
            f"SELECT id, {', '.join(SETTLEMENT_FIELDS)} FROM trades WHERE epoch_start = $1 ORDER BY seq",  # noqa: S608
            epoch.start,
        )
        payloads = [dict(zip(_PAYLOAD_KEYS, t, strict=True)) for t in rows]
        await enqueue_many(conn, SETTLEMENT_KIND, [(trade_key(p["trade"]), p) for p in payloads])
    r = await conn.fetchrow(
        "UPDATE epochs SET status = $2, fee_bps = $3, price = $4, marginal_bid = $5, marginal_ask = $6, "
        "curve_volume = $7, volume = $8, order_count = $9, trade_count = $10, order_set_hash = $11, zone_params = $12, "
        "cleared_at = now(), settled_at = CASE WHEN $2 = 'settled' THEN now() END "
        "WHERE start_at = $1 RETURNING *",
        epoch.start,
        plan.status.value,
        plan.fee_bps,
        plan.price,
        plan.marginal_bid,
        plan.marginal_ask,
        plan.curve_volume,
        plan.volume,
        plan.order_count,
        len(plan.trades),
        plan.order_set_hash,
        plan.zone_params,
    )
    return epoch_summary(r)
