"""The central app with the ledger, readings (live socket) and market subsystems over HTTP and the WebSocket: deposits
signed by the wallet, orders, epochs cleared and settled by the background jobs, the feed, withdrawals, roles and
the reconciliation endpoint."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from central.app import POOL, create_app
from central.http.middleware import TOKENS
from central.http.roles import Role
from central.market.verify import recompute
from central.wiring import ledger as ledger_wiring
from central.wiring import market as market_wiring
from central.wiring import readings as readings_wiring
from tests.central.app_env import ledger_of, make_config, setup_of
from tests.central.market.http_env import Env, auth, deposit, funded_user, ws_next, ws_subscribe
from tests.central.market.market_fixtures import make_user

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


async def test_market_over_http_and_websocket(env: Env) -> None:
    client, setup, ledger = env
    seller, s_wallet = await funded_user(client, setup, ledger, "prosumer", energy=10_000)
    buyer, b_wallet = await funded_user(client, setup, ledger, "consumer", quote=5_000_000)
    admin = await make_user(client.app[POOL], "admin")
    hs, hb, ha = auth(client, seller), auth(client, buyer, Role.CONSUMER), auth(client, admin, Role.ADMIN)

    await deposit(client, hs, s_wallet, "energy", 6000)
    await deposit(client, hb, b_wallet, "quote", 1_000_000)
    r = await client.get("/api/v1/market/balances", headers=hb)
    assert {b["asset"]: (b["available"], b["locked"]) for b in await r.json()} == {
        "energy": (0, 0),
        "quote": (1_000_000, 0),
    }

    ws = await client.ws_connect("/api/v1/live")
    await ws.send_json({"type": "auth", "token": hb["Authorization"].split()[1]})
    await ws_subscribe(ws, "market.epochs", "market.mine", "market.trades", "market.book")

    # Validation and status codes.
    bad = await client.post("/api/v1/market/orders", json={"side": "sell", "qty": 0, "price": 5}, headers=hs)
    assert bad.status == 400
    poor = await client.post("/api/v1/market/orders", json={"side": "sell", "qty": 7000, "price": 5}, headers=hs)
    assert poor.status == 422
    assert (await poor.json())["error"]["code"] == "insufficient_escrow"
    r = await client.post("/api/v1/market/orders", json={"side": "sell", "qty": 1, "price": 5}, headers=ha)
    assert r.status == 403
    r = await client.post("/api/v1/market/orders", json={"side": "sell", "qty": 1, "price": 5})
    assert r.status == 401

    # GTC orders, so the test does not depend on which 2-second epoch they land in.
    r = await client.post(
        "/api/v1/market/orders", json={"side": "sell", "qty": 4000, "price": 100, "tif": "gtc"}, headers=hs
    )
    assert r.status == 201, await r.text()
    cancel_me = await client.post(
        "/api/v1/market/orders", json={"side": "buy", "qty": 100, "price": 1, "tif": "gtc"}, headers=hb
    )
    cancelled = await client.delete(f"/api/v1/market/orders/{(await cancel_me.json())['id']}", headers=hb)
    assert cancelled.status in (200, 409)  # 409 only if its epoch closed in between
    r = await client.post(
        "/api/v1/market/orders", json={"side": "buy", "qty": 5000, "price": 300, "tif": "gtc"}, headers=hb
    )
    assert r.status == 201, await r.text()
    assert (await ws_next(ws, "market.mine", lambda d: d["kind"] == "order"))["order"]["side"] in ("buy",)

    epoch = await ws_next(ws, "market.epochs", lambda d: d.get("status") == "cleared" and d.get("volume"))
    assert (epoch["price"], epoch["volume"]) == (200, 4000)
    trades = await ws_next(ws, "market.trades")
    assert trades["trades"][0]["qty"] == 4000
    mine = await ws_next(ws, "market.mine", lambda d: d["kind"] == "balances")
    assert any(b["asset"] == "quote" for b in mine["balances"])

    async def settled() -> list[dict[str, Any]]:
        async with asyncio.timeout(20):
            while True:
                fills = await (await client.get("/api/v1/market/fills", headers=hb)).json()
                if fills and all(f["status"] == "settled" for f in fills):
                    return fills  # type: ignore[no-any-return]
                await asyncio.sleep(0.1)

    [fill] = await settled()
    assert (fill["qty"], fill["price"], fill["value"], fill["side"]) == (4000, 200, 800, "buy")
    public = await (await client.get("/api/v1/market/trades")).json()
    assert public[0]["signature"] == fill["signature"]
    epochs = await (await client.get("/api/v1/market/epochs")).json()
    cleared = next(e for e in epochs if e["volume"])
    orders = await (await client.get(f"/api/v1/market/epochs/{cleared['start']}/orders")).json()
    assert orders["order_set_hash"] == cleared["order_set_hash"]
    again = recompute(orders["orders"], cleared["fee_bps"])  # anyone can recompute the epoch from what is published
    assert again.order_set_hash.hex() == cleared["order_set_hash"]
    assert [(t.qty, t.price, t.value) for t in again.trades()] == [(4000, 200, 800)]
    assert (await client.get("/api/v1/market/epochs/not-a-time")).status == 404
    for path in ("2000-01-01T00:00:00Z/orders", "2000-01-01T00:00:00Z/zones", "not-a-time/orders"):
        assert (await client.get(f"/api/v1/market/epochs/{path}")).status == 404  # no such cleared epoch

    r = await client.get("/api/v1/admin/market/reconciliation", headers=ha)
    assert r.status == 200
    report = await r.json()
    assert report["mismatches"] == []
    assert report["checked"] >= 4
    assert (await client.get("/api/v1/admin/market/reconciliation", headers=hb)).status == 403

    r = await client.post("/api/v1/market/withdrawals", json={"asset": "energy", "amount": 2000}, headers=hs)
    assert r.status == 201, await r.text()
    assert (await r.json())["status"] == "confirmed"
    r = await client.post("/api/v1/market/withdrawals", json={"asset": "energy", "amount": 1}, headers=hs)
    assert r.status == 422
    spec = await (await client.get("/api/openapi.json")).json()
    assert spec["paths"]["/api/v1/market/orders"]["post"]["responses"]["422"]
    assert "/api/v1/admin/market/reconciliation" in spec["paths"]
    metrics = await (await client.get("/metrics")).text()
    assert "gtx_market_escrow_mismatches 0.0" in metrics
    await ws.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_feed_crosses_worker_processes_through_postgres(pg_dsn: str, tmp_path: Path) -> None:
    """Two app instances (as two workers): an order placed through one reaches a socket held by the other, via
    LISTEN/NOTIFY. The second instance reaches the ledger over the first one's JSON-RPC."""
    port = _free_port()
    config = make_config(
        pg_dsn, tmp_path,
        database={"pool_max": 4},
        ledger={"create_keys": True, "serve_rpc": True, "rpc_port": port, "slot_ms": 20},
        market={"epoch_length_s": 900},
    )
    wired = (ledger_wiring.SUBSYSTEM, readings_wiring.SUBSYSTEM, market_wiring.SUBSYSTEM)
    a = TestClient(TestServer(create_app(config, subsystems=wired)))
    await a.start_server()
    b = TestClient(TestServer(create_app(config, subsystems=wired)))  # same secret: one platform
    await b.start_server()
    try:
        setup, ledger = setup_of(a.app), ledger_of(a.app).ledger
        # the directory is a's; b goes through its JSON-RPC
        assert type(ledger_of(b.app).ledger).__name__ == "RpcLedger"
        uid, wallet = await funded_user(a, setup, ledger, "consumer", quote=1_000_000)
        h = auth(a, uid, Role.CONSUMER)
        await deposit(a, h, wallet, "quote", 100_000)
        ws = await b.ws_connect("/api/v1/live")
        await ws.send_json({"type": "auth", "token": b.app[TOKENS].issue(uid, Role.CONSUMER)[0]})
        await ws_subscribe(ws, "market.mine", "market.book")
        r = await a.post("/api/v1/market/orders", json={"side": "buy", "qty": 2000, "price": 150}, headers=h)
        assert r.status == 201, await r.text()
        order = await ws_next(ws, "market.mine", lambda d: d["kind"] == "order")
        assert order["order"]["id"] == (await r.json())["id"]
        depth = await ws_next(ws, "market.book", lambda d: bool(d["bids"]))
        assert depth["bids"] == [{"price": 150, "qty": 2000, "orders": 1}]
        await ws.close()
    finally:
        await b.close()
        await a.close()
