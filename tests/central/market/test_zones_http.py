"""Grid zones over HTTP: the zone tree (time of use), a meter's zone, and a cleared multi-zone epoch's per-zone
results and published order set (recomputed here from the response alone)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from solders.keypair import Keypair

from central.app import POOL
from central.market.clearing import OrderBook
from central.market.zonal import clear_zonal, zonal_order_set_hash
from central.market.zones import ZoneParams
from central.wiring import ledger as ledger_wiring
from central.wiring import market as market_wiring
from tests.central.app_env import make_config
from tests.central.market.http_env import FAST_LEDGER, FAST_MARKET, Env, auth, deposit, funded_user, serving
from tests.central.market.market_fixtures import give_meter

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")
OPERATOR = str(Keypair().pubkey())


@pytest.fixture
async def env(pg_dsn: str, tmp_path: Path) -> AsyncIterator[Env]:
    config = make_config(
        pg_dsn, tmp_path,
        database={"pool_max": 8},
        ledger=FAST_LEDGER,
        market=FAST_MARKET,
        zones={
            "grid_operator": OPERATOR,
            "zone": [
                {"name": "grid", "retail": 300, "feed_in": 80},
                {"name": "a", "parent": "grid", "fee_per_kwh": 10, "fee_bps": 100, "loss_bps": 200,
                 "meters": ["Z-SELL"], "tou": [{"hours": list(range(24)), "retail": 310}]},
                {"name": "b", "parent": "grid", "fee_per_kwh": 10, "meters": ["Z-BUY"]},
            ],
        },
    )
    async with serving(config, (ledger_wiring.SUBSYSTEM, market_wiring.SUBSYSTEM)) as env:
        yield env


async def test_zones_meter_zone_and_epoch_results(env: Env) -> None:
    client, setup, ledger = env
    tree = await (await client.get("/api/v1/market/zones")).json()
    assert tree["grid_operator"] == OPERATOR
    assert [(z["name"], z["parent"], z["fee_per_kwh"], z["loss_bps"], z["retail"]) for z in tree["zones"]] == [
        ("grid", None, 0, 0, 300), ("a", "grid", 10, 200, 310), ("b", "grid", 10, 0, 0)
    ]

    seller, s_wallet = await funded_user(client, setup, ledger, "prosumer", energy=20_000)
    buyer, b_wallet = await funded_user(client, setup, ledger, "consumer", quote=5_000_000)
    await give_meter(client.app[POOL], seller, "Z-SELL")
    await give_meter(client.app[POOL], buyer, "Z-BUY")
    assert (await (await client.get("/api/v1/market/meters/Z-BUY/zone")).json()) == {"serial": "Z-BUY", "zone": "b"}
    assert (await client.get("/api/v1/market/meters/NOPE/zone")).status == 404

    hs, hb = auth(client, seller), auth(client, buyer)
    await deposit(client, hs, s_wallet, "energy", 20_000)
    await deposit(client, hb, b_wallet, "quote", 5_000_000)
    for h, side, qty, price in ((hs, "sell", 10_000, 100), (hb, "buy", 3000, 200)):
        r = await client.post("/api/v1/market/orders", json={"side": side, "qty": qty, "price": price, "tif": "gtc"},
                              headers=h)
        assert r.status == 201, await r.text()

    async def cleared() -> dict[str, Any]:
        async with asyncio.timeout(30):
            while True:
                epochs = await (await client.get("/api/v1/market/epochs")).json()
                done = [e for e in epochs if e["volume"]]
                if done:
                    return done[0]  # type: ignore[no-any-return]
                await asyncio.sleep(0.1)

    epoch = await cleared()
    zones = await (await client.get(f"/api/v1/market/epochs/{epoch['start']}/zones")).json()
    # Seller across a (Λ 200, F 10, P 100): ceil(113.17) = 114; buyer across b (F 10): 190; grid price 152.
    assert [(z["name"], z["price"], z["volume"], z["grid_fees"], z["losses"]) for z in zones] == [
        ("grid", 152, 3000, 64, 62), ("a", None, 0, 0, 0), ("b", None, 0, 0, 0)
    ]
    published = await (await client.get(f"/api/v1/market/epochs/{epoch['start']}/orders")).json()
    assert published["encoding"].startswith("GTX-ORDERSET-Z1")
    params = ZoneParams.decode(bytes.fromhex(published["zone_params"]))
    # The tree cleared with: fees and losses in force; tariffs left out (no utility account is configured), so the
    # published set says exactly what was cleared.
    assert params.zones[1].boundary.fee_per_kwh == 10
    assert all((z.retail, z.feed_in) == (0, 0) for z in params.zones)
    o = published["orders"]
    book = OrderBook.from_arrays(
        order_id=[x["order_id"] for x in o], user=[x["account"] for x in o], side=[x["side"] for x in o],
        qty=[x["qty"] for x in o], price=[x["price"] for x in o],
    )
    zone = np.array([x["zone"] for x in o], dtype=np.int64)
    assert zonal_order_set_hash(book, zone, params).hex() == published["order_set_hash"] == epoch["order_set_hash"]
    again = clear_zonal(book, zone, params, 100)
    assert (int(again.zone_price[0]), int(again.trade_grid_fee[0]), int(again.trade_loss[0])) == (152, 64, 62)
