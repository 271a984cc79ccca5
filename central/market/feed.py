"""Live market feed on the shared WebSocket (``central.readings.live.LiveHub``), fanned out across worker processes
through PostgreSQL LISTEN/NOTIFY on ``gtx_market`` (every process's hub listens; the writer's NOTIFY reaches all).

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
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol
from uuid import UUID

import asyncpg

from central.market.book import MarketBook
from central.market.events import NOTIFY_CHANNEL

log = logging.getLogger(__name__)


class _Session(Protocol):
    @property
    def caller(self) -> Any: ...

    @property
    def subscriptions(self) -> dict[str, Any]: ...

    def event(self, channel: str, data: Mapping[str, Any]) -> bool: ...


class _Hub(Protocol):
    def add_channel(self, channel: Any) -> None: ...

    def listen(self, pg_channel: str, callback: Callable[[str], Awaitable[None]]) -> None: ...

    def subscribers(self, channel: str) -> list[Any]: ...


class _Public:
    def __init__(self, name: str) -> None:
        self.name = name

    async def subscribe(self, hub: object, session: object, params: Mapping[str, Any]) -> None:
        """Anyone logged in may watch the public market."""


class _Mine:
    name = "market.mine"

    def __init__(self, feed: MarketFeed) -> None:
        self.feed = feed

    async def subscribe(self, hub: object, session: _Session, params: Mapping[str, Any]) -> int:  # noqa: ARG002
        """State: the caller's market account number."""
        return await self.feed.attached().account_of(session.caller.user_id)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


class MarketFeed:
    """Registers the market channels and a ``gtx_market`` listener on ``hub`` (when ``central.bootstrap`` builds
    it, before the hub starts), then forwards notifications to subscribers once ``attach``-ed to the running market."""

    def __init__(self, hub: _Hub, *, book_interval_s: float = 0.2) -> None:
        self.hub = hub
        self.book_interval_s = book_interval_s
        self._book: MarketBook | None = None
        self._book_dirty = asyncio.Event()
        self._book_task: asyncio.Task[None] | None = None
        for name in ("market.book", "market.trades", "market.epochs"):
            hub.add_channel(_Public(name))
        hub.add_channel(_Mine(self))
        hub.listen(NOTIFY_CHANNEL, self.on_payload)

    def attached(self) -> MarketBook:
        if self._book is None:
            raise RuntimeError("market feed used before the market started")
        return self._book

    async def start(self, book: MarketBook) -> None:
        self._book = book
        self._book_task = asyncio.create_task(self._book_loop())

    async def stop(self) -> None:
        task, self._book_task = self._book_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def on_payload(self, payload: str) -> None:
        if self._book is not None:
            await self.handle(json.loads(payload))

    async def handle(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind == "book":
            self._book_dirty.set()
        elif kind == "order":
            self._book_dirty.set()
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
            rows = await self.attached().pool.fetch(
                "SELECT asset, available, locked FROM escrow_balances WHERE account = $1 ORDER BY asset", account
            )
            s.event("market.mine", {"kind": "balances", "balances": [dict(r) for r in rows]})
            s.event(
                "market.mine",
                {
                    "kind": "orders",
                    "orders": _jsonable(
                        [o.__dict__ for o in await self.attached().orders_of(user_id, open_only=True, limit=100)]
                    ),
                },
            )
            s.event("market.mine", {"kind": "fills", "fills": _jsonable(await self.attached().fills_of(user_id, 20))})

    async def _book_loop(self) -> None:
        while True:
            await self._book_dirty.wait()
            self._book_dirty.clear()
            subs = self.hub.subscribers("market.book")
            if subs:
                try:
                    depth = _jsonable(await self.attached().depth())
                except (OSError, asyncpg.PostgresError):
                    log.warning("market book depth query failed", exc_info=True)
                    depth = None
                if depth is not None:
                    for s in subs:
                        s.event("market.book", depth)
            await asyncio.sleep(self.book_interval_s)
