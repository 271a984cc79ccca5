"""A PostgreSQL world for certificate tests, built through the real components: identity rows, wallets linked by
wallet signature (WalletService), readings signed by a gateway key and taken in by verified ingest, and final
settlement windows made by the accounting service."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg
from prometheus_client import CollectorRegistry
from solders.keypair import Keypair

from central.accounting.pg_store import PgAccountingStore
from central.accounting.service import AccountingService
from central.db.migrations import migrate_dsn
from central.ingest.metrics import IngestMetrics
from central.ingest.postgres import PgIngestStore
from central.ingest.service import IngestService
from central.wallets.pg_store import PgWalletStore
from central.wallets.service import WalletService
from protocol.ack import Ack
from protocol.batch import encode_batch
from protocol.keys import DeviceKey
from protocol.record import ZERO_HASH, sign_reading

MINUTE_MS = 60_000
W_MS = 15 * MINUTE_MS
#: Where the PostgreSQL tests' production starts: a window boundary two days ago (the HTTP tests run on the real
#: clock, so a fixed date would one day lie past the certificates' expiry).
_NOW_MS = int(time.time() * 1000)
T0_MS = _NOW_MS - 2 * 86_400_000 - _NOW_MS % W_MS
T0 = datetime.fromtimestamp(T0_MS / 1000, tz=UTC)
HOUR = timedelta(hours=1)


async def migrated_pool(dsn: str) -> asyncpg.Pool:
    await migrate_dsn(dsn)
    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=8)
    assert pool is not None
    return pool


async def add_user(pool: asyncpg.Pool, role: str) -> uuid.UUID:
    uid = uuid.uuid4()
    await pool.execute(
        "INSERT INTO users (id, email, password_hash, role, email_verified_at) VALUES ($1, $2, 'x', $3, now())",
        uid,
        f"{uid.hex[:12]}@example.test",
        role,
    )
    return uid


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
    key: DeviceKey = field(default_factory=DeviceKey.generate)
    meter_id: uuid.UUID = field(default_factory=uuid.uuid4)
    seq: int = 0
    prev: bytes = ZERO_HASH

    async def install(self) -> None:
        await self.pool.execute(
            "INSERT INTO devices (device_id, public_key, status, verified_at) VALUES ($1, $2, 'verified', now())",
            self.key.device_id,
            self.key.public_key,
        )
        await self.pool.execute(
            "INSERT INTO meters (id, serial, device_id, model, protocol, source, meter_key_hash, owner_id, claimed_at)"
            " VALUES ($1, $2, $3, 'sim', 'modbus', $4, 'x', $5, now())",
            self.meter_id,
            self.serial,
            self.key.device_id,
            self.source,
            self.owner,
        )

    async def produce(self, start_ms: int, minutes: int, wh_per_minute: int, *, first_export: int = 10_000) -> None:
        """Sign one reading a minute (export rising steadily), ingest them, and let accounting finalise windows."""
        records = []
        for k in range(minutes + 1):
            self.seq += 1
            r = sign_reading(
                self.key, meter_serial=self.serial, seq=self.seq, timestamp_ms=start_ms + k * MINUTE_MS,
                import_wh=0, export_wh=first_export + k * wh_per_minute, power_w=None, prev_hash=self.prev,
            )  # fmt: skip
            self.prev = r.hash()
            records.append(r)
        ingest = IngestService(
            PgIngestStore(self.pool),
            metrics=IngestMetrics.for_registry(CollectorRegistry()),
            clock_ms=lambda: start_ms + (minutes + 1) * MINUTE_MS,
        )
        ack = Ack.from_json((await ingest.handle_readings(self.key.device_id, encode_batch(records))).to_json())
        assert not ack.rejected, ack
        accounting = AccountingService(PgAccountingStore(self.pool))
        while await accounting.run_once():
            pass
