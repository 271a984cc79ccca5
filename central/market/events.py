"""Database helpers shared by the market services: market events (LISTEN/NOTIFY) and ordered escrow row locks."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

#: LISTEN/NOTIFY channel of market events (JSON payloads, see ``central.market.feed``).
NOTIFY_CHANNEL = "gtx_market"


async def notify(conn: asyncpg.Connection, event: dict[str, Any]) -> None:
    """Queue a market event (delivered at commit). Payloads stay small (< 8000 bytes)."""
    await conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, json.dumps(event, default=str))


async def lock_balances(conn: asyncpg.Connection, table: str) -> None:
    """Row-lock the escrow balances named in temp ``table`` (account, asset) in key order (no deadlocks between
    the clearer, settlement and deposits)."""
    await conn.execute(
        f"SELECT 1 FROM escrow_balances b JOIN (SELECT DISTINCT account, asset FROM {table}) t "  # noqa: S608
        "ON b.account = t.account AND b.asset = t.asset ORDER BY b.account, b.asset FOR UPDATE OF b"
    )
