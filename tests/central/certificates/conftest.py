"""Fixtures shared by the certificate tests: the real embedded ledger with the certificate chain operations
(``chain_env``), the service over in-memory stores (``svc_env``) and the PostgreSQL world (``world``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from solders.keypair import Keypair

from central.certificates.models import MeterInfo
from central.certificates.pg_store import PgCertificateStore, PgDirectory, PgGeneration
from central.certificates.service import CertificateService
from central.certificates.store import MemoryCertificateStore, MemoryDirectory, MemoryGeneration
from central.certificates.validation import CertificateValidator
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from tests.central.certificates.pg_world import HOUR, T0_MS, Site, World, link_wallet
from tests.central.certificates.pg_world import T0 as PG_T0
from tests.central.certificates.support import CONFIG, T0, CertLedgerEnv, People, ServiceEnv, cert_ops
from tests.central.clock import Clock
from tests.central.pg import add_user, open_pool


@pytest.fixture
async def chain_env() -> AsyncIterator[CertLedgerEnv]:
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=None))
    issuer, fee_payer = Keypair(), Keypair()
    await ledger.request_airdrop(fee_payer.pubkey(), 100 * 10**9)
    ops = cert_ops(ledger, issuer, fee_payer)
    yield CertLedgerEnv(ledger, issuer, fee_payer, ops)
    await ledger.close()


@pytest.fixture
def svc_env(chain_env: CertLedgerEnv) -> ServiceEnv:
    store, directory, generation = MemoryCertificateStore(), MemoryDirectory(), MemoryGeneration()
    clock = Clock(T0 + timedelta(days=2))
    people = People(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), Keypair(), Keypair(), uuid.uuid4())
    directory.meters[people.meter_id] = MeterInfo(people.meter_id, "SN-SOLAR-1", "solar", people.prosumer)
    directory.wallets[people.prosumer] = str(people.prosumer_wallet.pubkey())
    directory.wallets[people.consumer] = str(people.consumer_wallet.pubkey())
    service = CertificateService(
        store=store, directory=directory, generation=generation, chain_ops=chain_env.ops, config=CONFIG, clock=clock
    )
    validator = CertificateValidator(chain_env.ops, store, clock)
    return ServiceEnv(chain_env, store, directory, generation, clock, service, validator, people)


@pytest.fixture
async def world(pg_dsn: str, chain_env: CertLedgerEnv) -> AsyncIterator[World]:
    pool = await open_pool(pg_dsn, min_size=2, max_size=8)
    try:
        authority = await add_user(pool, "rec_authority")
        prosumer = await add_user(pool, "prosumer")
        consumer = await add_user(pool, "consumer")
        pw, cw = Keypair(), Keypair()
        await link_wallet(pool, prosumer, pw)
        await link_wallet(pool, consumer, cw)
        site = Site(pool, prosumer, "SN-PG-SOLAR")
        await site.install()
        await site.produce(T0_MS, 60, 10)  # 10 Wh a minute for an hour: four final windows of 150 Wh
        clock = Clock(PG_T0 + 3 * HOUR)
        store = PgCertificateStore(pool)
        service = CertificateService(
            store=store, directory=PgDirectory(pool), generation=PgGeneration(pool), chain_ops=chain_env.ops,
            config=CONFIG, clock=clock,
        )  # fmt: skip
        validator = CertificateValidator(chain_env.ops, store, clock)
        yield World(pool, chain_env, clock, service, validator, store, authority, prosumer, consumer, pw, cw, site)
    finally:
        await pool.close()
