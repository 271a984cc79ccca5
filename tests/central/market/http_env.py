"""Helpers for the market tests over HTTP (the ``env`` fixture is in ``conftest.py``): tokens, funded users with
wallets, deposits signed by the wallet, the WebSocket feed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import aiohttp
from aiohttp.test_utils import TestClient
from solders.keypair import Keypair

from central.app import POOL
from central.config import CentralConfig
from central.http.middleware import TOKENS
from central.http.roles import Role
from central.ledger.builder import associated_token_address, create_ata_idempotent, mint_to_checked, send_and_confirm
from central.ledger.port import Ledger
from central.ledger.setup import LedgerSetup
from central.market.client import sign_transaction_request
from central.wiring import Subsystem
from tests.central.app_env import ledger_of, running_app, setup_of
from tests.central.market.market_fixtures import make_user

#: The app under test, its ledger setup (mints, keys) and its ledger.
Env = tuple[TestClient[Any, Any], LedgerSetup, Ledger]
#: The market tests' ledger (its own keys, no JSON-RPC server, 20 ms slots) and market (2-second epochs, fast jobs).
FAST_LEDGER: dict[str, Any] = {"create_keys": True, "serve_rpc": False, "slot_ms": 20}
FAST_MARKET: dict[str, Any] = {"epoch_length_s": 2, "fee_bps": 100, "clear_interval_s": 0.1, "settle_interval_s": 0.1,
                               "reconcile_interval_s": 0.5}


@asynccontextmanager
async def serving(config: CentralConfig, subsystems: Sequence[Subsystem]) -> AsyncIterator[Env]:
    """The app with ``subsystems`` on a test server, as an ``Env``."""
    async with running_app(config, subsystems) as client:
        yield client, setup_of(client.app), ledger_of(client.app).ledger


def auth(client: TestClient[Any, Any], user: UUID, role: Role = Role.PROSUMER) -> dict[str, str]:
    token, _ = client.app[TOKENS].issue(user, role)
    return {"Authorization": f"Bearer {token}"}


async def funded_user(
    client: TestClient[Any, Any],
    setup: LedgerSetup,
    ledger: Ledger,
    role: str,
    *,
    energy: int = 0,
    quote: int = 0,
) -> tuple[UUID, Keypair]:
    wallet = Keypair()
    uid = await make_user(client.app[POOL], role, wallet=wallet)
    ixs = []
    for mint, amount, dec in ((setup.energy_mint, energy, 3), (setup.quote_mint, quote, 6)):
        ixs.append(create_ata_idempotent(setup.fee_payer.pubkey, wallet.pubkey(), mint))
        if amount:
            ixs.append(
                mint_to_checked(
                    mint,
                    associated_token_address(wallet.pubkey(), mint),
                    setup.mint_authority.pubkey,
                    amount=amount,
                    decimals=dec,
                )
            )
    await send_and_confirm(ledger, setup.fee_payer, ixs, [setup.mint_authority])
    return uid, wallet


async def deposit(client: TestClient[Any, Any], h: dict[str, str], wallet: Keypair, asset: str, amount: int) -> None:
    r = await client.post("/api/v1/market/deposits", json={"asset": asset, "amount": amount}, headers=h)
    assert r.status == 201, await r.text()
    req = await r.json()
    signed = sign_transaction_request(req["transaction"], wallet)
    r = await client.post(f"/api/v1/market/deposits/{req['id']}/submit", json={"transaction": signed}, headers=h)
    assert r.status == 200, await r.text()
    assert (await r.json())["status"] == "confirmed"


async def ws_subscribe(ws: aiohttp.ClientWebSocketResponse, *channels: str) -> None:
    """Subscribe and wait until the server confirmed every channel: events published before that are not sent."""
    for ch in channels:
        await ws.send_json({"type": "subscribe", "channel": ch})
    pending = set(channels)
    async with asyncio.timeout(20):
        while pending:
            msg = await ws.receive_json()
            if msg.get("type") == "subscribed":
                pending.discard(msg["channel"])


async def ws_next(ws: aiohttp.ClientWebSocketResponse, channel: str, pred: Any = lambda _d: True) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            msg = json.loads((await ws.receive()).data)
            if msg.get("type") == "event" and msg["channel"] == channel and pred(msg["data"]):
                return msg["data"]  # type: ignore[no-any-return]
