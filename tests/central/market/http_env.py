"""Helpers for the market tests over HTTP (the ``env`` fixture is in ``conftest.py``): tokens, funded users with
wallets, deposits signed by the wallet, the WebSocket feed."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from uuid import UUID

import aiohttp
from aiohttp.test_utils import TestClient
from solders.keypair import Keypair

from central.app import POOL
from central.http.middleware import TOKENS
from central.http.roles import Role
from central.ledger.builder import associated_token_address, create_ata_idempotent, mint_to_checked, send_and_confirm
from central.ledger.port import Ledger
from central.ledger.setup import LedgerSetup
from central.market.client import sign_transaction_request
from tests.central.market.market_fixtures import make_user

#: The app under test, its ledger setup (mints, keys) and its ledger.
Env = tuple[TestClient[Any, Any], LedgerSetup, Ledger]


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


async def ws_next(ws: aiohttp.ClientWebSocketResponse, channel: str, pred: Any = lambda _d: True) -> dict[str, Any]:
    async with asyncio.timeout(20):
        while True:
            msg = json.loads((await ws.receive()).data)
            if msg.get("type") == "event" and msg["channel"] == channel and pred(msg["data"]):
                return msg["data"]  # type: ignore[no-any-return]
