"""Wallet linking on PostgreSQL: the same checks as the in-memory store, plus atomicity of a refused link."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from acct_db import add_user, migrated_pool
from test_acct_wallet_link import check_wallet_linking

from central.wallets.pg_store import PgWalletStore


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await migrated_pool(pg_dsn)
    try:
        yield p
    finally:
        await p.close()


async def test_wallet_linking_postgres(pool: asyncpg.Pool) -> None:
    alice, mallory = await add_user(pool), await add_user(pool)
    await check_wallet_linking(PgWalletStore(pool), alice, mallory)
    # the refused link (wallet taken) left mallory's nonce unused and wrote no history for her
    assert await pool.fetchval("SELECT count(*) FROM wallet_links WHERE user_id = $1", mallory) == 0
    assert await pool.fetchval("SELECT count(*) FROM wallet_links WHERE user_id = $1", alice) == 2
