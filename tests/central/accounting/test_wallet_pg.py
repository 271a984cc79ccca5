"""Wallet linking on PostgreSQL: the same checks as the in-memory store, plus atomicity of a refused link."""

from __future__ import annotations

import asyncpg

from central.wallets.pg_store import PgWalletStore
from tests.central.accounting.wallet_cases import check_wallet_linking
from tests.central.pg import add_user


async def test_wallet_linking_postgres(pool: asyncpg.Pool) -> None:
    alice, mallory = await add_user(pool), await add_user(pool)
    await check_wallet_linking(PgWalletStore(pool), alice, mallory)
    # the refused link (wallet taken) left mallory's nonce unused and wrote no history for her
    assert await pool.fetchval("SELECT count(*) FROM wallet_links WHERE user_id = $1", mallory) == 0
    assert await pool.fetchval("SELECT count(*) FROM wallet_links WHERE user_id = $1", alice) == 2
