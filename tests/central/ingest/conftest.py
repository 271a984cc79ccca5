from __future__ import annotations

import asyncpg
import pytest
from ingest_db import Seed


@pytest.fixture
def seed(pool: asyncpg.Pool) -> Seed:
    return Seed(pool)
