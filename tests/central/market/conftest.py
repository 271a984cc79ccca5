"""Fixtures shared by the market tests: ``env``, the central app with the ledger, readings and market subsystems on a
test server (2-second epochs, fast background jobs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from central.app import create_app
from central.wiring import ledger as ledger_wiring
from central.wiring import market as market_wiring
from central.wiring import readings as readings_wiring
from tests.central.app_env import ledger_of, make_config, setup_of
from tests.central.market.http_env import Env


@pytest.fixture
async def env(pg_dsn: str, tmp_path: Path) -> AsyncIterator[Env]:
    config = make_config(
        pg_dsn, tmp_path,
        database={"pool_max": 8},
        ledger={"create_keys": True, "serve_rpc": False, "slot_ms": 20},
        market={"epoch_length_s": 2, "fee_bps": 100, "clear_interval_s": 0.1, "settle_interval_s": 0.1,
                "reconcile_interval_s": 0.5},
    )
    wired = (ledger_wiring.SUBSYSTEM, readings_wiring.SUBSYSTEM, market_wiring.SUBSYSTEM)
    app = create_app(config, subsystems=wired)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, setup_of(client.app), ledger_of(client.app).ledger
    finally:
        await client.close()
