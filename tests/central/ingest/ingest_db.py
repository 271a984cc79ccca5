"""Test helper: a migrated database with users, devices and meters seeded by SQL (identity's tables, 0001)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import asyncpg
from ingest_chain import Gateway

from central.db.migrations import migrate_dsn


@dataclass
class Seed:
    pool: asyncpg.Pool
    meters: dict[str, uuid.UUID] = field(default_factory=dict)

    async def user(self, role: str = "prosumer") -> uuid.UUID:
        uid = uuid.uuid4()
        await self.pool.execute(
            "INSERT INTO users (id, email, password_hash, role, email_verified_at) VALUES ($1, $2, 'x', $3, now())",
            uid, f"{uid.hex[:12]}@example.test", role,
        )
        return uid

    async def device(self, gw: Gateway, status: str = "verified", *meters: str, owner: uuid.UUID | None = None) -> None:
        await self.pool.execute(
            "INSERT INTO devices (device_id, public_key, status, verified_at) VALUES ($1, $2, $3, "
            "CASE WHEN $3 = 'verified' THEN now() END)",
            gw.device_id, gw.key.public_key, status,
        )
        for serial in meters:
            mid = uuid.uuid4()
            await self.pool.execute(
                "INSERT INTO meters (id, serial, device_id, model, protocol, source, meter_key_hash, owner_id, "
                "claimed_at) VALUES ($1, $2, $3, 'sim', 'modbus', 'solar', 'x', $4, "
                "CASE WHEN $4::uuid IS NULL THEN NULL ELSE now() END)",
                mid, serial, gw.device_id, owner,
            )
            self.meters[serial] = mid

    async def stored(self, device_id: str) -> list[int]:
        rows = await self.pool.fetch("SELECT seq FROM readings WHERE device_id = $1 ORDER BY seq", device_id)
        return [r["seq"] for r in rows]

    async def count(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM readings"))


async def migrated_pool(dsn: str) -> asyncpg.Pool:
    await migrate_dsn(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    assert pool is not None
    return pool
