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
from central.certificates.operations import CertificateChain
from central.certificates.ports import LiteSVMLedger

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
