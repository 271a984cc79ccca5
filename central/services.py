"""What the composition root builds: every subsystem's services, as one typed, frozen object.

:func:`central.bootstrap.bootstrap` builds a :class:`Services` from the config and the opened adapters; the app sets
it once under ``SERVICES`` and handlers read it as ``call.services``; each subsystem's wiring
(``central.wiring.<name>``) derives its jobs, MQTT subscriptions, readiness checks and lifetime from it.

A service this process cannot have (the chain-backed ones without an initialised ledger, ingest without MQTT) is an
:class:`~central.errors.Unavailable` value, decided once at build time: using it through
:func:`~central.errors.require` raises ``ServiceUnavailableError``, which HTTP answers with 503 in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from central.accounting.service import AccountingService
from central.archive.pg import ArchiveReader
from central.archive.service import ArchiveService
from central.broker.dynsec import DynsecAccess
from central.certificates.routes import Certificates
from central.chain.outbox import ChainOutbox
from central.config import CentralConfig
from central.db.replica import ReadPools
from central.errors import Unavailable
from central.http.auth import TokenCodec
from central.identity.context import Identity
from central.ingest.metrics import IngestMetrics
from central.ingest.service import IngestService
from central.ledger.platform import Platform
from central.ledger.runtime import LedgerRuntime
from central.market.context import Market
from central.market.feed import MarketFeed
from central.mqtt import Mqtt
from central.readings.live import LiveHub
from central.wallets.service import OnLinked, WalletService
from protocol.keys import DeviceKey


@dataclass(frozen=True)
class Ingest:
    service: IngestService
    metrics: IngestMetrics


@dataclass(frozen=True)
class Readings:
    #: The process's live WebSocket hub; the market adds its channels at build time.
    hub: LiveHub
    #: Bulk reads (readings, energy): the read replica while it is fresh enough, else the primary.
    reads: ReadPools


@dataclass(frozen=True)
class Archive:
    #: Archived readings (the read paths fall back to it for archived ranges).
    reader: ArchiveReader
    #: The partition upkeep and archive duty (the ``reading-archive`` job).
    service: ArchiveService


@dataclass(frozen=True)
class Wallets:
    service: WalletService
    #: The ledger and platform keys wallets, minting and the faucet use.
    chain: Platform | Unavailable
    #: Called after a wallet is linked: minting's release of the owner's accrued mints (wallets never import minting).
    on_linked: OnLinked


@dataclass(frozen=True)
class Minting:
    #: The energy-mint chain outbox (claims with SKIP LOCKED: every process runs it).
    outbox: ChainOutbox | Unavailable


@dataclass(frozen=True)
class MarketServices:
    market: Market | Unavailable
    #: The market's live channels on the readings hub (registered whether or not the market runs).
    feed: MarketFeed


@dataclass(frozen=True)
class Services:
    config: CentralConfig
    pool: asyncpg.Pool
    mqtt: Mqtt | None
    #: Central's message-signing key (protocol v1.1); present whenever MQTT is or a key file is configured.
    signer: DeviceKey | None
    tokens: TokenCodec
    identity: Identity
    #: The broker's access control (Mosquitto dynamic security) when central manages it.
    broker: DynsecAccess | Unavailable
    ingest: Ingest | Unavailable
    readings: Readings
    archive: Archive
    ledger: LedgerRuntime | Unavailable
    wallets: Wallets
    accounting: AccountingService | Unavailable
    minting: Minting
    market: MarketServices
    certificates: Certificates | Unavailable
