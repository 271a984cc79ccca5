"""Order placement on PostgreSQL, coalesced: the placements a process receives concurrently go to the database
together, one statement (one round trip, one commit) per epoch, instead of one transaction each.

The SQL functions are in migration ``0042_market_place_order.sql``: ``market_place_order`` places one order (takes
the epoch's shared advisory lock, then checks wallet, account and epoch with fresh snapshots, locks escrow, inserts,
notifies) and ``market_place_orders`` places a batch (row-locks the batch's escrow rows in key order first, then
places each order as the single function does). Every order gets its own outcome; nothing about one order's outcome
depends on the others in its batch except their arrival order (time priority = order id).

At most ``max_inflight`` statements run at a time per process; orders arriving meanwhile wait and form the next
batch, so batches grow with load and stay at one order when idle (no timer, no added latency).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

log = logging.getLogger(__name__)

_ONE_SQL = "SELECT * FROM market_place_order($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
_MANY_SQL = (
    "SELECT * FROM market_place_orders($1::uuid[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], "
    "$6::timestamptz[], $7, $8, $9::bigint[], $10::text[], $11, $12)"
)

#: user, side, qty, price, tif, expires_at, epoch start, epoch end, lock, asset, lock class, lock key
PlaceArgs = tuple[UUID, str, int, int, str, datetime | None, datetime, datetime, int, str, int, int]


class OrderPlacer:
    def __init__(self, pool: asyncpg.Pool, max_inflight: int = 2, max_batch: int = 200) -> None:
        self.pool = pool
        self.max_inflight = max_inflight
        self.max_batch = max_batch
        self._queue: list[tuple[PlaceArgs, asyncio.Future[asyncpg.Record]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._running = 0

    async def place_one(self, args: PlaceArgs) -> asyncpg.Record:
        """One order, alone, in its own statement."""
        row = await self.pool.fetchrow(_ONE_SQL, *args)
        assert row is not None
        return row

    async def place(self, args: PlaceArgs) -> asyncpg.Record:
        """The function's row for this order (``outcome`` and the order's columns), placed with whatever else is
        waiting."""
        fut: asyncio.Future[asyncpg.Record] = asyncio.get_running_loop().create_future()
        self._queue.append((args, fut))
        if self._running < self.max_inflight:
            self._running += 1
            task = asyncio.ensure_future(self._drain())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await fut

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                by_epoch: dict[datetime, list[tuple[PlaceArgs, asyncio.Future[asyncpg.Record]]]] = {}
                for item in batch:
                    by_epoch.setdefault(item[0][6], []).append(item)
                for items in by_epoch.values():
                    await self._flush(items)
        finally:
            self._running -= 1  # synchronously with the last look at the queue: no order is left waiting

    async def _flush(self, items: Sequence[tuple[PlaceArgs, asyncio.Future[asyncpg.Record]]]) -> None:
        try:
            if len(items) == 1:
                rows = [await self.place_one(items[0][0])]
            else:
                rows = await self._place_many([args for args, _ in items])
        except asyncpg.PostgresError:  # the statement failed and rolled back (nothing placed): place each alone
            log.warning("batched order placement failed; placing the orders one by one", exc_info=True)
            await asyncio.gather(*(self._alone(args, fut) for args, fut in items))
            return
        except Exception as e:  # noqa: BLE001 - e.g. connection lost: outcome unknown, as for a single order
            for _, fut in items:
                if not fut.done():
                    fut.set_exception(e)
            return
        for (_, fut), row in zip(items, rows, strict=True):
            if not fut.done():
                fut.set_result(row)

    async def _alone(self, args: PlaceArgs, fut: asyncio.Future[asyncpg.Record]) -> None:
        try:
            row = await self.place_one(args)
        except Exception as e:  # noqa: BLE001 - handed to the caller waiting for this order
            if not fut.done():
                fut.set_exception(e)
            return
        if not fut.done():
            fut.set_result(row)

    async def _place_many(self, batch: Sequence[PlaceArgs]) -> list[asyncpg.Record]:
        cols: list[list[Any]] = [list(c) for c in zip(*batch, strict=True)]
        first = batch[0]
        rows: list[asyncpg.Record] = await self.pool.fetch(
            _MANY_SQL,
            cols[0],
            cols[1],
            cols[2],
            cols[3],
            cols[4],
            cols[5],
            first[6],
            first[7],
            cols[8],
            cols[9],
            first[10],
            first[11],
        )
        rows.sort(key=lambda r: r["n"])
        if len(rows) != len(batch):
            raise RuntimeError(f"market_place_orders answered {len(rows)} rows for {len(batch)} orders")
        return rows
