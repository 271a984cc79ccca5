"""Test helper: seed owners, meters and verified readings; settle them; link wallets; read on-chain energy."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from solders.pubkey import Pubkey

from central.accounting import DEFAULT_WINDOW_MS
from central.accounting.pg_store import PgAccountingStore
from central.accounting.service import AccountingService
from central.ledger.builder import associated_token_address
from central.ledger.platform import Platform
from central.ledger.tokens import parse_mint
from central.minting.queries import minted_wh
from central.wallets.pg_store import PgWalletStore
from central.wallets.service import WalletService
from protocol.keys import DeviceKey
from protocol.record import Reading
from tests.central.gateway import Gateway, exact, ingest, ingest_service
from tests.central.pg import add_device, add_meter, add_user

W = DEFAULT_WINDOW_MS
# Two days before the wall clock, window-aligned: the end-to-end tests publish through the real app, whose ingest
# rejects readings older than ingest.max_age_ms (60 days) — a fixed date would age out of it.
_NOW_MS = time.time_ns() // 1_000_000
T0 = _NOW_MS - _NOW_MS % W - 2 * 86_400_000
STEP_MS = 5 * 60_000  # one reading every 5 minutes: every window boundary falls on a reading


@dataclass
class Site:
    gateway: Gateway
    meters: dict[str, uuid.UUID] = field(default_factory=dict)
    owners: dict[str, uuid.UUID] = field(default_factory=dict)
    first_export: dict[str, int] = field(default_factory=dict)
    last_reading: dict[str, tuple[int, int]] = field(default_factory=dict)  # serial -> (ts, export)
    count: int = 0


async def seed_site(pool: asyncpg.Pool, owners: list[uuid.UUID], serials: list[str]) -> Site:
    gw = Gateway()
    await add_device(pool, gw.device_id, gw.key.public_key)
    site = Site(gw)
    for owner, serial in zip(owners, serials, strict=True):
        site.meters[serial] = await add_meter(pool, gw.device_id, serial, owner)
        site.owners[serial] = owner
    return site


async def feed(pool: asyncpg.Pool, site: Site, start_ms: int, n: int, rate: dict[str, int]) -> None:
    """n readings per meter from start_ms, every STEP_MS, export rising by rate[serial] per reading, through
    verified ingest (the service, without MQTT)."""
    recs = signed_readings(site, start_ms, n, rate)
    svc = ingest_service(pool, start_ms + n * STEP_MS + W)
    for i in range(0, len(recs), 500):
        await ingest(svc, site.gateway.device_id, recs[i : i + 500])


def signed_readings(site: Site, start_ms: int, n: int, rate: dict[str, int]) -> list[Reading]:
    recs = []
    for k in range(n):
        ts = start_ms + k * STEP_MS
        for serial in site.meters:
            _, last = site.last_reading.get(serial, (0, 1_000 * (1 + len(serial))))
            export = last + (rate[serial] if serial in site.last_reading else 0)
            site.first_export.setdefault(serial, export)
            site.last_reading[serial] = (ts, export)
            site.count += 1
            recs.append(exact(site.gateway, serial, ts, export, import_wh=7 * site.count))
    return recs


async def link_wallet(pool: asyncpg.Pool, user: uuid.UUID) -> DeviceKey:
    wallet = DeviceKey.generate()
    svc = WalletService(PgWalletStore(pool), clock=lambda: datetime.now(UTC), link_ttl=timedelta(minutes=5))
    link = await svc.start_link(user, wallet.device_id)
    await svc.complete_link(user, link.message(), wallet.sign(link.message().encode()))
    return wallet


async def energy_balance(chain: Platform, wallet: str) -> int:
    bal = await chain.ledger.get_token_account_balance(
        associated_token_address(Pubkey.from_string(wallet), chain.energy_mint)
    )
    return bal.amount if bal else 0


async def energy_supply(chain: Platform) -> int:
    acc = await chain.ledger.get_account(chain.energy_mint)
    assert acc is not None
    info = parse_mint(acc)
    assert info is not None
    return info.supply


async def minted_wh_in_db(pool: asyncpg.Pool, owner: uuid.UUID | None = None) -> int:
    return await minted_wh(pool, owner)


__all__ = ["T0", "W", "add_user"]


async def account_all(pool: asyncpg.Pool) -> int:
    svc = AccountingService(PgAccountingStore(pool))
    total = 0
    while n := await svc.run_once():
        total += n
    return total
