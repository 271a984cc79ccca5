"""Job leadership through PostgreSQL advisory locks (the :class:`central.jobs.Lock` adapters).

- :class:`XactLock`: ``pg_try_advisory_xact_lock`` inside a transaction on a pooled connection, held for one round
  (released when the transaction ends, even if the process dies mid-round). Any node may win the next round.
- :class:`SessionLock`: ``pg_try_advisory_lock`` on a connection of its own (reopened when it drops). The lock is
  *sticky*: once won it is kept from round to round until the node stops (or its session ends), so a duty has one
  named leader; a round never waits for a pool connection while holding the lock. When the leader's process dies its
  kernel closes the socket and PostgreSQL ends the session at once; when its host vanishes, the session's TCP
  keepalive (``[database] keepalive_*``, sent as session settings) ends it. Another node's next round then wins.

Which duty uses which is listed in docs/scaling.md ("Several central nodes").
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping

import asyncpg

from central.locks import LockKey


class XactLock:
    def __init__(self, pool: asyncpg.Pool, key: LockKey) -> None:
        self._pool = pool
        self.key = key

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", self.key.key))

    async def close(self) -> None:
        return None


class SessionLock:
    def __init__(self, dsn: str, key: LockKey, server_settings: Mapping[str, str] | None = None) -> None:
        self._dsn = dsn
        self.key = key
        self._settings = dict(server_settings or {})
        self._conn: asyncpg.Connection | None = None
        self._held = False

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        if self._conn is None or self._conn.is_closed():
            self._held = False
            self._conn = await asyncpg.connect(self._dsn, server_settings=self._settings)
        if not self._held:
            self._held = bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key.key))
        else:  # still leader? (a dropped session loses the lock; the next round reconnects and competes again)
            await self._conn.fetchval("SELECT 1")
        yield self._held

    async def close(self) -> None:
        self._held = False
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
