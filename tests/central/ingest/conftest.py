"""Fixtures of the ingest tests: identity rows on the migrated test database (``seed``), and the central app with
identity, ingest and readings on the private broker (``central``; ``config`` is its configuration)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from central.config import CentralConfig
from central.wiring import identity as identity_wiring
from central.wiring import ingest as ingest_wiring
from central.wiring import readings as readings_wiring
from tests.central.app_env import make_config, running_app
from tests.central.ingest.ingest_db import Seed

SUBSYSTEMS = (identity_wiring.SUBSYSTEM, ingest_wiring.SUBSYSTEM, readings_wiring.SUBSYSTEM)


@pytest.fixture
def seed(pool: asyncpg.Pool) -> Seed:
    return Seed(pool)


@pytest.fixture
def config(pg_dsn: str, broker: Any, tmp_path: Path) -> CentralConfig:
    return make_config(pg_dsn, tmp_path, broker)


@pytest.fixture
async def central(config: CentralConfig) -> AsyncIterator[TestClient[Any, Any]]:
    async with running_app(config, SUBSYSTEMS) as client:
        yield client
