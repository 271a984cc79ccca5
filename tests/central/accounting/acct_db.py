"""Test helper: a migrated database with users, devices and meters (identity's tables, 0001) seeded by SQL."""

from __future__ import annotations

import uuid

import asyncpg

from central.db.migrations import migrate_dsn


async def migrated_pool(dsn: str, max_size: int = 4) -> asyncpg.Pool:
    await migrate_dsn(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=max_size)
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


async def add_device(pool: asyncpg.Pool, device_id: str, public_key: bytes, status: str = "verified") -> None:
    await pool.execute(
        "INSERT INTO devices (device_id, public_key, status, verified_at) VALUES ($1, $2, $3, now())",
        device_id,
        public_key,
        status,
    )


async def add_meter(pool: asyncpg.Pool, device_id: str, serial: str, owner: uuid.UUID | None) -> uuid.UUID:
    mid = uuid.uuid4()
    await pool.execute(
        "INSERT INTO meters (id, serial, device_id, model, protocol, source, meter_key_hash, owner_id, claimed_at) "
        "VALUES ($1, $2, $3, 'sim', 'modbus', 'solar', 'x', $4, CASE WHEN $4::uuid IS NULL THEN NULL ELSE now() END)",
        mid,
        serial,
        device_id,
        owner,
    )
    return mid
