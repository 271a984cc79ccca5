from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from ingest_db import Seed, migrated_pool


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await migrated_pool(pg_dsn)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def seed(pool: asyncpg.Pool) -> Seed:
    return Seed(pool)
