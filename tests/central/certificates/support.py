"""Fixtures for certificate tests: a real embedded ledger (LiteSVM runs the real Token-2022/ATA/Memo programs)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from solders.keypair import Keypair
from solders.litesvm import LiteSVM

from central.certificates.metadata import CertificateMetadata
from central.certificates.models import MeterInfo, WindowExport
from central.certificates.operations import CertificateChain
from central.certificates.ports import LiteSVMLedger
from central.certificates.service import CertificateConfig, CertificateService, PreparedTransaction
from central.certificates.store import MemoryCertificateStore, MemoryDirectory, MemoryGeneration
from central.certificates.validation import CertificateValidator

URI_BASE = "https://gtx.example/api/v1/certificates"
T0 = datetime(2026, 6, 1, 10, tzinfo=UTC)


@dataclass
class Chain:
    svm: LiteSVM
    ledger: LiteSVMLedger
    issuer: Keypair
    fee_payer: Keypair
    ops: CertificateChain


@pytest.fixture
def chain_env() -> Chain:
    svm = LiteSVM()
    issuer, fee_payer = Keypair(), Keypair()
    svm.airdrop(fee_payer.pubkey(), 100 * 10**9)
    ledger = LiteSVMLedger(svm)
    ops = CertificateChain(ledger, issuer=issuer, fee_payer=fee_payer, uri_base=URI_BASE)
    return Chain(svm, ledger, issuer, fee_payer, ops)


def make_meta(energy_wh: int = 1234, **overrides: object) -> CertificateMetadata:
    values: dict[str, object] = {
        "certificate_id": uuid.uuid4(),
        "meter_serial": "SN-0001",
        "period_start": T0,
        "period_end": T0 + timedelta(hours=1),
        "energy_source": "solar",
        "energy_wh": energy_wh,
        "issuer": "GridTokenX REC Authority",
        "issue_date": T0 + timedelta(days=1),
        "expiry_date": T0 + timedelta(days=366),
        "readings_root": hashlib.sha256(b"readings").digest(),
    }
    values.update(overrides)
    return CertificateMetadata(**values)  # type: ignore[arg-type]


# --- service-level harness (in-memory stores, real embedded ledger) ---

WINDOW = timedelta(minutes=15)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class People:
    authority: uuid.UUID
    prosumer: uuid.UUID
    consumer: uuid.UUID
    prosumer_wallet: Keypair
    consumer_wallet: Keypair
    meter_id: uuid.UUID


def window_exports(meter_id: uuid.UUID, start: datetime, exports: list[int]) -> list[WindowExport]:
    return [
        WindowExport(
            meter_id,
            start + i * WINDOW,
            start + (i + 1) * WINDOW,
            wh,
            hashlib.sha256(f"{meter_id}{i}".encode()).digest(),
        )
        for i, wh in enumerate(exports)
    ]


async def sign_and_submit(
    service: CertificateService, prepared: PreparedTransaction, wallet: Keypair, user: uuid.UUID
) -> str:
    tx = prepared.transaction
    tx.partial_sign([wallet], tx.message.recent_blockhash)
    return await service.submit(prepared.request.id, bytes(tx), user_id=user)


@dataclass
class ServiceEnv:
    chain: Chain
    store: MemoryCertificateStore
    directory: MemoryDirectory
    generation: MemoryGeneration
    clock: Clock
    service: CertificateService
    validator: CertificateValidator
    people: People


CONFIG = CertificateConfig(issuer_name="GridTokenX REC Authority", uri_base=URI_BASE)


@pytest.fixture
def svc_env(chain_env: Chain) -> ServiceEnv:
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
