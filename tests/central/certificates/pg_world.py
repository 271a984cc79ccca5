"""A PostgreSQL world for certificate tests, built through the real components: identity rows, wallets linked by
wallet signature (WalletService), readings signed by a gateway key and taken in by verified ingest, and final
settlement windows made by the accounting service."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from solders.keypair import Keypair

from central.accounting.pg_store import PgAccountingStore
from central.accounting.service import AccountingService
from central.certificates.pg_store import PgCertificateStore
from central.certificates.service import CertificateService
from central.certificates.validation import CertificateValidator
from central.wallets.pg_store import PgWalletStore
from central.wallets.service import WalletService
from tests.central.certificates.support import CertLedgerEnv
from tests.central.clock import Clock
from tests.central.gateway import Gateway, exact, ingest, ingest_service
from tests.central.pg import add_device, add_meter

MINUTE_MS = 60_000
W_MS = 15 * MINUTE_MS
#: Where the PostgreSQL tests' production starts: a window boundary two days ago (the HTTP tests run on the real
#: clock, so a fixed date would one day lie past the certificates' expiry).
_NOW_MS = int(time.time() * 1000)
T0_MS = _NOW_MS - 2 * 86_400_000 - _NOW_MS % W_MS
T0 = datetime.fromtimestamp(T0_MS / 1000, tz=UTC)
HOUR = timedelta(hours=1)


async def link_wallet(pool: asyncpg.Pool, user: uuid.UUID, wallet: Keypair) -> None:
    service = WalletService(PgWalletStore(pool))
    link = await service.start_link(user, str(wallet.pubkey()))
    await service.complete_link(user, link.message(), bytes(wallet.sign_message(link.message_bytes())))


@dataclass
class Site:
    """A gateway with one meter (solar unless told otherwise) owned by ``owner``."""

    pool: asyncpg.Pool
    owner: uuid.UUID
    serial: str
    source: str | None = "solar"
    gateway: Gateway = field(default_factory=Gateway)
    meter_id: uuid.UUID = field(default_factory=uuid.uuid4)

    async def install(self) -> None:
        await add_device(self.pool, self.gateway.device_id, self.gateway.key.public_key)
        await add_meter(self.pool, self.gateway.device_id, self.serial, self.owner, source=self.source,
                        meter_id=self.meter_id)

    async def produce(self, start_ms: int, minutes: int, wh_per_minute: int, *, first_export: int = 10_000) -> None:
        """Sign one reading a minute (export rising steadily), ingest them, and let accounting finalise windows."""
        records = [
            exact(self.gateway, self.serial, start_ms + k * MINUTE_MS, first_export + k * wh_per_minute)
            for k in range(minutes + 1)
        ]
        await ingest(ingest_service(self.pool, start_ms + (minutes + 1) * MINUTE_MS), self.gateway.device_id, records)
        accounting = AccountingService(PgAccountingStore(self.pool))
        while await accounting.run_once():
            pass


@dataclass
class World:
    pool: asyncpg.Pool
    chain: CertLedgerEnv
    clock: Clock
    service: CertificateService
    validator: CertificateValidator
    store: PgCertificateStore
    authority: object
    prosumer: object
    consumer: object
    prosumer_wallet: Keypair
    consumer_wallet: Keypair
    site: Site
