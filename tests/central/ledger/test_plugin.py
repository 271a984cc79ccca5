"""The ledger in the real app: adapter built from ``[ledger]``, JSON-RPC served, setup exposed, the outbox
migration applied by the app's migration runner."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from solders.keypair import Keypair

from central.app import POOL, create_app
from central.config import CentralConfig
from central.http.routes import SERVICES
from central.ledger.builder import associated_token_address, mint_to_owner, send_and_confirm
from central.ledger.failover import FailoverLedger
from central.ledger.rpc import RpcLedger
from central.wiring import ledger as ledger_wiring
from tests.central.app_env import ledger_of, make_config, setup_of
from tests.services import free_port


def app_config(pg_dsn: str, tmp_path: Path) -> CentralConfig:
    return make_config(pg_dsn, tmp_path, database={"pool_max": 2}, ledger={"create_keys": True, "slot_ms": 50})


async def test_app_serves_ledger_info_and_json_rpc(pg_dsn: str, tmp_path: Path) -> None:
    app = create_app(app_config(pg_dsn, tmp_path), subsystems=(ledger_wiring.SUBSYSTEM,))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        resp = await client.get("/api/v1/ledger")
        assert resp.status == 200
        info = await resp.json()
        setup = setup_of(app)
        assert info["backend"] == "embedded"
        assert info["initialised"] is True
        assert info["energy_mint"] == str(setup.energy_mint)
        assert (info["energy_decimals"], info["quote_decimals"]) == (3, 6)
        rpc_url = info["rpc_url"]
        async with aiohttp.ClientSession() as http:
            async with http.post(rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "getHealth"}) as r:
                assert (await r.json())["result"] == "ok"
            async with http.post(rpc_url, json=[{"jsonrpc": "2.0", "id": 2, "method": "getSlot"},
                                                {"jsonrpc": "2.0", "id": 3, "method": "nope"}]) as r:
                body = await r.json()
                assert isinstance(body[0]["result"], int)
                assert body[1]["error"]["code"] == -32601
        remote = RpcLedger(rpc_url)
        try:
            acc = await remote.get_account(setup.energy_mint)
            assert acc == await ledger_of(app).ledger.get_account(setup.energy_mint)
        finally:
            await remote.close()
        ready = await client.get("/readyz")
        assert ready.status == 200, await ready.text()
        pool_tables = await app[POOL].fetch(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'chain_%' ORDER BY 1")
        assert [r["tablename"] for r in pool_tables] == ["chain_intent", "chain_submission"]
    finally:
        await client.close()


async def test_central_restart_keeps_the_embedded_ledger(pg_dsn: str, tmp_path: Path) -> None:
    """Stop central, start it again: balances and history of the embedded ledger are intact."""
    owner = Keypair().pubkey()
    app = create_app(app_config(pg_dsn, tmp_path), subsystems=(ledger_wiring.SUBSYSTEM,))
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        setup = setup_of(app)
        sig = await send_and_confirm(ledger_of(app).ledger, setup.fee_payer, mint_to_owner(
            setup.fee_payer.pubkey, owner, setup.energy_mint, setup.mint_authority.pubkey, amount=12_345,
            decimals=3), [setup.mint_authority])
    finally:
        await client.close()

    again = create_app(app_config(pg_dsn, tmp_path), subsystems=(ledger_wiring.SUBSYSTEM,))
    client = TestClient(TestServer(again))
    await client.start_server()
    try:
        assert setup_of(again) == setup
        ata = associated_token_address(owner, setup.energy_mint)
        bal = await ledger_of(again).ledger.get_token_account_balance(ata)
        assert bal is not None
        assert bal.amount == 12_345
        record = await ledger_of(again).ledger.get_transaction(sig)
        assert record is not None
        assert record.err is None
    finally:
        await client.close()


async def test_unreachable_ledger_answers_503_through_the_error_map(pg_dsn: str, tmp_path: Path) -> None:
    """An RPC cluster that does not answer: ``GET /api/v1/ledger`` is a 503 ``ledger_unavailable`` (the ledger's
    domain error mapped at the HTTP boundary), not a 500, and the app keeps serving."""
    dead = f"http://127.0.0.1:{free_port()}"
    config = make_config(pg_dsn, tmp_path, ledger={"backend": "rpc", "rpc_url": dead,
                                                   "quote_mint": str(Keypair().pubkey())})
    client = TestClient(TestServer(create_app(config, subsystems=(ledger_wiring.SUBSYSTEM,))))
    await client.start_server()
    try:
        for _ in range(2):
            resp = await client.get("/api/v1/ledger")
            assert resp.status == 503
            assert (await resp.json())["error"]["code"] == "ledger_unavailable"
    finally:
        await client.close()


async def test_rpc_backend_with_several_urls_fails_over(pg_dsn: str, tmp_path: Path) -> None:
    """``ledger.rpc_urls``: the app reaches the ledger through the provider that answers, and runs the providers'
    health check as a job."""
    owner = create_app(app_config(pg_dsn, tmp_path), subsystems=(ledger_wiring.SUBSYSTEM,))
    owner_client = TestClient(TestServer(owner))
    await owner_client.start_server()
    try:
        live = ledger_of(owner).rpc_url
        dead = f"http://127.0.0.1:{free_port()}"
        config = make_config(pg_dsn, tmp_path, ledger={
            "backend": "rpc", "rpc_url": dead, "rpc_urls": [live, dead],
            "quote_mint": str(setup_of(owner).quote_mint)})
        assert config.ledger.provider_urls == (dead, live)
        app = create_app(config, subsystems=(ledger_wiring.SUBSYSTEM,))
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            assert isinstance(ledger_of(app).ledger, FailoverLedger)
            assert [j.name for j in ledger_wiring.jobs(app[SERVICES])] == ["ledger-rpc-health"]
            resp = await client.get("/api/v1/ledger")
            assert resp.status == 200, await resp.text()
            assert (await resp.json())["energy_mint"] == str(setup_of(owner).energy_mint)
            ready = await client.get("/readyz")
            assert ready.status == 200, await ready.text()
        finally:
            await client.close()
    finally:
        await owner_client.close()
