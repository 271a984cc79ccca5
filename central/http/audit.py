"""The admin audit log: every state-changing request by an admin or a REC authority is recorded (table
``admin_audit``, migration 0004), whichever route it calls — so a new admin route is audited without anyone
remembering to.

The row is written before the handler runs (status NULL) and completed with the answer's status (and error code)
after it, so an action whose process died half way is still on record. Request bodies are not stored (they may hold
passwords or keys); the route template and its path parameters name the action and its target. Domain tables keep
their own history beside it (``device_events``, ``meter_claim_attempts``, ``wallet_links``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from uuid import UUID

import asyncpg
from aiohttp import web

from central.roles import Role

#: Roles whose every state-changing request is audited.
AUDITED_ROLES = frozenset({Role.ADMIN, Role.REC_AUTHORITY})
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def _clean(value: str) -> str:
    """A path parameter as stored: printable text only (no NUL or lone surrogate, which jsonb refuses), capped."""
    return "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else "\ufffd" for c in value[:256])


def audited(method: str, role: Role) -> bool:
    return method.upper() not in _READ_METHODS and role in AUDITED_ROLES


class AuditLog:
    """Writes ``admin_audit`` rows on the app's pool (given as a getter: the pool opens at start-up). If the row
    cannot be written the action does not run (the error middleware answers 500): no unaudited admin action."""

    def __init__(self, pool: Callable[[], asyncpg.Pool]) -> None:
        self._pool = pool

    async def begin(self, *, actor: UUID, role: Role, method: str, route: str, params: dict[str, str],
                    address: str) -> int:
        row_id = await self._pool().fetchval(
            "INSERT INTO admin_audit (actor_id, actor_role, method, route, params, address) "
            "VALUES ($1, $2, $3, $4, $5::jsonb, $6) RETURNING id",
            actor, role.value, method, route, json.dumps({k: _clean(v) for k, v in params.items()}, sort_keys=True),
            _clean(address[:64]))
        assert isinstance(row_id, int)
        return row_id

    async def finish(self, row_id: int, status: int, error_code: str | None) -> None:
        await self._pool().execute(
            "UPDATE admin_audit SET status = $2, error_code = $3, finished_at = now() WHERE id = $1",
            row_id, status, error_code)


AUDIT = web.AppKey("gtx.audit", AuditLog)
