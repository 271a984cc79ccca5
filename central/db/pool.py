"""The asyncpg connection pools (built only by the composition root).

The main pool serves everything. *Bulk pools* serve only the readings API's read statements (the read replica's
pool, and a few connections to the primary kept for those statements, ``[database] bulk_pool_max``); they differ in
two ways, measured with ``bench/api.py`` (a 10-row readings page: PostgreSQL 754 -> 262 us per request):

- ``plan_cache_mode = force_generic_plan``: those statements read the partitioned ``reading_rows``; left to choose,
  PostgreSQL keeps planning each execution for its parameters (a custom plan is always estimated cheaper than one
  covering every partition), which costs more than running it; the generic plan prunes partitions when it runs.
- no session reset on release: asyncpg sends ``SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``
  each time a connection goes back to a pool (a round trip, ~80 us of PostgreSQL and ~80 us of Python per
  statement), to undo session state a borrower may have left; those statements leave none (single SELECTs: no
  advisory locks, cursors, LISTEN or SET). An open transaction is still rolled back (asyncpg always does that).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from central.config import DatabaseConfig
from central.errors import CentralError


class DatabaseError(CentralError):
    """The database cannot be reached or refused an operation; the message never carries the DSN's password."""


async def create_pool(config: DatabaseConfig, *, replica: bool = False, bulk: bool = False) -> asyncpg.Pool:
    """Open the main pool, the read replica's (``replica=True``, a bulk pool) or the primary's bulk pool
    (``bulk=True``), translating connection failures into :class:`DatabaseError`."""
    bulk = bulk or replica
    settings = config.server_settings()
    if bulk:
        settings["plan_cache_mode"] = "force_generic_plan"
    try:
        pool = await asyncpg.create_pool(
            config.replica_dsn if replica else config.dsn,
            min_size=config.pool_min if not bulk else 1,
            max_size=config.replica_pool_max if replica else config.bulk_pool_max if bulk else config.pool_max,
            command_timeout=config.command_timeout_s,
            server_settings=settings,
            reset=_keep_session if bulk else None,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise connect_error(exc) from None
    assert pool is not None
    return pool


async def connect(dsn: str, **kwargs: Any) -> asyncpg.Connection:
    """One connection to ``dsn`` (commands, migrations, leadership), translating a failure to connect into
    :class:`DatabaseError` with what to do (one line for the command line, never a traceback)."""
    try:
        return await asyncpg.connect(dsn, **kwargs)
    except (OSError, asyncpg.PostgresError) as exc:
        raise connect_error(exc) from None


def connect_error(exc: BaseException) -> DatabaseError:
    """The one message for a failed connection: the cause (without the DSN's password) and what to check."""
    if isinstance(exc, OSError):
        hint = "is PostgreSQL running, and do database.dsn's host and port point at it?"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):
        hint = "create the database (createdb) or fix database.dsn"
    elif isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError | asyncpg.InvalidPasswordError):
        hint = "check database.dsn's user and password (a ~/.pgpass-style file)"
    else:
        hint = "check database.dsn"
    return DatabaseError(f"cannot connect to PostgreSQL: {type(exc).__name__}: {_safe(exc)} ({hint})")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A bulk pool's reset: nothing beyond what asyncpg always does (roll back an open transaction)."""


def _safe(exc: BaseException) -> str:
    text = str(exc)
    return text.split("password", 1)[0].strip() or type(exc).__name__
