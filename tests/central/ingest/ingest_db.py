"""Test helper: identity rows for the ingest tests' gateways, and what ingest stored."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import asyncpg

from tests.central.gateway import Gateway
from tests.central.pg import REGISTERED_MS, add_device, add_meter, add_user


@dataclass
class Seed:
    pool: asyncpg.Pool
    meters: dict[str, uuid.UUID] = field(default_factory=dict)

    async def user(self, role: str = "prosumer") -> uuid.UUID:
        return await add_user(self.pool, role)

    async def device(
        self, gw: Gateway, status: str = "verified", *meters: str, owner: uuid.UUID | None = None,
        registered_ms: int = REGISTERED_MS,
    ) -> None:
        await add_device(self.pool, gw.device_id, gw.key.public_key, status, registered_ms=registered_ms)
        for serial in meters:
            self.meters[serial] = await add_meter(self.pool, gw.device_id, serial, owner)

    async def stored(self, device_id: str) -> list[int]:
        rows = await self.pool.fetch("SELECT seq FROM readings WHERE device_id = $1 ORDER BY seq", device_id)
        return [r["seq"] for r in rows]

    async def count(self) -> int:
        return int(await self.pool.fetchval("SELECT count(*) FROM readings"))

