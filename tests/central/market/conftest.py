"""Fixtures shared by the market tests: ``env``, the central app with the ledger, readings and market subsystems on a
test server (2-second epochs, fast background jobs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from central.wiring import ledger as ledger_wiring
from central.wiring import market as market_wiring
from central.wiring import readings as readings_wiring
from tests.central.app_env import make_config
from tests.central.market.http_env import FAST_LEDGER, FAST_MARKET, Env, serving


@pytest.fixture
async def env(pg_dsn: str, tmp_path: Path) -> AsyncIterator[Env]:
    config = make_config(pg_dsn, tmp_path, database={"pool_max": 8}, ledger=FAST_LEDGER, market=FAST_MARKET)
    async with serving(config, (ledger_wiring.SUBSYSTEM, readings_wiring.SUBSYSTEM, market_wiring.SUBSYSTEM)) as env:
        yield env
