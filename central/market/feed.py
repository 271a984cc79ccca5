"""Live market feed on the shared WebSocket (``central.readings.live.LiveHub``), fanned out across worker processes
through PostgreSQL LISTEN/NOTIFY on ``gtx_market`` (every process listens; the writer's NOTIFY reaches all).

Channels (subscribe with ``{"type": "subscribe", "channel": "<name>"}`` after the auth message):
- ``market.book``: the open epoch's depth, re-sent (at most every ``book_interval_s``) when orders change;
- ``market.trades``: trades as they settle (id, qty, price, signature);
- ``market.epochs``: epoch transitions (cleared with price/volume/hash, settled);
- ``market.mine``: the caller's own orders (placed/cancelled/filled), fills and escrow balances.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import Any, Protocol
from uuid import UUID

import asyncpg

from central.market.book import NOTIFY_CHANNEL, MarketBook

log = logging.getLogger(__name__)


class _Session(Protocol):
    @property
    def caller(self) -> Any: ...

    @property
    def subscriptions(self) -> dict[str, Any]: ...

    def event(self, channel: str, data: Mapping[str, Any]) -> bool: ...


class _Hub(Protocol):
    def add_channel(self, channel: Any) -> None: ...

    def subscribers(self, channel: str) -> list[Any]: ...


class _Public:
    def __init__(self, name: str) -> None:
        self.name = name

    async def subscribe(self, hub: object, session: object, params: Mapping[str, Any]) -> None:
        return None


class _Mine:
    name = "market.mine"

    def __init__(self, book: MarketBook) -> None:
        self.book = book

    async def subscribe(self, hub: object, session: _Session, params: Mapping[str, Any]) -> int:
        """State: the caller's market account number."""
        return await self.book.account_of(session.caller.user_id)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class MarketFeed:
    """Registers the market channels on ``hub`` and forwards ``gtx_market`` notifications to subscribers."""

    def __init__(self, pool: asyncpg.Pool, hub: _Hub, book: MarketBook, *, book_interval_s: float = 0.2) -> None:
        self.pool = pool
        self.hub = hub
        self.book = book
        self.book_interval_s = book_interval_s
        self._conn: asyncpg.Connection | None = None
        self._book_dirty = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._book_task: asyncio.Task[None] | None = None
        for name in ("market.book", "market.trades", "market.epochs"):
            hub.add_channel(_Public(name))
        hub.add_channel(_Mine(book))

    async def start(self) -> None:
        self._conn = await self.pool.acquire()
        await self._conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
        self._book_task = asyncio.create_task(self._book_loop())

    async def stop(self) -> None:
        tasks = [*self._tasks, *([self._book_task] if self._book_task else [])]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.remove_listener(NOTIFY_CHANNEL, self._on_notify)
            await self.pool.release(conn)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        task = asyncio.get_running_loop().create_task(self._dispatch(payload))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch(self, payload: str) -> None:
        try:
            event = json.loads(payload)
            await self.handle(event)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("market feed event failed")

    async def handle(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "book":
            self._book_dirty.set()
        elif kind == "order":
            for s in self.hub.subscribers("market.mine"):
                if s.subscriptions.get("market.mine") == event.get("account"):
                    s.event("market.mine", {"kind": "order", "order": event["order"]})
        elif kind == "trades":
            for s in self.hub.subscribers("market.trades"):
                s.event("market.trades", {"count": event.get("count"), "trades": event.get("trades", [])})
            await self._refresh_mine()
        elif kind == "epoch":
            for s in self.hub.subscribers("market.epochs"):
                s.event("market.epochs", event["epoch"])
            self._book_dirty.set()
            await self._refresh_mine()
        elif kind == "account":
            await self._refresh_mine(only=event.get("account"))

    async def _refresh_mine(self, only: int | None = None) -> None:
        """Send balances, open orders and latest fills to ``market.mine`` subscribers (one query set per user)."""
        for s in self.hub.subscribers("market.mine"):
            account = s.subscriptions.get("market.mine")
            if only is not None and account != only:
                continue
            user_id: UUID = s.caller.user_id
            rows = await self.pool.fetch(
                "SELECT asset, available, locked FROM escrow_balances WHERE account = $1 ORDER BY asset", account)
            s.event("market.mine", {"kind": "balances", "balances": [dict(r) for r in rows]})
            s.event("market.mine", {"kind": "orders", "orders": _jsonable(
                [o.__dict__ for o in await self.book.orders_of(user_id, open_only=True, limit=100)])})
            s.event("market.mine", {"kind": "fills", "fills": _jsonable(await self.book.fills_of(user_id, 20))})

    async def _book_loop(self) -> None:
        while True:
            await self._book_dirty.wait()
            self._book_dirty.clear()
            subs = self.hub.subscribers("market.book")
            if subs:
                try:
                    depth = _jsonable(await self.book.depth())
                except (OSError, asyncpg.PostgresError):
                    log.warning("market book depth query failed", exc_info=True)
                    depth = None
                if depth is not None:
                    for s in subs:
                        s.event("market.book", depth)
            await asyncio.sleep(self.book_interval_s)
