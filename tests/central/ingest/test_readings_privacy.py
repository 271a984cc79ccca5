"""A meter's next owner does not see the previous owner's readings: the history before a release stays theirs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from central.app import POOL, TOKENS
from central.config import IdentityConfig
from central.http import Role
from central.identity.claims import MeterService
from central.identity.postgres import PostgresMeterStore
from central.wiring import ingest as ingest_wiring
from central.wiring import readings as readings_wiring
from tests.central.app_env import make_config, running_app
from tests.central.gateway import Gateway, ingest, ingest_service
from tests.central.ingest.ingest_db import Seed

METER = "PRIV-METER-1"
WINDOW_MS = 15 * 60 * 1000


@pytest.fixture
async def central(pg_dsn: str, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    config = make_config(pg_dsn, tmp_path)
    async with running_app(config, (ingest_wiring.SUBSYSTEM, readings_wiring.SUBSYSTEM)) as client:
        yield client


async def test_new_owner_sees_only_readings_after_the_release(central: TestClient[Any, Any]) -> None:
    pool = central.app[POOL]
    seed = Seed(pool)
    first, second = await seed.user("prosumer"), await seed.user("consumer")
    gw = Gateway()
    await seed.device(gw, "verified", METER, owner=first)
    now = time.time_ns() // 1_000_000
    old = [gw.read(METER, timestamp_ms=now - 3 * WINDOW_MS + i * 60_000) for i in range(5)]
    await ingest(ingest_service(pool, now), gw.device_id, old)

    await MeterService(PostgresMeterStore(pool), IdentityConfig()).release(first, METER)
    await pool.execute("UPDATE meters SET owner_id = $1, claimed_at = now() WHERE serial = $2", second, METER)
    released_ms = await pool.fetchval("SELECT (extract(epoch FROM released_at) * 1000)::bigint FROM meters")
    new = [gw.read(METER, timestamp_ms=released_ms + 1000 + i * 1000) for i in range(3)]
    await ingest(ingest_service(pool, released_ms + 10_000), gw.device_id, new)

    meter_id = seed.meters[METER]
    span = {"from_ms": str(now - 4 * WINDOW_MS), "to_ms": str(released_ms + 60_000)}
    token, _ = central.app[TOKENS].issue(second, Role.CONSUMER)
    resp = await central.get(
        f"/api/v1/meters/{meter_id}/readings", params=span, headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status == 200
    assert [r["seq"] for r in (await resp.json())["readings"]] == [r.seq for r in new]

    resp = await central.get(
        f"/api/v1/meters/{meter_id}/energy",
        params={"from_ms": str(now - 4 * WINDOW_MS), "to_ms": str(released_ms)},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert resp.status == 200
    assert (await resp.json())["windows"] == []

    token_first, _ = central.app[TOKENS].issue(first, Role.PROSUMER)
    resp = await central.get(
        f"/api/v1/meters/{meter_id}/readings", params=span, headers={"Authorization": f"Bearer {token_first}"}
    )
    assert resp.status == 404
