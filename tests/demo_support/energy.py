"""Stage 4 of the demo: verified export becomes energy tokens — per (meter, settlement window), exactly the Wh
measured. The wallet balance is read from the ledger over standard JSON-RPC and compared with the database."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
from demo_support.api import Api, JsonRpc
from demo_support.people import Cast, Owner
from demo_support.report import kwh, say, short
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from central.minting.queries import minted_wh


@dataclass(frozen=True)
class Mints:
    energy_mint: str
    quote_mint: str
    rpc_url: str


def ata(owner: str, mint: str) -> str:
    return str(get_associated_token_address(Pubkey.from_string(owner), Pubkey.from_string(mint)))


async def ledger_info(api: Api) -> Mints:
    info = await api.get("/api/v1/ledger")
    return Mints(info["energy_mint"], info["quote_mint"], info["rpc_url"])


async def confirmed_mints(api: Api, o: Owner) -> list[dict[str, Any]]:
    return [m for m in await api.get("/api/v1/mints", o, limit=1000) if m["status"] == "confirmed"]


async def wait_for_mints(api: Api, cast: Cast, min_wh: int, timeout_s: float) -> None:
    """Wait until every prosumer has at least ``min_wh`` minted and confirmed (the simulated sun has to rise)."""
    deadline = time.monotonic() + timeout_s
    while True:
        totals = {o.label: sum(m["energy_wh"] for m in await confirmed_mints(api, o)) for o in cast.prosumers}
        if all(t >= min_wh for t in totals.values()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"prosumers' confirmed mints after {timeout_s:.0f} s: {totals} (wanted >= {min_wh} Wh)")
        await asyncio.sleep(1)


async def agreeing_balances(rpc: JsonRpc, pool: asyncpg.Pool, o: Owner, mints: Mints) -> tuple[int, int]:
    """(on-chain energy balance of the wallet, Σ confirmed mints in the database), read until they agree (minting
    goes on meanwhile, so a read can fall between a confirmation and its record)."""
    chain = db = -1
    for _ in range(20):
        async with pool.acquire() as conn:
            db = await minted_wh(conn, uuid.UUID(o.id))
        chain = await rpc.token_balance(ata(o.address, mints.energy_mint))
        async with pool.acquire() as conn:
            db_after = await minted_wh(conn, uuid.UUID(o.id))
        if chain == db == db_after:
            break
        await asyncio.sleep(0.2)
    return chain, db


async def show_minting(api: Api, rpc: JsonRpc, pool: asyncpg.Pool, cast: Cast, mints: Mints) -> dict[str, int]:
    """Prints each owner's confirmed mints and wallet balance; returns the prosumers' minted Wh."""
    minted: dict[str, int] = {}
    for o in cast.owners:
        rows = await confirmed_mints(api, o)
        chain, db = await agreeing_balances(rpc, pool, o, mints)
        agree = "=" if chain == db else "!="
        say(f"{o.label:<5} {o.role:<8} {len(rows):>3} windows minted; wallet {kwh(chain):>14} on chain (JSON-RPC) "
            f"{agree} {kwh(db)} confirmed in the database")
        if chain != db:
            raise RuntimeError(f"{o.label}: wallet holds {chain} Wh on chain but the database confirms {db} Wh")
        if o.role == "prosumer":
            minted[o.label] = chain
            wallet = await api.get("/api/v1/wallet", o)
            say(f"      GET /api/v1/wallet: {wallet['address']} holds {kwh(wallet['energy_wh'])}")
            latest = max(rows, key=lambda m: m["window_start_ms"], default=None)
            if latest is not None:
                say(f"      last window {latest['window_start'][11:19]}–{latest['window_end'][11:19]} UTC: "
                    f"{kwh(latest['energy_wh'])}, readings root {latest['readings_root'][:16]}…, "
                    f"tx {short(latest['signature'], 24)}")
    return minted
