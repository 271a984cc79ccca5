"""Job leadership through PostgreSQL advisory locks (the :class:`central.jobs.Lock` adapters).

- :class:`XactLock`: ``pg_try_advisory_xact_lock`` inside a transaction on a pooled connection, held for one round
  (released when the transaction ends, even if the process dies mid-round).
- :class:`SessionLock`: ``pg_try_advisory_lock`` on a connection of its own (reopened when it drops), held for one
  round and released after it, so that a round never waits for a pool connection while holding one.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

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
    def __init__(self, dsn: str, key: LockKey) -> None:
        self._dsn = dsn
        self.key = key
        self._conn: asyncpg.Connection | None = None

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self._dsn)
        conn = self._conn
        got = bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key.key))
        try:
            yield got
        finally:
            if got:
                await conn.execute("SELECT pg_advisory_unlock($1)", self.key.key)

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
