"""Fixtures shared by the central tests: ``pool``, a connection pool on the per-test database with every migration
applied (``pg_dsn``, a clone of the migrated template; the ledger tests override it with the outbox's own schema), and
``proxies``, TCP proxies in front of JSON-RPC providers (the failover tests), stopped afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from tests.central.ledger.proxies import Proxies
from tests.central.pg import open_pool


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await open_pool(pg_dsn)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def proxies() -> Iterator[Proxies]:
    p = Proxies()
    try:
        yield p
    finally:
        p.stop()
