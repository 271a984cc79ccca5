"""PostgreSQL adapter of the wallet store (tables from migration 0030)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from central.wallets.errors import NonceRejectedError, WalletTakenError
from central.wallets.store import LinkedWallet


class PgWalletStore:
    def __init__(self, pool: Any) -> None:
        self._pool = pool

    async def add_nonce(self, nonce: bytes, user_id: uuid.UUID, wallet: str, expires: datetime) -> None:
        try:
            await self._pool.execute(
                "INSERT INTO wallet_link_nonces (nonce, user_id, wallet, expires_at) VALUES ($1, $2, $3, $4)",
                nonce,
                user_id,
                wallet,
                expires,
            )
        except asyncpg.UniqueViolationError as exc:
            raise NonceRejectedError("nonce already issued") from exc

    async def open_nonces(self, user_id: uuid.UUID, now: datetime) -> int:
        return int(
            await self._pool.fetchval(
                "SELECT count(*) FROM wallet_link_nonces WHERE user_id = $1 AND used_at IS NULL AND expires_at > $2",
                user_id,
                now,
            )
        )

    async def link(self, nonce: bytes, user_id: uuid.UUID, wallet: str, now: datetime) -> LinkedWallet:
        async with self._pool.acquire() as conn, conn.transaction():
            used = await conn.fetchval(
                """UPDATE wallet_link_nonces SET used_at = $4
                   WHERE nonce = $1 AND user_id = $2 AND wallet = $3 AND used_at IS NULL AND expires_at > $4
                   RETURNING nonce""",
                nonce,
                user_id,
                wallet,
                now,
            )
            if used is None:
                raise NonceRejectedError("link nonce unknown, used, expired or issued for something else")
            try:
                await conn.execute(
                    """INSERT INTO wallets (user_id, address, linked_at, link_nonce) VALUES ($1, $2, $3, $4)
                       ON CONFLICT (user_id) DO UPDATE
                       SET address = EXCLUDED.address, linked_at = EXCLUDED.linked_at,
                           link_nonce = EXCLUDED.link_nonce""",
                    user_id,
                    wallet,
                    now,
                    nonce,
                )
            except asyncpg.UniqueViolationError as exc:
                raise WalletTakenError("wallet already linked to another account") from exc
            await conn.execute(
                "INSERT INTO wallet_links (user_id, address, nonce, linked_at) VALUES ($1, $2, $3, $4)",
                user_id,
                wallet,
                nonce,
                now,
            )
        return LinkedWallet(user_id, wallet, now)

    async def get(self, user_id: uuid.UUID) -> LinkedWallet | None:
        row = await self._pool.fetchrow("SELECT address, linked_at FROM wallets WHERE user_id = $1", user_id)
        if row is None:
            return None
        return LinkedWallet(user_id, row["address"], row["linked_at"])
