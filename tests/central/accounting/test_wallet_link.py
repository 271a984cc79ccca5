"""Wallet linking against the in-memory store (the PostgreSQL adapter runs the same checks in test_wallet_pg)."""

from __future__ import annotations

import uuid

from central.wallets.store import InMemoryWalletStore
from tests.central.accounting.wallet_cases import check_wallet_linking


async def test_wallet_linking_in_memory() -> None:
    await check_wallet_linking(InMemoryWalletStore(), uuid.uuid4(), uuid.uuid4())
