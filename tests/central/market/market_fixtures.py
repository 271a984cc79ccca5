"""Shared helpers for the market tests: a migrated real PostgreSQL, users with linked wallets, a settable clock."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from solders.keypair import Keypair

from central.db import migrate_dsn

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    t: datetime = T0

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


async def migrated_pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate_dsn(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def make_user(pool: asyncpg.Pool, role: str = "prosumer", wallet: Keypair | None = None) -> uuid.UUID:
    """A user row (central-core's table) and, unless ``wallet`` is None and ``link`` false, a linked wallet row."""
    uid = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO users (id, email, password_hash, role) VALUES ($1, $2, 'x', $3)",
            uid,
            f"{uid.hex}@example.test",
            role,
        )
        if wallet is not None:
            nonce = uuid.uuid4().bytes
            await conn.execute(
                "INSERT INTO wallet_link_nonces (nonce, user_id, wallet, expires_at, used_at) "
                "VALUES ($1, $2, $3, now() + interval '1 hour', now())",
                nonce,
                uid,
                str(wallet.pubkey()),
            )
            await conn.execute(
                "INSERT INTO wallets (user_id, address, linked_at, link_nonce) VALUES ($1, $2, now(), $3)",
                uid,
                str(wallet.pubkey()),
                nonce,
            )
    return uid
