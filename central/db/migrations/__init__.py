"""Versioned SQL migrations: ``NNNN_name.sql`` files in this directory, applied in name order.

Each file runs in its own transaction and is recorded in ``schema_migrations`` (name, sha256, time). The whole run
holds a PostgreSQL advisory lock, so any number of processes may call :func:`apply_migrations` at once: one applies,
the others wait and then find nothing left to do. A recorded migration whose file has since changed is an error
(migrations are append-only; write a new one).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from central import locks
from central.db.pool import connect
from central.errors import CentralError

MIGRATIONS_DIR = Path(__file__).resolve().parent
#: Advisory-lock key for the migration run (``central.locks``).
MIGRATION_LOCK_KEY = locks.MIGRATIONS.key
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

log = logging.getLogger(__name__)


class MigrationError(CentralError):
    """A migration file is malformed, changed after being applied, or failed to apply."""


@dataclass(frozen=True)
class Migration:
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """All ``NNNN_name.sql`` files of ``directory`` in name order; duplicate numbers are an error."""
    found: list[Migration] = []
    numbers: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"migration file name {path.name!r} must look like NNNN_lower_case_name.sql")
        if m.group(1) in numbers:
            raise MigrationError(f"migrations {numbers[m.group(1)]} and {path.name} share number {m.group(1)}")
        numbers[m.group(1)] = path.name
        found.append(Migration(path.name, path.read_text(encoding="utf-8")))
    return found


async def apply_migrations(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations over ``conn``; returns the names applied by this call."""
    migrations = discover_migrations(directory)
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        rows = await conn.fetch("SELECT name, checksum FROM schema_migrations")
        done = {r["name"]: r["checksum"] for r in rows}
        for mig in migrations:
            if mig.name in done:
                if done[mig.name] != mig.checksum:
                    raise MigrationError(f"migration {mig.name} changed after it was applied; add a new migration")
                continue
            try:
                async with conn.transaction():
                    await conn.execute(mig.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", mig.name, mig.checksum
                    )
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"migration {mig.name} failed: {type(exc).__name__}: {exc}") from None
            log.info("migration applied", extra={"migration": mig.name})
            applied_now.append(mig.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return applied_now


async def migrate_dsn(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Open one connection to ``dsn``, apply pending migrations, close it."""
    conn = await connect(dsn)
    try:
        return await apply_migrations(conn, directory)
    finally:
        await conn.close()
