"""Job leadership through PostgreSQL advisory locks (the :class:`central.jobs.Lock` adapters).

- :class:`XactLock`: ``pg_try_advisory_xact_lock`` inside a transaction on a pooled connection, held for one round
  (released when the transaction ends, even if the process dies mid-round). Any node may win the next round.
- :class:`SessionLock`: ``pg_try_advisory_lock`` on a connection of its own (reopened when it drops). The lock is
  *sticky*: once won it is kept from round to round until the node stops (or its session ends), so a duty has one
  named leader; a round never waits for a pool connection while holding the lock. When the leader's process dies its
  kernel closes the socket and PostgreSQL ends the session at once; when its host vanishes, the session's TCP
  keepalive (``[database] keepalive_*``, sent as session settings) ends it. Another node's next round then wins.
  A leader that is alive but frozen (SIGSTOP, an event loop blocked by a hung call) keeps its socket, and its kernel
  answers the keepalives; so the session is also given ``idle_session_timeout`` = ``lease_s``, and while the lock is
  held a heartbeat on the event loop touches it every ``lease_s / 4``. A frozen loop sends no heartbeat: PostgreSQL
  ends the session after ``lease_s`` and another node takes over. When the frozen node wakes up, a step it was in
  finishes beside its successor's (the duties that use this lock tolerate that: an accounting pass records by
  compare-and-swap, the archive by its partition lock) and its next round finds the session gone and competes again.

Which duty uses which is listed in docs/scaling.md ("Several central nodes").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping

import asyncpg

from central.locks import LockKey

#: What a statement on a session that has ended raises.
_GONE = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


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
    def __init__(
        self, dsn: str, key: LockKey, server_settings: Mapping[str, str] | None = None, *, lease_s: float = 30.0
    ) -> None:
        if lease_s <= 0:
            raise ValueError("lease_s must be positive")
        self._dsn = dsn
        self.key = key
        self.lease_s = lease_s
        self._settings = {**(server_settings or {}), "idle_session_timeout": str(round(lease_s * 1000))}
        self._conn: asyncpg.Connection | None = None
        self._held = False
        self._use = asyncio.Lock()  # one statement at a time on the connection (rounds and heartbeats)
        self._heartbeat: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[bool]:
        async with self._use:
            if self._held and self._conn is not None and not self._conn.is_closed():
                try:  # still leader? A session that ended (dropped, or idled out while frozen) lost the lock.
                    await self._conn.fetchval("SELECT 1")
                except _GONE:
                    self._conn.terminate()
            if self._conn is None or self._conn.is_closed():
                self._held = False
                self._conn = await asyncpg.connect(self._dsn, server_settings=self._settings)
            if not self._held:
                self._held = bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key.key))
            if self._held and (self._heartbeat is None or self._heartbeat.done()):
                self._heartbeat = asyncio.create_task(self._beat(self._conn), name=f"lease:{self.key.name}")
        yield self._held

    async def _beat(self, conn: asyncpg.Connection) -> None:
        """Touch the session while the lock is held, so only a frozen event loop lets it idle out."""
        while True:
            await asyncio.sleep(self.lease_s / 4)
            async with self._use:
                current = self._conn is conn and self._held
                if not current or conn.is_closed():
                    return
                try:
                    await conn.fetchval("SELECT 1")
                except _GONE:
                    return  # the session is gone with the lock; the next round reconnects and competes again

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
            self._heartbeat = None
        self._held = False
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
