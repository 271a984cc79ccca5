"""Read side of minting: an owner's mints (window, Wh, signature, status), and the admin's problem list."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from central.accounting.mint_intent import MINT_KIND, parse_intent_key

_MINTS = """
SELECT e.meter_id, e.window_start_ms, e.window_end_ms, e.export_wh AS amount_wh, e.merkle_root,
       CASE WHEN c.state = 'pending' AND w.user_id IS NULL THEN 'accrued' ELSE c.state END AS status,
       c.signature, c.attempts, c.last_error, c.updated_at, c.key
FROM energy_windows e
JOIN chain_intent c ON c.kind = $1 AND c.key = e.meter_id::text || ':' || e.window_start_ms::text
LEFT JOIN wallets w ON w.user_id = e.owner_id
"""


@dataclass(frozen=True, slots=True)
class MintView:
    key: str
    meter_id: uuid.UUID
    window_start_ms: int
    window_end_ms: int
    amount_wh: int
    #: Merkle root (hex) of the signed readings the window was computed from
    readings_root: str
    #: accrued (owner has no wallet yet) | pending | submitted | confirmed | failed
    status: str
    signature: str | None
    attempts: int
    last_error: str | None
    updated_at: datetime


def _view(r: Any) -> MintView:
    return MintView(
        r["key"],
        r["meter_id"],
        r["window_start_ms"],
        r["window_end_ms"],
        r["amount_wh"],
        bytes(r["merkle_root"]).hex(),
        r["status"],
        r["signature"],
        r["attempts"],
        r["last_error"],
        r["updated_at"],
    )


async def mints_of(
    conn: Any, owner_id: uuid.UUID, *, limit: int = 100, before_start_ms: int | None = None
) -> list[MintView]:
    """The owner's mints, newest window first (page with ``before_start_ms``)."""
    rows = await conn.fetch(
        _MINTS
        + " WHERE e.owner_id = $2 AND ($4::bigint IS NULL OR e.window_start_ms < $4)"
        + " ORDER BY e.window_start_ms DESC, e.meter_id LIMIT $3",
        MINT_KIND,
        owner_id,
        limit,
        before_start_ms,
    )
    return [_view(r) for r in rows]


async def mint_by_key(conn: Any, key: str) -> MintView | None:
    parsed = parse_intent_key(key)
    if parsed is None:
        return None
    meter_id, start_ms = parsed
    row = await conn.fetchrow(
        _MINTS + " WHERE e.meter_id = $2 AND e.window_start_ms = $3", MINT_KIND, meter_id, start_ms
    )
    return _view(row) if row is not None else None


async def minted_wh(conn: Any, owner_id: uuid.UUID | None = None) -> int:
    """Σ Wh of confirmed mints (of one owner, or all)."""
    return int(
        await conn.fetchval(
            "SELECT coalesce(sum((payload->>'wh')::bigint), 0) FROM chain_intent "
            "WHERE kind = $1 AND state = 'confirmed' AND ($2::text IS NULL OR payload->>'owner' = $2)",
            MINT_KIND,
            None if owner_id is None else str(owner_id),
        )
    )
