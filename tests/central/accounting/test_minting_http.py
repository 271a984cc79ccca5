"""End to end through the real central app (ingest, ledger, wallets, accounting and minting): a gateway's
protocol-signed readings through Mosquitto -> verified ingest -> accounting windows -> mint -> the owner's wallet
over HTTP; then a restart of central."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from solders.signature import Signature

from central.accounting.merkle import merkle_root, verify_proof
from central.accounting.mint_memo import parse_mint_memo
from central.app import MQTT, POOL, create_app
from central.config import CentralConfig
from central.errors import require
from central.http.context import SERVICES
from central.http.middleware import TOKENS
from central.http.roles import Role
from central.wiring import accounting, ingest, ledger, minting, wallets
from protocol import topics
from protocol.ack import Ack
from protocol.base58 import b58encode
from protocol.batch import encode_batch
from protocol.keys import DeviceKey
from protocol.record import Reading
from tests.central.accounting.acct_mint_env import T0, energy_supply, seed_site, signed_readings
from tests.central.app_env import make_config
from tests.central.device import DeviceClient, central_ack
from tests.central.pg import add_user


class Central:
    """The central app (ledger, wallets, accounting, minting) that a test can stop and start again."""

    def __init__(self, config: CentralConfig) -> None:
        self.config = config
        self.client: TestClient[Any, Any] | None = None

    async def start(self) -> TestClient[Any, Any]:
        app = create_app(
            self.config,
            subsystems=(
                ingest.SUBSYSTEM,
                ledger.SUBSYSTEM,
                wallets.SUBSYSTEM,
                accounting.SUBSYSTEM,
                minting.SUBSYSTEM,
            ),
        )
        self.client = TestClient(TestServer(app))
        await self.client.start_server()
        await app[MQTT].wait_connected(10)
        return self.client

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.close()
            self.client = None


@pytest.fixture
async def central(pg_dsn: str, tmp_path: Path, broker: Any) -> AsyncIterator[Central]:
    config = make_config(
        pg_dsn, tmp_path, broker,
        minting={"accounting_interval_s": 0.1},
        # the real ledger: embedded LiteSVM on disk, platform set up at start (dev keys)
        ledger={"create_keys": True, "serve_rpc": False, "slot_ms": 50},
    )
    c = Central(config)
    try:
        yield c
    finally:
        await c.stop()


async def publish(broker: Any, device_id: str, records: list[Reading]) -> list[Ack]:
    """Publish batches as a gateway would (MQTT v5, QoS 1) and collect central's acks."""
    dev = DeviceClient(broker.host, broker.port, [topics.ack(device_id)])
    try:
        batches = [records[i : i + 5] for i in range(0, len(records), 5)]
        for b in batches:
            dev.publish(topics.readings(device_id), encode_batch(b))
        return [central_ack(await dev.next(topics.ack(device_id))) for _ in batches]
    finally:
        dev.close()


def auth(client: TestClient[Any, Any], user: Any, role: Role = Role.PROSUMER) -> dict[str, str]:
    token, _ = client.app[TOKENS].issue(user, role)
    return {"Authorization": f"Bearer {token}"}


async def wait_for(predicate: Any) -> None:
    async with asyncio.timeout(20):
        while not await predicate():  # noqa: ASYNC110 - polling the public API is the point of this test
            await asyncio.sleep(0.1)


async def test_readings_to_tokens_over_http_and_restart(central: Central, broker: Any) -> None:
    client = await central.start()
    chain = require(client.app[SERVICES].wallets.chain)
    assert chain is not None
    pool = client.app[POOL]
    owner, admin = await add_user(pool), await add_user(pool, "admin")
    h = auth(client, owner)
    site = await seed_site(pool, [owner], ["H-1"])
    # the gateway publishes its signed readings through Mosquitto; central's ingest verifies, stores and acks them
    recs = signed_readings(site, T0, 13, {"H-1": 250})  # 4 final windows of 750 Wh
    acks = await publish(broker, site.gateway.device_id, recs)
    assert sum(a.accepted for a in acks) == 13

    async def mints(expect_status: str) -> bool:
        r = await client.get("/api/v1/mints", headers=h)
        body = await r.json()
        return len(body) == 4 and all(m["status"] == expect_status for m in body)

    await wait_for(lambda: mints("accrued"))  # accounting ran in the background; no wallet yet

    async def deferred() -> bool:  # the mint outbox looked at them and set them aside until a wallet exists
        return await pool.fetchval("SELECT count(*) FROM chain_intent WHERE not_before IS NOT NULL") == 4

    await wait_for(deferred)
    await asyncio.sleep(1.2)
    r = await client.get("/api/v1/admin/mints/problems?stuck_after_s=1", headers=auth(client, admin, Role.ADMIN))
    assert await r.json() == []  # accruing is not stuck ...
    outbox = require(client.app[SERVICES].minting.outbox)
    assert outbox is not None
    assert len(await outbox.problems(stuck_after_seconds=1)) == 4  # ... though the raw outbox view lists them

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
    # proof: signed readings -> window root -> mint leaf -> the memo root in the transaction on chain
    proof = await (await client.get(f"/api/v1/mints/{body[0]['key']}/proof", headers=h)).json()
    hashes = [bytes.fromhex(x) for x in proof["record_hashes"]]
    assert merkle_root(hashes).hex() == proof["window_root"] == body[0]["readings_root"]
    path = [(p["sibling_is_left"], bytes.fromhex(p["sibling"])) for p in proof["path"]]
    assert verify_proof(bytes.fromhex(proof["mint_leaf"]), path, bytes.fromhex(proof["tx_root"]))
    rec = await chain.ledger.get_transaction(Signature.from_string(proof["signature"]))
    assert rec is not None
    memo = bytes(rec.transaction.message.instructions[-1].data).decode()
    assert parse_mint_memo(memo).root.hex() == proof["tx_root"]
    stored = await pool.fetchval(
        "SELECT array_agg(record_hash ORDER BY timestamp_ms, seq) FROM readings WHERE record_hash = ANY($1::bytea[])",
        hashes,
    )
    assert [bytes(x) for x in stored] == hashes  # every hash is a stored signed reading
    assert (await client.get(f"/api/v1/mints/{body[0]['key']}/proof", headers=auth(client, admin))).status == 404
    wallet_view = await (await client.get("/api/v1/wallet", headers=h)).json()
    assert wallet_view["energy_wh"] == 3000
    assert chain.quote_faucet_authority is not None  # embedded backend: the dev faucet is available

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

    # restart central: the embedded ledger's balances and the mints' transactions are still there, nothing re-minted
    await central.stop()
    client = await central.start()
    h = auth(client, owner)
    assert (await (await client.get("/api/v1/wallet", headers=h)).json())["energy_wh"] == 3000
    again = await (await client.get("/api/v1/mints", headers=h)).json()
    assert [(m["key"], m["signature"], m["status"]) for m in again] == [
        (m["key"], m["signature"], "confirmed") for m in body
    ]
    chain = require(client.app[SERVICES].wallets.chain)
    assert chain is not None
    for sig in {m["signature"] for m in body}:
        rec = await chain.ledger.get_transaction(Signature.from_string(sig))
        assert rec is not None
        assert rec.err is None
    assert await energy_supply(chain) == 3000
