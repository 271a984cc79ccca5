"""Certificate records as the service and its stores see them (pure data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from uuid import UUID

from central.certificates.instructions import Retirement
from central.certificates.metadata import CertificateMetadata


class Status(StrEnum):
    ISSUING = "issuing"  # windows reserved in the database, mint not (fully) issued yet
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"  # past expiry and frozen on chain by the expiry sweep


class RequestKind(StrEnum):
    TRANSFER = "transfer"
    RETIRE = "retire"


@dataclass(frozen=True)
class MeterInfo:
    id: UUID
    serial: str
    source: str | None
    owner_id: UUID | None


@dataclass(frozen=True)
class WindowExport:
    """One final settlement window of a meter with its verified export and the Merkle root of its readings."""

    meter_id: UUID
    start: datetime
    end: datetime
    export_wh: int
    merkle_root: bytes
    #: Who held the meter at the window's end (the production's owner, central.accounting.ownership); None where
    #: unknown (fakes).
    owner_id: UUID | None = None


@dataclass(frozen=True)
class CertificateRecord:
    id: UUID
    mint: str
    meter_id: UUID
    meter_serial: str
    owner_id: UUID
    owner_wallet: str
    period_start: datetime
    period_end: datetime
    energy_wh: int
    energy_source: str
    issuer: str
    issued_at: datetime
    expires_at: datetime
    readings_root: bytes
    status: Status
    retired_wh: int = 0
    issued_by: UUID | None = None
    revoked_at: datetime | None = None
    revoked_by: UUID | None = None
    revocation_reason: str | None = None

    def metadata(self) -> CertificateMetadata:
        return CertificateMetadata(
            certificate_id=self.id,
            meter_serial=self.meter_serial,
            period_start=self.period_start,
            period_end=self.period_end,
            energy_source=self.energy_source,
            energy_wh=self.energy_wh,
            issuer=self.issuer,
            issue_date=self.issued_at,
            expiry_date=self.expires_at,
            readings_root=self.readings_root,
        )

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


@dataclass(frozen=True)
class Holding:
    certificate_id: UUID
    wallet: str
    user_id: UUID | None
    amount_wh: int


@dataclass(frozen=True)
class TxRequest:
    """A transaction the platform built for a user's wallet to sign (transfer or retirement)."""

    id: UUID
    certificate_id: UUID
    user_id: UUID
    kind: RequestKind
    wallet: str
    amount_wh: int
    message: bytes
    last_valid_block_height: int
    created_at: datetime
    expires_at: datetime
    to_wallet: str | None = None
    to_user_id: UUID | None = None
    retirement: Retirement | None = None
    signature: str | None = None
    completed_at: datetime | None = None
