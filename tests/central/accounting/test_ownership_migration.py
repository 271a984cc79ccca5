"""Migration 0032 backfills the ownership periods of meters claimed before it (their current owners)."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg

from central.db.migrations import MIGRATIONS_DIR, migrate_dsn
from tests.central.pg import add_device, add_meter, add_user


async def test_backfill_opens_a_period_for_each_current_owner(empty_pg_dsn: str, tmp_path: Path) -> None:
    for f in sorted(MIGRATIONS_DIR.glob("00[0-3][0-9]_*.sql")):
        if f.name < "0032":
            shutil.copy(f, tmp_path / f.name)
    await migrate_dsn(empty_pg_dsn, tmp_path)
    pool = await asyncpg.create_pool(empty_pg_dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        owner = await add_user(pool)
        await add_device(pool, "dev-backfill", bytes(32))
        owned = await add_meter(pool, "dev-backfill", "M-OWNED", owner)
        await add_meter(pool, "dev-backfill", "M-FREE", None)
        claimed_at = await pool.fetchval("SELECT claimed_at FROM meters WHERE id = $1", owned)
        shutil.copy(MIGRATIONS_DIR / "0032_meter_ownership.sql", tmp_path)
        assert await migrate_dsn(empty_pg_dsn, tmp_path) == ["0032_meter_ownership.sql"]
        rows = await pool.fetch("SELECT meter_id, owner_id, claimed_at, released_at FROM meter_ownerships")
        assert [tuple(r) for r in rows] == [(owned, owner, claimed_at, None)]
    finally:
        await pool.close()
