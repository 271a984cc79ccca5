"""Per-user market reports through the API, reconciled to the chain: two sellers and two buyers trade over two
epochs on real PostgreSQL and the embedded ledger; each user's report (JSON and CSV) equals what moved on chain —
wallet and escrow token balances, the treasury's fees — and its grid-fee, loss and utility columns are 0 (no
zones)."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from solders.pubkey import Pubkey
from solders.signature import Signature

from central.http.roles import Role
from central.ledger.builder import associated_token_address
from central.market.report import CSV_COLUMNS
from tests.central.market.http_env import Env, auth, deposit, funded_user

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

ENERGY, QUOTE = 6000, 2_000_000


async def test_reports_reconcile_to_the_chain(env: Env) -> None:
    client, setup, ledger = env
    users: dict[str, tuple[Any, Any, dict[str, str]]] = {}
    for name in ("seller_a", "seller_b"):
        uid, wallet = await funded_user(client, setup, ledger, "prosumer", energy=ENERGY + 500)
        users[name] = (uid, wallet, auth(client, uid))
        await deposit(client, users[name][2], wallet, "energy", ENERGY)
    for name in ("buyer_x", "buyer_y"):
        uid, wallet = await funded_user(client, setup, ledger, "consumer", quote=QUOTE + 7)
        users[name] = (uid, wallet, auth(client, uid, Role.CONSUMER))
        await deposit(client, users[name][2], wallet, "quote", QUOTE)
    start = datetime.now(UTC) - timedelta(minutes=1)

    async def order(name: str, side: str, qty: int, price: int) -> None:
        r = await client.post("/api/v1/market/orders", headers=users[name][2],
                              json={"side": side, "qty": qty, "price": price, "tif": "gtc"})
        assert r.status == 201, await r.text()

    async def all_settled(min_fills: int) -> None:
        async with asyncio.timeout(30):
            while True:
                fills = [f for n in users for f in await (await client.get("/api/v1/market/fills",
                                                                           headers=users[n][2])).json()]
                if len(fills) >= min_fills and all(f["status"] == "settled" for f in fills):
                    return
                await asyncio.sleep(0.1)

    await order("seller_a", "sell", 3000, 100)
    await order("seller_b", "sell", 2000, 150)
    await order("buyer_x", "buy", 2500, 300)
    await order("buyer_y", "buy", 1500, 200)
    await all_settled(4)
    await order("seller_a", "sell", 1000, 120)
    await order("buyer_x", "buy", 1000, 125)
    await all_settled(6)
    end = datetime.now(UTC) + timedelta(minutes=1)
    period = urlencode({"start": start.isoformat(), "end": end.isoformat()})

    async def balance(address: Pubkey) -> int:
        b = await ledger.get_token_account_balance(address)
        return 0 if b is None else b.amount

    fees = 0
    for name, (_, wallet, h) in users.items():
        r = await client.get(f"/api/v1/market/report?{period}", headers=h)
        assert r.status == 200, await r.text()
        rep = await r.json()
        t, lines = rep["totals"], rep["lines"]
        assert t["pending"] == 0
        assert t["trades"] == len(lines) > 0
        assert (t["grid_fees"], t["losses_wh"], t["utility_sold_wh"], t["utility_bought_wh"]) == (0, 0, 0, 0)
        for x in lines:  # each line is a settlement transaction that landed
            rec = await ledger.get_transaction(Signature.from_string(x["signature"]))
            assert rec is not None
            assert rec.err is None
        escrow = {b["asset"]: b for b in await (await client.get("/api/v1/market/balances", headers=h)).json()}
        wallet_energy = await balance(associated_token_address(wallet.pubkey(), setup.energy_mint))
        wallet_quote = await balance(associated_token_address(wallet.pubkey(), setup.quote_mint))
        escrow_energy = await balance(Pubkey.from_string(escrow["energy"]["address"]))
        escrow_quote = await balance(Pubkey.from_string(escrow["quote"]["address"]))
        if name.startswith("seller"):
            assert t["bought_wh"] == t["quote_out"] == 0
            assert wallet_quote == t["quote_in"] == t["sold_value"] - t["platform_fees"]
            assert escrow_energy == ENERGY - t["sold_wh"]
            assert wallet_energy == 500
            fees += t["platform_fees"]
        else:
            assert t["sold_wh"] == t["quote_in"] == 0
            assert wallet_energy == t["bought_wh"]
            assert escrow_quote == QUOTE - t["quote_out"]
            assert wallet_quote == 7
            assert t["quote_out"] == t["bought_value"]
        assert t["sold_wh"] == sum(x["energy_out_wh"] for x in lines)
        assert t["bought_wh"] == sum(x["energy_in_wh"] for x in lines)

        r = await client.get(f"/api/v1/market/report.csv?{period}", headers=h)
        assert r.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await r.text())))
        assert tuple(rows[0]) == CSV_COLUMNS
        *body, total = rows
        assert [int(x["trade_id"]) for x in body] == [x["trade_id"] for x in lines]
        assert (int(total["quote_in"]), int(total["quote_out"]), int(total["energy_in_wh"]),
                int(total["energy_out_wh"]), int(total["platform_fee"])) == (
            t["quote_in"], t["quote_out"], t["bought_wh"], t["sold_wh"], t["platform_fees"])
    assert await balance(setup.treasury_quote) == fees > 0
    r = await client.get(f"/api/v1/market/report?{urlencode({'start': end.isoformat(), 'end': start.isoformat()})}",
                         headers=users["buyer_x"][2])
    assert r.status == 400


def test_report_rules_with_grid_fees_losses_and_the_utility() -> None:
    """Zone figures (not produced before zones land) flow through the same rules: a purchase costs value + grid fee
    and delivers qty - loss; a sale pays value - platform fee - grid fee; only settled lines count."""
    from central.market.report import ReportLine, report, to_csv  # noqa: PLC0415

    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    lines = [
        ReportLine(1, t0, "buy", 1000, 200, 200, 0, 9, 970, False, "settled", "s1"),
        ReportLine(2, t0, "sell", 500, 180, 90, 1, 4, 500, True, "settled", "s2"),
        ReportLine(3, t0, "buy", 400, 250, 100, 0, 2, 400, True, "settled", "s3"),
        ReportLine(4, t0, "buy", 999, 999, 998, 0, 0, 999, False, "pending", None),
    ]
    r = report(t0, t0 + timedelta(days=1), lines)
    t = r.totals
    assert (t.bought_wh, t.losses_wh, t.quote_out, t.grid_fees) == (1370, 30, 311, 15)
    assert (t.sold_wh, t.quote_in, t.platform_fees, t.utility_sold_wh, t.utility_bought_wh) == (500, 85, 1, 500, 400)
    assert (t.avg_buy_price, t.avg_sell_price, t.trades, t.pending) == (214, 180, 3, 1)
    assert to_csv(r).splitlines()[-1].startswith("total,")


async def test_the_new_routes_are_documented(env: Env) -> None:
    client, _, _ = env
    spec = await (await client.get("/api/openapi.json")).json()
    paths = spec["paths"]
    for path, method in (
        ("/api/v1/market/standing", "post"), ("/api/v1/market/standing/{standing_id}/pause", "post"),
        ("/api/v1/market/standing/{standing_id}/runs", "get"), ("/api/v1/market/redemptions", "post"),
        ("/api/v1/market/matching/statement", "get"), ("/api/v1/market/matching/verify", "post"),
        ("/api/v1/market/report", "get"), ("/api/v1/market/report.csv", "get"),
    ):
        assert paths[path][method]["summary"], path
