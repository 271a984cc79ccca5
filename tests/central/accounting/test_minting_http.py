"""The central app with the accounting, wallets and minting plugins: readings in, tokens out, over HTTP."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from acct_db import add_user
from aiohttp.test_utils import TestClient, TestServer
from chain_setup import embedded_chain
from mint_env import T0, feed, seed_site

from central.accounting import plugin as accounting_plugin
from central.app import POOL, Registry, create_app
from central.config import from_mapping
from central.http.middleware import TOKENS
from central.http.roles import Role
from central.minting import plugin as minting_plugin
from central.wallets import plugin as wallets_plugin
from central.wallets.chain import Chain
from central.wallets.routes import CHAIN, ChainRef
from protocol.base58 import b58encode
from protocol.keys import DeviceKey

pytestmark = pytest.mark.filterwarnings(
    # central-core's auth middleware stores the principal under a str request key (aiohttp >= 3.12 warns)
    "ignore::aiohttp.web_exceptions.NotAppKeyWarning"
)


@pytest.fixture
async def env(pg_dsn: str, tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Chain]]:
    config = from_mapping(
        {
            "database": {"dsn": pg_dsn, "pool_min": 1, "pool_max": 6},
            "mqtt": {"enabled": False},
            "auth": {"jwt_secret": secrets.token_urlsafe(48), "password_bcrypt_cost": 4},
            "mailer": {"kind": "dev", "dev_dir": str(tmp_path / "mail")},
            "log": {"access_log": False},
            "minting": {"accounting_interval_s": 0.1},
        }
    )
    chain = await embedded_chain(tmp_path / "keys")

    def ledger(registry: Registry) -> None:
        registry.app[CHAIN] = ChainRef(chain)

    app = create_app(
        config, plugins=[ledger, wallets_plugin.install, accounting_plugin.install, minting_plugin.install]
    )
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, chain
    finally:
        await client.close()
        await chain.ledger.close()


def auth(client: TestClient[Any, Any], user: Any, role: Role = Role.PROSUMER) -> dict[str, str]:
    token, _ = client.app[TOKENS].issue(user, role)
    return {"Authorization": f"Bearer {token}"}


async def wait_for(predicate: Any) -> None:
    async with asyncio.timeout(20):
        while not await predicate():  # noqa: ASYNC110 - polling the public API is the point of this test
            await asyncio.sleep(0.1)


async def test_readings_to_tokens_over_http(env: tuple[TestClient[Any, Any], Chain]) -> None:
    client, _chain = env
    pool = client.app[POOL]
    owner, admin = await add_user(pool), await add_user(pool, "admin")
    h = auth(client, owner)
    site = await seed_site(pool, [owner], ["H-1"])
    await feed(pool, site, T0, 13, {"H-1": 250})  # 4 final windows of 750 Wh

    async def mints(expect_status: str) -> bool:
        r = await client.get("/api/v1/mints", headers=h)
        body = await r.json()
        return len(body) == 4 and all(m["status"] == expect_status for m in body)

    await wait_for(lambda: mints("accrued"))  # accounting ran in the background; no wallet yet

    wallet = DeviceKey.generate()
    r = await client.post("/api/v1/wallet/link-challenge", json={"wallet": wallet.device_id}, headers=h)
    msg = (await r.json())["message"]
    r = await client.post(
        "/api/v1/wallet/link", json={"message": msg, "signature": b58encode(wallet.sign(msg.encode()))}, headers=h
    )
    assert r.status == 200, await r.text()

    await wait_for(lambda: mints("confirmed"))
    body = await (await client.get("/api/v1/mints", headers=h)).json()
    assert sum(m["energy_wh"] for m in body) == 3000
    assert all(m["signature"] for m in body)
    assert body[0]["window_start_ms"] > body[-1]["window_start_ms"]  # newest first
    wallet_view = await (await client.get("/api/v1/wallet", headers=h)).json()
    assert wallet_view["energy_wh"] == 3000

    ha = auth(client, admin, Role.ADMIN)
    r = await client.get("/api/v1/admin/mints/problems", headers=ha)
    assert r.status == 200
    assert await r.json() == []
    r = await client.get("/api/v1/admin/mints/problems", headers=h)
    assert r.status == 403
    r = await client.post(f"/api/v1/admin/mints/{body[0]['key']}/retry", headers=ha)
    assert r.status == 409  # only failed mints can be retried
    r = await client.post("/api/v1/admin/mints/nope:1/retry", headers=ha)
    assert r.status == 404
