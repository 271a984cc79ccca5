"""Helpers for certificate tests (their fixtures are in ``conftest.py``): the real embedded ledger (LiteSVM running
the real Token-2022/ATA/Memo programs, in memory) and the certificates service over it."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.certificates.metadata import CertificateMetadata
from central.certificates.models import WindowExport
from central.certificates.operations import CertificateLedger
from central.certificates.service import CertificateConfig, CertificateService, PreparedTransaction
from central.certificates.store import MemoryCertificateStore, MemoryDirectory, MemoryGeneration
from central.certificates.validation import CertificateValidator
from central.ledger import builder, cosign
from central.ledger.embedded import EmbeddedLedger
from central.ledger.keys import FileKey, PlatformKey
from central.ledger.platform import Platform
from central.ledger.port import Ledger
from tests.central.clock import Clock

URI_BASE = "https://gtx.example/api/v1/certificates"
T0 = datetime(2026, 6, 1, 10, tzinfo=UTC)


@dataclass
class CertLedgerEnv:
    ledger: EmbeddedLedger
    issuer: Keypair
    fee_payer: Keypair
    ops: CertificateLedger


def sign_partial(message: MessageV0, wallets: Sequence[Keypair]) -> VersionedTransaction:
    """What a wallet does: sign the message, leaving the platform's signature slots empty."""
    return cosign.wallet_sign(message, wallets)


async def user_submit(env: CertLedgerEnv, instructions: Sequence[Instruction], *wallets: Keypair) -> Signature:
    message, last_valid = await env.ops.user_message(instructions)
    return await env.ops.submit_user_transaction(sign_partial(message, wallets), message, last_valid)


async def self_paid(env: CertLedgerEnv, wallet: Keypair, instructions: Sequence[Instruction]) -> Signature:
    """A transaction the holder signs and pays for themself, bypassing the platform entirely."""
    if await env.ledger.get_balance(wallet.pubkey()) == 0:
        await env.ledger.request_airdrop(wallet.pubkey(), 10**9)
    latest = await env.ledger.get_latest_blockhash()
    tx = builder.build_transaction(wallet, instructions, latest.blockhash)
    return await env.ledger.send_transaction(tx, skip_preflight=False)


async def balance(env: CertLedgerEnv, wallet: Pubkey, mint: Pubkey) -> int:
    return await env.ops.balance(mint, wallet)


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
    return await service.submit(prepared.request.id, bytes(sign_partial(prepared.message, [wallet])), user_id=user)


@dataclass
class ServiceEnv:
    chain: CertLedgerEnv
    store: MemoryCertificateStore
    directory: MemoryDirectory
    generation: MemoryGeneration
    clock: Clock
    service: CertificateService
    validator: CertificateValidator
    people: People


CONFIG = CertificateConfig(issuer_name="GridTokenX REC Authority", uri_base=URI_BASE)


def cert_ops(ledger: Ledger, issuer: Keypair, fee_payer: Keypair) -> CertificateLedger:
    """Certificate operations on a platform with these issuer and fee payer keys (its mints play no part)."""
    platform = Platform(
        ledger, Pubkey.new_unique(), PlatformKey.generate("mint_authority"), FileKey("fee_payer", fee_payer),
        rec_issuer=FileKey("rec_issuer", issuer),
    )
    return CertificateLedger(platform, uri_base=URI_BASE)
