"""Stage 5 of the demo: quote tokens from the development faucet, escrow deposits by transaction request (the
wallet signs with the client helper, the platform co-signs and pays), sell and buy orders, the epoch's uniform-price
clearing and its atomic on-chain settlement."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from demo_support.api import Api, JsonRpc
from demo_support.energy import Mints, ata
from demo_support.people import Cast, Owner
from demo_support.report import kwh, quote, say, short

from central.market.client import sign_transaction_request

FAUCET = 100_000_000  # 100 quote tokens per consumer
ASK_PRICES = (110_000, 130_000)  # quote base units per kWh (0.11, 0.13 QUOTE/kWh)
BID_PRICES = (150_000, 140_000)


@dataclass(frozen=True)
class Order:
    owner: Owner
    side: str
    qty: int  # Wh
    price: int  # quote base units per kWh


def plan_orders(cast: Cast, minted: dict[str, int]) -> list[Order]:
    """Prosumers offer what they minted in lots of ``unit``; consumers bid for a bit less than is offered, so the
    cheaper offer fills and the dearer one is rationed at the margin."""
    unit = max(1, min(min(minted.values()) // 4, 10_000))
    orders = [Order(p, "sell", 2 * unit, ASK_PRICES[i % 2] + 10_000 * (i // 2)) for i, p in enumerate(cast.prosumers)]
    orders += [Order(c, "buy", 2 * unit if i % 2 == 0 else 3 * unit // 2, BID_PRICES[i % 2] - 5_000 * (i // 2))
               for i, c in enumerate(cast.consumers)]
    return orders


async def escrow_available(api: Api, o: Owner, asset: str) -> int:
    return sum(int(b["available"]) for b in await api.get("/api/v1/market/balances", o) if b["asset"] == asset)


async def deposit(api: Api, o: Owner, asset: str, amount: int) -> dict[str, Any]:
    before = await escrow_available(api, o, asset)
    request = await api.post("/api/v1/market/deposits", {"asset": asset, "amount": amount}, o)
    signed = sign_transaction_request(request["transaction"], o.wallet)  # the wallet's only job: sign
    done: dict[str, Any] = await api.post(f"/api/v1/market/deposits/{request['id']}/submit",
                                          {"transaction": signed}, o)
    if done["status"] in ("failed", "expired"):
        raise RuntimeError(f"deposit of {amount} {asset} by {o.label} ended {done['status']}: {done.get('error')}")
    deadline = time.monotonic() + 20  # "submitted": credited once the escrow resolver sees the confirmation
    while await escrow_available(api, o, asset) < before + amount:
        if time.monotonic() > deadline:
            raise RuntimeError(f"deposit {request['id']} of {amount} {asset} by {o.label} not credited within 20 s "
                               f"(status {done['status']})")
        await asyncio.sleep(0.3)
    return done


async def fund_and_deposit(api: Api, cast: Cast, orders: list[Order]) -> None:
    for c in cast.consumers:
        r = await api.post("/api/v1/admin/faucet/quote", {"user_id": c.id, "amount": FAUCET}, cast.admin)
        say(f"faucet: {quote(FAUCET)} to {c.label}'s wallet (admin, development only)  tx {short(r['signature'])}")
    for o in orders:
        asset = "energy" if o.side == "sell" else "quote"
        amount = o.qty if o.side == "sell" else -(-o.qty * o.price // 1000)
        done = await deposit(api, o.owner, asset, amount)
        shown = kwh(amount) if asset == "energy" else quote(amount)
        say(f"{o.owner.label:<5} deposited {shown:>16} into escrow (wallet-signed transaction request)  "
            f"tx {short(done['signature'])}")


async def wait_for_room(api: Api, need_s: float) -> None:
    """Orders go into the open epoch: start placing them with at least ``need_s`` left before it closes."""
    book = await api.get("/api/v1/market/book")
    left = datetime.fromisoformat(book["epoch_end"]).timestamp() - time.time()
    if left < need_s:
        await asyncio.sleep(left + 0.2)


async def place_orders(api: Api, orders: list[Order]) -> str:
    """Places the orders (all in one epoch); returns that epoch's start."""
    placed = []
    for o in orders:
        out = await api.post("/api/v1/market/orders", {"side": o.side, "qty": o.qty, "price": o.price}, o.owner)
        placed.append(out)
        say(f"{o.owner.label:<5} {o.side:<4} {kwh(o.qty):>14} limit {quote(o.price)}/kWh   order {out['id']}")
    epochs = {p["epoch_start"] for p in placed}
    if len(epochs) != 1:
        raise RuntimeError(f"orders landed in several epochs: {sorted(epochs)}")
    return str(epochs.pop())


