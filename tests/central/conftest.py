"""Fixtures shared by the central tests: ``pool``, a connection pool on the per-test database with every migration
applied (subsystems that need another schema override it in their own conftest)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.central.pg import migrated_pool


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await migrated_pool(pg_dsn)
    try:
        yield p
    finally:
        await p.close()
