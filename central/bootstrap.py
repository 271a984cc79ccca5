"""The composition root's builder: ``bootstrap(config, adapters) -> Services``.

Every service of every subsystem is constructed here and nowhere else, from the config and the adapters the app
opened (pool, MQTT client, ledger, mailer, signer, token codec, clock), each dependency passed in explicitly. What a
process cannot have is decided here, once: without an initialised ledger the chain-backed services (wallet chain,
minting outbox, market, certificates) are :class:`~central.errors.Unavailable`, without MQTT ingest is.

Nothing here starts anything: background jobs, MQTT subscriptions and lifetimes are derived from the returned
``Services`` by each subsystem's wiring (``central.wiring``), and started by ``central.app``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

import asyncpg

from central.accounting.pg_store import PgAccountingStore
from central.accounting.service import AccountingService
from central.archive.directory import DirectoryArchiveStore
from central.archive.pg import ArchiveReader, PgArchive
from central.archive.service import ArchiveService
from central.broker.dynsec import DynsecAccess
from central.certificates.config import CertificateConfig
from central.certificates.operations import CertificateLedger
from central.certificates.pg_store import PgCertificateStore, PgDirectory, PgGeneration
from central.certificates.routes import Certificates
from central.certificates.service import CertificateService
from central.certificates.validation import CertificateValidator
from central.certificates.validation import utc_now as utc_clock
from central.config import CentralConfig
from central.db.replica import ReadPools
from central.errors import Unavailable
from central.http.auth import SESSIONS_CHANNEL, TokenCodec, TokenInfo
from central.http.errors import ApiError
from central.identity.claims import MeterService
from central.identity.context import Identity
from central.identity.gateways import DeviceService
from central.identity.mailer import Mailer
from central.identity.postgres import PostgresAccountStore, PostgresDeviceStore, PostgresMeterStore
from central.identity.users import AccountService
from central.ingest.metrics import IngestMetrics
from central.ingest.postgres import PgIngestStore
from central.ingest.service import IngestService
from central.ingest.settings import IngestSettings
from central.ledger.config import LedgerConfig
from central.ledger.keys import PlatformKey
from central.ledger.keystore import FileKeyStore, KeyStore
from central.ledger.platform import Platform, platform_from_setup
from central.ledger.runtime import LedgerRuntime
from central.ledger.setup import REC_ISSUER_ROLE
from central.market.book import MarketBook
from central.market.config import MarketConfig, ZonesConfig
from central.market.context import Market
from central.market.epochs import EpochClock
from central.market.escrow import Escrow
from central.market.feed import MarketFeed
from central.market.instructions import MarketInstructions
from central.market.matching_pg import PgMatchingStore
from central.market.matching_service import Matching
from central.market.settler import Settler
from central.market.standing_pg import PgStandingStore
from central.market.standing_service import StandingOrders
from central.market.tables import LookupTables
from central.minting.service import mint_outbox, release_accrued
from central.mqtt import Mqtt
from central.readings.live import LiveHub, ReadingsChannel
from central.services import (
    Archive,
    Ingest,
    MarketServices,
    Minting,
    Readings,
    Services,
    Wallets,
)
from central.wallets.pg_store import PgWalletStore
from central.wallets.service import WalletService
from protocol.keys import DeviceKey

#: The certificate issuer's key role: mint authority until sealed, freeze and metadata authority for good.
ISSUER_ROLE = REC_ISSUER_ROLE

NO_LEDGER = "ledger_unavailable"


@dataclass(frozen=True)
class Adapters:
    """What the app opened before building the services."""

    pool: asyncpg.Pool
    mqtt: Mqtt | None
    #: None when this app runs without the ledger subsystem.
    ledger: LedgerRuntime | None
    mailer: Mailer
    signer: DeviceKey | None
    tokens: TokenCodec
    clock: Callable[[], datetime] = utc_clock
    #: The read replica's pool (``[database] replica_dsn``), None without one.
    replica: asyncpg.Pool | None = None
    #: The primary's bulk-read pool (central/db/pool.py); None: bulk reads share ``pool``.
    bulk: asyncpg.Pool | None = None


def bootstrap(config: CentralConfig, adapters: Adapters) -> Services:
    pool = adapters.pool
    runtime = adapters.ledger

    broker = build_broker(config, adapters.mqtt)
    identity = build_identity(config, adapters, None if isinstance(broker, Unavailable) else broker)
    hub = live_hub(pool, adapters.tokens)
    feed = MarketFeed(hub)

    chain: Platform | Unavailable = Unavailable(NO_LEDGER, "the ledger is not configured")
    market: Market | Unavailable = Unavailable(
        "unavailable", "the market needs a ledger, and none is configured in this process"
    )
    certificates: Certificates | Unavailable = Unavailable(
        NO_LEDGER, "certificates need the ledger, which is not configured"
    )
    if runtime is not None and runtime.setup is not None:
        keys = runtime.keys or FileKeyStore(runtime.config.keys_dir)
        chain = platform_from_setup(
            runtime.ledger, runtime.setup, embedded=runtime.config.backend == "embedded",
            rec_issuer=load_rec_issuer(runtime.config, keys), past_issuers=tuple(keys.retired(ISSUER_ROLE)),
        )
        market = build_market(pool, chain, config.market, config.zones, adapters.signer)
        certificates = build_certificates(
            pool, certificate_chain(chain, config.certificates), config.certificates, adapters.clock
        )

    minting = config.minting
    outbox = (
        mint_outbox(pool, chain, batch_size=minting.mint_batch, defer_seconds=minting.accrual_recheck_s)
        if minting.enabled and not isinstance(chain, Unavailable)
        else Unavailable(NO_LEDGER, "minting is not running (no ledger configured)")
    )
    accounting: AccountingService | Unavailable = (
        AccountingService(
            PgAccountingStore(pool), minting.window_ms, minting.accounting_batch,
            max_windows=minting.accounting_max_windows,
        )
        if minting.enabled
        else Unavailable("minting_disabled", "minting is disabled (minting.enabled = false)")
    )
    return Services(
        config=config,
        pool=pool,
        mqtt=adapters.mqtt,
        signer=adapters.signer,
        tokens=adapters.tokens,
        identity=identity,
        broker=broker,
        ingest=build_ingest(pool, config.ingest) if adapters.mqtt is not None else Unavailable(
            "mqtt_disabled", "MQTT is disabled in this configuration (mqtt.enabled = false)"
        ),
        readings=Readings(hub, ReadPools(adapters.bulk or pool, adapters.replica,
                                                max_lag_s=config.database.replica_max_lag_s)),
        archive=build_archive(pool, config),
        ledger=runtime if runtime is not None else Unavailable(NO_LEDGER, "no ledger in this process"),
        wallets=build_wallets(pool, chain),
        accounting=accounting,
        minting=Minting(outbox),
        market=MarketServices(market, feed),
        certificates=certificates,
    )


def build_broker(config: CentralConfig, mqtt: Mqtt | None) -> DynsecAccess | Unavailable:
    """The broker's access control through central's MQTT link when ``[broker] dynsec`` is on."""
    if not config.broker.dynsec:
        return Unavailable("broker_unmanaged", "central does not manage broker access ([broker] dynsec = false)")
    if mqtt is None:
        return Unavailable("mqtt_disabled", "broker access needs MQTT (mqtt.enabled = false)")
    return DynsecAccess(mqtt, timeout_s=config.broker.command_timeout_s)


def build_identity(config: CentralConfig, adapters: Adapters, broker: DynsecAccess | None = None) -> Identity:
    """The pure identity services on their PostgreSQL stores; gateway challenges are published over MQTT (none
    without it) and sealed with central's signing key; registering and revoking a gateway change its broker access
    when central manages it."""
    pool = adapters.pool
    return Identity(
        accounts=AccountService(
            PostgresAccountStore(pool), config.auth, config.identity, adapters.tokens, adapters.mailer
        ),
        devices=DeviceService(PostgresDeviceStore(pool), config.identity, adapters.mqtt, adapters.signer,
                              broker=broker),
        meters=MeterService(PostgresMeterStore(pool), config.identity),
    )


def build_wallets(pool: asyncpg.Pool, chain: Platform | Unavailable) -> Wallets:
    """Wallet linking on PostgreSQL; a completed link releases the owner's accrued (deferred) mint intents, so the
    energy is minted to the new wallet now (minting's ``release_accrued``, injected: wallets sit below minting)."""

    async def on_linked(owner_id: UUID) -> None:
        await release_accrued(pool, owner_id)

    return Wallets(WalletService(PgWalletStore(pool)), chain, on_linked)


def build_archive(pool: asyncpg.Pool, config: CentralConfig) -> Archive:
    """The reading archive on its store (a directory; the same keys fit an object store)."""
    store = DirectoryArchiveStore(Path(config.archive.directory))
    service = ArchiveService(PgArchive(pool, store, row_group_rows=config.archive.row_group_rows), config.archive)
    return Archive(ArchiveReader(store), service)


def build_ingest(pool: asyncpg.Pool, settings: IngestSettings) -> Ingest:
    metrics = IngestMetrics.for_registry()
    service = IngestService(
        PgIngestStore(lambda: pool), metrics=metrics, max_future_ms=settings.max_future_ms,
        max_age_ms=settings.max_age_ms,
    )
    return Ingest(service, metrics)


def live_hub(pool: asyncpg.Pool, tokens: TokenCodec) -> LiveHub:
    """The live WebSocket hub with the readings channel; other subsystems add theirs before it starts."""

    async def authenticate(token: str) -> TokenInfo:
        """The token must be valid *and* still stand: its login not ended (logout, password change), its user
        not disabled, its role still the user's (a token issued before a revocation cannot open a new socket)."""
        info = tokens.inspect(token)
        row = await pool.fetchrow(
            "SELECT role, disabled_at, ($2::uuid IS NULL OR EXISTS (SELECT 1 FROM refresh_tokens WHERE"
            " family_id = $2 AND revoked_at IS NULL AND expires_at > now())) AS live FROM users WHERE id = $1",
            info.user_id, info.session,
        )
        if row is None or row["disabled_at"] is not None or not row["live"] or row["role"] != info.role.value:
            raise ApiError(401, "invalid_token", "session ended")
        return info

    hub = LiveHub(authenticate)
    hub.listen(SESSIONS_CHANNEL, hub.revoke)
    ReadingsChannel.register(hub)
    return hub


def build_market(
    pool: asyncpg.Pool, platform: Platform, config: MarketConfig, zones: ZonesConfig | None = None,
    signer: DeviceKey | None = None,
) -> Market:
    """The market; zonal clearing once ``[zones]`` lists zones (docs/decisions/0017-zonal-clearing.md)."""
    book = MarketBook(
        pool, EpochClock(config.epoch_length_s), config.fee_bps,
        MarketInstructions.for_platform(platform).addresses,
        zoning=zones if zones is not None and zones.zone else None,
    )
    escrow = Escrow(pool, platform, book, confirm_wait_s=config.confirm_wait_s)
    settler = Settler(pool, platform, tables=LookupTables(pool, platform))
    matching = Matching(PgMatchingStore(pool), platform, signer, confirm_wait_s=config.confirm_wait_s)
    return Market(config, book, escrow, settler, platform, StandingOrders(PgStandingStore(pool), book), matching)


def load_rec_issuer(ledger_config: LedgerConfig, keys: KeyStore | None = None) -> PlatformKey:
    """The certificate issuer's own key (``<keys_dir>/rec_issuer.json`` or the token's ``<prefix>-rec_issuer``;
    created only when ``ledger.create_keys``), loaded once into the ``Platform``."""
    store = keys or FileKeyStore(ledger_config.keys_dir)
    issuer, _ = store.load_or_create(ISSUER_ROLE, create=ledger_config.create_keys)
    return issuer


def certificate_chain(platform: Platform, config: CertificateConfig) -> CertificateLedger:
    """Certificate operations on the platform (its ``rec_issuer`` key and its fee payer)."""
    return CertificateLedger(platform, uri_base=config.uri_base)


def build_certificates(
    pool: asyncpg.Pool, chain_ops: CertificateLedger, config: CertificateConfig,
    clock: Callable[[], datetime] = utc_clock,
) -> Certificates:
    store = PgCertificateStore(pool)
    service = CertificateService(
        store=store, directory=PgDirectory(pool), generation=PgGeneration(pool), chain_ops=chain_ops, config=config,
        clock=clock,
    )
    return Certificates(service, CertificateValidator(chain_ops, store, clock))


