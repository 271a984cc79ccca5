"""Test helpers shared by the central tests: a pool on a test database (``pg_dsn`` is already migrated, cloned from
the template in ``tests/conftest.py``) and identity rows (users, devices, meters; tables of 0001) seeded by SQL."""

from __future__ import annotations

import uuid

import asyncpg


async def open_pool(dsn: str, *, min_size: int = 1, max_size: int = 4) -> asyncpg.Pool:
    """A pool on ``dsn`` (``pg_dsn`` is migrated already; nothing is applied here)."""
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
    assert pool is not None
    return pool


async def add_user(pool: asyncpg.Pool, role: str = "prosumer") -> uuid.UUID:
    uid = uuid.uuid4()
    await pool.execute(
        "INSERT INTO users (id, email, password_hash, role, email_verified_at) VALUES ($1, $2, 'x', $3, now())",
        uid,
        f"{uid.hex[:12]}@example.test",
        role,
    )
    return uid


#: Registration time of test gateways: before every fixed test timestamp (``T0_MS`` is in 2026-09), since ingest
#: rejects readings timestamped before their device's registration.
REGISTERED_MS = 1_577_836_800_000  # 2020-01-01


async def add_device(
    pool: asyncpg.Pool, device_id: str, public_key: bytes, status: str = "verified", *,
    registered_ms: int = REGISTERED_MS,
) -> None:
    """A gateway row registered at ``registered_ms``; ``verified_at`` is set only when the status is ``verified``."""
    await pool.execute(
        "INSERT INTO devices (device_id, public_key, status, verified_at, created_at) VALUES ($1, $2, $3, "
        "CASE WHEN $3 = 'verified' THEN now() END, to_timestamp($4::bigint / 1000.0))",
        device_id,
        public_key,
        status,
        registered_ms,
    )


async def add_meter(
    pool: asyncpg.Pool, device_id: str, serial: str, owner: uuid.UUID | None, *, source: str | None = "solar",
    meter_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """A meter behind ``device_id``; claimed (``claimed_at`` set) when it has an owner."""
    mid = uuid.uuid4() if meter_id is None else meter_id
    await pool.execute(
        "INSERT INTO meters (id, serial, device_id, model, protocol, source, meter_key_hash, owner_id, claimed_at) "
        "VALUES ($1, $2, $3, 'sim', 'modbus', $4, 'x', $5, CASE WHEN $5::uuid IS NULL THEN NULL ELSE now() END)",
        mid,
        serial,
        device_id,
        source,
        owner,
    )
    return mid
