"""Wallet routes end to end: real app, real PostgreSQL, real embedded ledger."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from central.app import POOL, create_app
from central.http.middleware import TOKENS
from central.http.roles import Role
from central.ledger.config import LedgerConfig
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.platform import Platform, platform_from_setup
from central.ledger.runtime import LedgerRuntime
from central.ledger.setup import init_ledger
from central.wiring import wallets
from protocol.base58 import b58encode
from protocol.keys import DeviceKey
from tests.central.app_env import make_config
from tests.central.pg import add_user


@pytest.fixture
async def env(pg_dsn: str, tmp_path: Path) -> AsyncIterator[tuple[TestClient[Any, Any], Platform]]:
    config = make_config(pg_dsn, tmp_path)
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=None, slot_ms=20))
    ledger_config = LedgerConfig(keys_dir=tmp_path / "keys", create_keys=True)
    setup = await init_ledger(ledger_config, ledger)
    chain = platform_from_setup(ledger, setup, embedded=True)
    runtime = LedgerRuntime(ledger, setup, ledger_config, rpc_url="")
    app = create_app(config, subsystems=(wallets.SUBSYSTEM,), ledger_runtime=runtime)
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


async def test_link_read_balances_and_faucet(env: tuple[TestClient[Any, Any], Platform]) -> None:
    client, chain = env
    pool = client.app[POOL]
    alice, mallory, admin = await add_user(pool), await add_user(pool), await add_user(pool, "admin")
    wallet = DeviceKey.generate()
    h = auth(client, alice)

    r = await client.get("/api/v1/wallet", headers=h)
    assert r.status == 404
    r = await client.post("/api/v1/wallet/link-challenge", json={"wallet": wallet.device_id}, headers=h)
    assert r.status == 201, await r.text()
    msg = (await r.json())["message"]
    sig = b58encode(wallet.sign(msg.encode()))

    # mallory replays alice's signed message for herself: rejected
    r = await client.post("/api/v1/wallet/link", json={"message": msg, "signature": sig}, headers=auth(client, mallory))
    assert r.status == 400
    bad = b58encode(DeviceKey.generate().sign(msg.encode()))
    r = await client.post("/api/v1/wallet/link", json={"message": msg, "signature": bad}, headers=h)
    assert r.status == 400

    r = await client.post("/api/v1/wallet/link", json={"message": msg, "signature": sig}, headers=h)
    assert r.status == 200, await r.text()
    assert (await r.json())["address"] == wallet.device_id
    r = await client.post("/api/v1/wallet/link", json={"message": msg, "signature": sig}, headers=h)
    assert r.status == 400  # single use

    # faucet: admins only
    r = await client.post("/api/v1/admin/faucet/quote", json={"user_id": str(alice), "amount": 5_000_000}, headers=h)
    assert r.status == 403
    r = await client.post(
        "/api/v1/admin/faucet/quote",
        json={"user_id": str(alice), "amount": 5_000_000},
        headers=auth(client, admin, Role.ADMIN),
    )
    assert r.status == 200, await r.text()

    r = await client.get("/api/v1/wallet", headers=h)
    body = await r.json()
    assert body["address"] == wallet.device_id
    assert body["quote"] == 5_000_000
    assert body["energy_wh"] == 0
    assert chain.quote_mint is not None