async def wait_settled(api: Api, epoch_start: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    epoch: dict[str, Any] = {}
    shown = set()
    while time.monotonic() < deadline:
        epoch = await api.get(f"/api/v1/market/epochs/{epoch_start}")
        if epoch["status"] not in shown:
            shown.add(epoch["status"])
            if epoch["status"] != "open":
                say(f"epoch {epoch_start[11:19]}–{epoch['end'][11:19]} UTC: {epoch['status']}")
        if epoch["status"] == "settled":
            return epoch
        await asyncio.sleep(0.3)
    raise RuntimeError(f"epoch {epoch_start} not settled within {timeout_s:.0f} s (status {epoch.get('status')})")


async def show_settlement(api: Api, rpc: JsonRpc, cast: Cast, mints: Mints, epoch: dict[str, Any]) -> list[str]:
    say(f"clearing price {quote(epoch['price'])}/kWh, volume {kwh(epoch['volume'])}, {epoch['order_count']} orders, "
        f"{epoch['trade_count']} trades, order-set hash {(epoch['order_set_hash'] or '-')[:16]}…")
    signatures = []
    for o in cast.owners:
        for f in await api.get("/api/v1/market/fills", o):
            if f["epoch_start"] != epoch["start"]:
                continue
            verb = "sold  " if f["side"] == "sell" else "bought"
            fee = f" (fee {quote(f['fee'])})" if f["fee"] else ""
            say(f"{o.label:<5} {verb} {kwh(f['qty']):>14} for {quote(f['value'])}{fee}  {f['status']}  "
                f"tx {short(f['signature'], 24)}")
            if f["signature"]:
                signatures.append(f["signature"])
    if signatures:
        say(f"{len(signatures)} fills settled on chain in {len(set(signatures))} atomic transaction(s)")
    say("balances after settlement (wallet on chain via JSON-RPC; escrow available+locked from the API):")
    for o in cast.owners:
        energy = await rpc.token_balance(ata(o.address, mints.energy_mint))
        q = await rpc.token_balance(ata(o.address, mints.quote_mint))
        escrow = {b["asset"]: b for b in await api.get("/api/v1/market/balances", o)}
        e, qq = escrow.get("energy", {}), escrow.get("quote", {})
        say(f"  {o.label:<5} wallet {kwh(energy):>14} {quote(q):>18} | escrow {kwh(e.get('available', 0)):>13} "
            f"+{kwh(e.get('locked', 0))} locked, {quote(qq.get('available', 0))}")
    return sorted(set(signatures))


async def withdraw_leftovers(api: Api, cast: Cast) -> None:
    """What did not trade (a rationed offer, a bid's price improvement) goes back to the wallet."""
    for o in cast.owners:
        for b in await api.get("/api/v1/market/balances", o):
            if int(b["available"]) > 0:
                amount = int(b["available"])
                t = await api.post("/api/v1/market/withdrawals", {"asset": b["asset"], "amount": amount}, o)
                shown = kwh(amount) if b["asset"] == "energy" else quote(amount)
                say(f"{o.label:<5} withdrew {shown:>16} of unused escrow to the wallet: {t['status']}  "
                    f"tx {short(t['signature'])}")


async def reconciliation(api: Api, cast: Cast) -> None:
    r = await api.get("/api/v1/admin/market/reconciliation", cast.admin)
    say(f"reconciliation: {r['checked']} escrow accounts checked, {len(r['mismatches'])} mismatches "
        f"(on-chain escrow = database available + locked)")


def now_utc() -> str:
    return datetime.now(UTC).strftime("%H:%M:%S")
