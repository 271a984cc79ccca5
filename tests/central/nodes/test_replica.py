"""``[database] replica_dsn``: the readings API runs its bulk queries on a streaming-replication standby while the
standby is fresh enough, checks ownership on the primary (a meter claimed a moment ago is readable at once:
read-your-writes), and falls back to the primary when the standby lags more than ``replica_max_lag_s``."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from central.http.context import SERVICES
from central.http.middleware import TOKENS
from central.http.roles import Role
from central.wiring import readings
from tests.central.accounting.acct_mint_env import T0, feed, seed_site
from tests.central.app_env import make_config, running_app
from tests.central.pg import add_meter, add_user
from tests.central.standby import standby

DAY_MS = 86_400_000


def auth(client: TestClient[Any, Any], user: Any) -> dict[str, str]:
    token, _ = client.app[TOKENS].issue(user, Role.PROSUMER)
    return {"Authorization": f"Bearer {token}"}


async def count(client: TestClient[Any, Any], meter: Any, owner: Any) -> int:
    r = await client.get(f"/api/v1/meters/{meter}/readings", params={"from_ms": T0, "to_ms": T0 + DAY_MS,
                                                                       "limit": 500}, headers=auth(client, owner))
    assert r.status == 200, await r.text()
    return len((await r.json())["readings"])


async def until(predicate: Any, what: str, timeout_s: float = 120) -> None:
    """Poll; generous: the standby replays the whole shared test cluster's WAL, slow while other tests run."""
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_bulk_reads_on_the_standby_ownership_on_the_primary(pg_dsn: str, tmp_path: Path) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=3)
    assert pool is not None
    try:
        owner = await add_user(pool)
        site = await seed_site(pool, [owner], ["R-1"])
        await feed(pool, site, T0, 6, {"R-1": 10})
        with standby() as port:
            replica_dsn = pg_dsn.replace("127.0.0.1:5432", f"127.0.0.1:{port}")
            replica = await asyncpg.connect(replica_dsn)
            try:
                assert await replica.fetchval("SELECT pg_is_in_recovery()")
                config = make_config(pg_dsn, tmp_path, database={
                    "dsn": pg_dsn, "replica_dsn": replica_dsn, "replica_max_lag_s": 3600.0})
                async with running_app(config, (readings.SUBSYSTEM,)) as client:
                    reads = client.app[SERVICES].readings.reads
                    meter = site.meters["R-1"]
                    assert await count(client, meter, owner) == 6
                    assert await reads.bulk() is reads.replica

                    # the standby stops replaying; the primary gets 3 more readings and a newly claimed meter
                    await replica.execute("SELECT pg_wal_replay_pause()")
                    await until(lambda: _paused(replica), "the standby pausing")  # a pause is only requested at first
                    await feed(pool, site, T0 + 6 * 5 * 60_000, 3, {"R-1": 10})
                    owner2 = await add_user(pool)
                    meter2 = await add_meter(pool, site.gateway.device_id, "R-2", owner2)
                    await asyncio.sleep(1.1)  # a fresh lag sample
                    assert await reads.lag_s() is not None
                    assert await count(client, meter, owner) == 6  # bulk rows from the (paused) standby
                    assert await count(client, meter2, owner2) == 0  # but the claim is seen at once: 200, not 404
                    assert await replica.fetchval("SELECT count(*) FROM meters WHERE id = $1", meter2) == 0

                    reads.max_lag_s = 0.0  # the standby now lags too much: the primary answers
                    await until(lambda: _answers(client, meter, owner, 9), "the primary answering")
                    assert await reads.bulk() is reads.primary

                    await replica.execute("SELECT pg_wal_replay_resume()")
                    reads.max_lag_s = 3600.0
                    await until(lambda: _replayed(replica, meter2), "the standby replaying again")
                    assert await count(client, meter, owner) == 9

                    # the standby loses its primary (its WAL receiver stops): having replayed all it received, it must
                    # not look in sync while the primary moves on; the age of its last replayed transaction counts
                    await replica.execute("ALTER SYSTEM SET primary_conninfo = ''")
                    await replica.execute("SELECT pg_reload_conf()")
                    await until(lambda: _receiver_stopped(replica), "the WAL receiver stopping")
                    await feed(pool, site, T0 + 9 * 5 * 60_000, 3, {"R-1": 10})
                    reads.max_lag_s = 0.0
                    await until(lambda: _answers(client, meter, owner, 12), "the primary answering again")
                    assert await reads.bulk() is reads.primary
            finally:
                await replica.close()
    finally:
        await pool.close()


async def _answers(client: TestClient[Any, Any], meter: Any, owner: Any, readings: int) -> bool:
    return await count(client, meter, owner) == readings


async def _paused(replica: asyncpg.Connection) -> bool:
    return bool(await replica.fetchval("SELECT pg_get_wal_replay_pause_state() = 'paused'"))


async def _receiver_stopped(replica: asyncpg.Connection) -> bool:
    return not await replica.fetchval("SELECT count(*) FROM pg_stat_wal_receiver")


async def _replayed(replica: asyncpg.Connection, meter: Any) -> bool:
    return bool(await replica.fetchval("SELECT count(*) FROM meters WHERE id = $1", meter))
