"""Reads from a PostgreSQL streaming-replication standby (``[database] replica_dsn``), with bounded staleness.

Which reads may go to the standby: bulk data a user does not write (readings, energy windows), never what decides
access or what the user just changed. So a route checks ownership on the primary (a claim the user just made is
seen at once: read-your-writes) and runs its heavy query on :meth:`ReadPools.bulk`, which is the standby while its
replay lag is at most ``replica_max_lag_s`` and the primary otherwise (a standby that lags, stopped replaying or cannot
be reached is skipped; the lag is sampled at most once a second).

The lag is 0 while the standby streams from the primary and has replayed everything it received (an idle primary
sends nothing, so the age of the last replayed transaction means nothing then), else the age of the last replayed
transaction. A standby whose WAL receiver is not running (the primary unreachable, the WAL it needs already removed)
has "replayed everything it received" too, and would look in sync forever: it is judged by that age instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import asyncpg

log = logging.getLogger(__name__)

LAG_SQL = (
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_stat_wal_receiver)"
    " AND pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0.0 "
    "ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 1e9)::float8 END"
)


class ReadPools:
    def __init__(
        self, primary: asyncpg.Pool, replica: asyncpg.Pool | None = None, *, max_lag_s: float = 5.0,
        sample_every_s: float = 1.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag_s = max_lag_s
        self._every = sample_every_s
        self._clock = clock
        self._sampled_at = -float("inf")
        self._lag: float | None = None

    async def lag_s(self) -> float | None:
        """The standby's replay lag (s), None without a standby or when it cannot be asked (sampled, cached)."""
        if self.replica is None:
            return None
        now = self._clock()
        if now - self._sampled_at >= self._every:
            self._sampled_at = now
            try:
                self._lag = float(await self.replica.fetchval(LAG_SQL))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("read replica unavailable; reading from the primary", extra={"error": type(exc).__name__})
                self._lag = None
        return self._lag

    async def bulk(self) -> asyncpg.Pool:
        """The pool for bulk reads: the standby when it is fresh enough, else the primary."""
        lag = await self.lag_s()
        if self.replica is not None and lag is not None and lag <= self.max_lag_s:
            return self.replica
        return self.primary
