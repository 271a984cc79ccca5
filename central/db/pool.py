"""The asyncpg connection pool (built only by the composition root)."""

from __future__ import annotations

import asyncpg

from central.config import DatabaseConfig
from central.errors import CentralError


class DatabaseError(CentralError):
    """The database cannot be reached or refused an operation; the message never carries the DSN's password."""


async def create_pool(config: DatabaseConfig, *, replica: bool = False) -> asyncpg.Pool:
    """Open the pool (of the primary, or of the read replica: ``replica=True``), translating connection failures into
    :class:`DatabaseError`."""
    try:
        pool = await asyncpg.create_pool(
            config.replica_dsn if replica else config.dsn,
            min_size=1 if replica else config.pool_min,
            max_size=config.replica_pool_max if replica else config.pool_max,
            command_timeout=config.command_timeout_s,
            server_settings=config.server_settings(),
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL: {type(exc).__name__}: {_safe(exc)}") from None
    assert pool is not None
    return pool


def _safe(exc: BaseException) -> str:
    text = str(exc)
    return text.split("password", 1)[0].strip() or type(exc).__name__
