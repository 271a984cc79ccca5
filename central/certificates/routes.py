"""HTTP routes of the certificates subsystem (issue 7): issue, list/get, public validation, transfer and retirement
through transaction requests (the holder's wallet signs, the platform co-signs and pays), revoke."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from central.certificates.errors import (
    AlreadyCertifiedError,
    CertificateError,
    CertificateNotFoundError,
    CertificateStateError,
    ChainError,
    InsufficientGenerationError,
    InvalidCertificateError,
    NotOwnerError,
    TooManyWaitingError,
)
from central.certificates.instructions import Retirement
from central.certificates.models import CertificateRecord, Status
from central.certificates.service import CertificateService, PreparedTransaction
from central.certificates.validation import CertificateValidator, ValidationReport
from central.errors import require
from central.http.errors import ErrorMap, ErrorRule, bad_request
from central.http.roles import ANY_USER, OWNERS, PUBLIC, Role, roles
from central.http.routes import Call, RouteTable
from central.http.schema import meta

#: The certificate subsystem's exceptions over HTTP; any other ``CertificateError`` is a 500 that names nothing.
ERRORS: ErrorMap = {
    InvalidCertificateError: ErrorRule(400, "invalid_certificate_request"),
    CertificateNotFoundError: ErrorRule(404, "not_found"),
    NotOwnerError: ErrorRule(403, "not_holder"),
    AlreadyCertifiedError: ErrorRule(409, "already_certified"),
    InsufficientGenerationError: ErrorRule(409, "insufficient_generation"),
    CertificateStateError: ErrorRule(409, "certificate_state"),
    ChainError: ErrorRule(409, "chain_refused"),
    TooManyWaitingError: ErrorRule(409, "too_many_waiting_requests"),
    CertificateError: ErrorRule(500, "internal", "certificate operation failed"),
}
routes = RouteTable(tag="certificates", error_map=ERRORS)

_B58 = "^[1-9A-HJ-NP-Za-km-z]{32,44}$"
AUTHORITY = roles(Role.REC_AUTHORITY, Role.ADMIN)
SEES_ALL = frozenset({Role.ADMIN, Role.REC_AUTHORITY})


@dataclass(frozen=True)
class Certificates:
    """What the routes need; built by the composition root (``central.bootstrap``)."""

    service: CertificateService
    validator: CertificateValidator


# --- schemas ---


@dataclass(frozen=True)
class IssueIn:
    meter_id: UUID
    period_start: datetime = field(metadata=meta(description="UTC settlement-window boundary"))
    period_end: datetime = field(metadata=meta(description="UTC settlement-window boundary, after period_start"))
    expected_wh: int | None = field(
        default=None,
        metadata=meta(minimum=1, description="if given, must equal the period's uncertified verified export"),
    )


@dataclass(frozen=True)
class CertificateOut:
    id: UUID
    mint: str
    meter_id: UUID
    meter_serial: str
    owner_id: UUID
    owner_wallet: str
    period_start: datetime
    period_end: datetime
    energy_wh: int = field(metadata=meta(description="certified Wh (token base units; 3 decimals = kWh)"))
    energy_source: str
    issuer: str
    issued_at: datetime
    expires_at: datetime
    readings_merkle_root: str = field(metadata=meta(description="hex Merkle root over the backing windows' roots"))
    status: Status
    retired_wh: int
    revoked_at: datetime | None = None
    revocation_reason: str | None = None


@dataclass(frozen=True)
class CertificateTransferIn:
    amount_wh: int = field(metadata=meta(minimum=1, description="Wh to transfer"))
    to_user_id: UUID | None = None
    to_wallet: str | None = field(default=None, metadata=meta(pattern=_B58, description="recipient's linked wallet"))


@dataclass(frozen=True)
class RetireIn:
    amount_wh: int = field(metadata=meta(minimum=1, description="Wh to retire (burn)"))
    beneficiary: str = field(metadata=meta(min_length=1, max_length=64))
    purpose: str = field(metadata=meta(min_length=1, max_length=64))
    consumption_start: datetime
    consumption_end: datetime


@dataclass(frozen=True)
class TxRequestOut:
    request_id: UUID
    kind: str
    amount_wh: int
    transaction: str = field(
        metadata=meta(description="base64 v0 transaction; sign the message with your wallet, fill your signature slot")
    )
    expires_at: datetime


@dataclass(frozen=True)
class RetirementOut:
    amount_wh: int
    beneficiary: str
    purpose: str
    consumption_start: datetime
    consumption_end: datetime
    wallet: str
    signature: str = field(metadata=meta(description="the burn transaction (its memo repeats these fields)"))
    retired_at: datetime


@dataclass(frozen=True)
class SubmitIn:
    transaction: str = field(metadata=meta(min_length=1, max_length=4096, description="base64 signed transaction"))


@dataclass(frozen=True)
class SubmitOut:
    signature: str


@dataclass(frozen=True)
class RevokeIn:
    reason: str = field(metadata=meta(min_length=1, max_length=64))


@dataclass(frozen=True)
class ValidateQuery:
    certificate_id: UUID | None = None
    mint: str | None = field(default=None, metadata=meta(pattern=_B58))


@dataclass(frozen=True)
class ValidationOut:
    mint: str
    certificate_id: UUID | None
    exists_on_chain: bool
    authentic: bool
    status: str = field(metadata=meta(description="active | revoked | expired | invalid | not_found"))
    valid: bool
    certified_wh: int | None
    supply_wh: int | None
    retired_wh: int | None
    holder_accounts: int
    frozen_accounts: int
    expires_at: datetime | None
    revocation_reason: str | None
    metadata: dict[str, str]
    problems: list[str]
    db_found: bool
    db_agrees: bool
    mismatches: list[str]


# --- helpers ---


def _certs(call: Call[Any, Any]) -> Certificates:
    return require(call.services.certificates)


def _out(r: CertificateRecord) -> CertificateOut:
    return CertificateOut(
        r.id, r.mint, r.meter_id, r.meter_serial, r.owner_id, r.owner_wallet, r.period_start, r.period_end,
        r.energy_wh, r.energy_source, r.issuer, r.issued_at, r.expires_at, r.readings_root.hex(), r.status,
        r.retired_wh, r.revoked_at, r.revocation_reason,
    )  # fmt: skip


def _request_out(p: PreparedTransaction) -> TxRequestOut:
    tx = base64.b64encode(bytes(p.transaction)).decode()
    return TxRequestOut(p.request.id, p.request.kind.value, p.request.amount_wh, tx, p.request.expires_at)


def _validation_out(v: ValidationReport) -> ValidationOut:
    j: dict[str, Any] = v.to_json()
    j["certificate_id"], j["expires_at"] = v.certificate_id, v.expires_at
    return ValidationOut(**j)


# --- routes ---


@routes.post("/api/v1/certificates", access=AUTHORITY, body=IssueIn, response=CertificateOut, status=201,
             errors=(400, 404, 409, 503),
             summary="Issue a certificate for a meter's verified renewable export")  # fmt: skip
async def issue_certificate(call: Call[IssueIn, None]) -> CertificateOut:
    """Certifies all final, not yet certified export of the meter in the period (whole settlement windows, 15 min
    and up) and mints it to the meter owner's linked wallet: one Token-2022 mint, 1 base unit = 1 Wh."""
    b = call.body
    record = await _certs(call).service.issue(
        actor_id=call.user.user_id, meter_id=b.meter_id, period_start=b.period_start, period_end=b.period_end,
        expected_wh=b.expected_wh,
    )  # fmt: skip
    return _out(record)


@routes.get("/api/v1/certificates", access=ANY_USER, response=list[CertificateOut],
            summary="List certificates (yours; all for admins and the REC authority)")  # fmt: skip
async def list_certificates(call: Call[None, None]) -> list[CertificateOut]:
    """Certificates issued to you or held (per the platform's records) by your wallet."""
    user = call.user
    records = await _certs(call).service.list_certificates(user_id=user.user_id, is_admin=user.role in SEES_ALL)
    return [_out(r) for r in records]


@routes.get("/api/v1/certificates/validate", access=PUBLIC, query=ValidateQuery, response=ValidationOut,
            errors=(400, 503), summary="Validate a certificate against the chain (public)")  # fmt: skip
async def validate_certificate(call: Call[None, ValidateQuery]) -> ValidationOut:
    """Reads the mint from the chain (supply, metadata, holders' freeze state): authentic (derived from the
    issuer's key, supply fixed), revoked or expired, how much is retired, and whether the database agrees."""
    q = call.query
    if (q.certificate_id is None) == (q.mint is None):
        raise bad_request("give certificate_id or mint, not both")
    validator = _certs(call).validator
    report = await (validator.by_id(q.certificate_id) if q.certificate_id else validator.by_mint(q.mint or ""))
    return _validation_out(report)


@routes.get("/api/v1/certificates/{certificate_id}", access=ANY_USER, response=CertificateOut, errors=(404, 503),
            summary="One certificate")  # fmt: skip
async def get_certificate(call: Call[None, None]) -> CertificateOut:
    user = call.user
    record = await _certs(call).service.get(
        call.path_uuid("certificate_id"), user_id=user.user_id, is_admin=user.role in SEES_ALL
    )
    return _out(record)


@routes.get("/api/v1/certificates/{certificate_id}/retirements", access=PUBLIC, response=list[RetirementOut],
            errors=(404, 503), summary="A certificate's retirements (public register)")  # fmt: skip
async def list_retirements(call: Call[None, None]) -> list[RetirementOut]:
    """Who retired how much of the certificate, for what and for which consumption period, with the burn's
    transaction signature to check on chain."""
    done = await _certs(call).service.retirements(call.path_uuid("certificate_id"))
    out = []
    for r in done:
        assert r.retirement is not None
        assert r.signature is not None
        assert r.completed_at is not None
        ret = r.retirement
        out.append(RetirementOut(r.amount_wh, ret.beneficiary, ret.purpose, ret.consumption_start,
                                 ret.consumption_end, r.wallet, r.signature, r.completed_at))  # fmt: skip
    return out


@routes.post("/api/v1/certificates/{certificate_id}/transfer", access=OWNERS, body=CertificateTransferIn,
             response=TxRequestOut, status=201, errors=(400, 403, 404, 409, 503),
             summary="Prepare a transfer of part or all of a certificate (your wallet signs)",
             idempotent=True)  # fmt: skip
async def request_transfer(call: Call[CertificateTransferIn, None]) -> TxRequestOut:
    """Returns a transaction the platform pays for; sign it with your wallet and submit it within its expiry."""
    b = call.body
    prepared = await _certs(call).service.request_transfer(
        call.path_uuid("certificate_id"), user_id=call.user.user_id, amount_wh=b.amount_wh,
        to_user_id=b.to_user_id, to_wallet=b.to_wallet,
    )  # fmt: skip
    return _request_out(prepared)


@routes.post("/api/v1/certificates/{certificate_id}/retire", access=OWNERS, body=RetireIn, response=TxRequestOut,
             status=201, errors=(400, 403, 404, 409, 503),
             summary="Prepare a retirement (burn with a memo) of part or all of a certificate",
             idempotent=True)  # fmt: skip
async def request_retirement(call: Call[RetireIn, None]) -> TxRequestOut:
    """The memo names the beneficiary, the purpose and the consumption period; your wallet signs."""
    b = call.body
    retirement = Retirement(b.beneficiary, b.purpose, b.consumption_start, b.consumption_end)
    prepared = await _certs(call).service.request_retirement(
        call.path_uuid("certificate_id"), user_id=call.user.user_id, amount_wh=b.amount_wh, retirement=retirement
    )
    return _request_out(prepared)


@routes.post("/api/v1/certificates/requests/{request_id}/submit", access=OWNERS, body=SubmitIn, response=SubmitOut,
             errors=(400, 404, 409, 503), summary="Submit a wallet-signed certificate transaction")  # fmt: skip
async def submit_request(call: Call[SubmitIn, None]) -> SubmitOut:
    """Checks the transaction is exactly the one prepared and signed by the holder, co-signs it as fee payer,
    sends it and records its effect. Submitting the same request again returns the same signature."""
    try:
        raw = base64.b64decode(call.body.transaction, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_request("transaction is not base64") from exc
    signature = await _certs(call).service.submit(call.path_uuid("request_id"), raw, user_id=call.user.user_id)
    return SubmitOut(signature)


@routes.post("/api/v1/certificates/{certificate_id}/revoke", access=AUTHORITY, body=RevokeIn,
             response=CertificateOut, errors=(400, 404, 409, 503),
             summary="Revoke a certificate (freezes every holder's account)")  # fmt: skip
async def revoke_certificate(call: Call[RevokeIn, None]) -> CertificateOut:
    """Freezes the holders' token accounts (never thawed again) and records the reason on chain and here."""
    record = await _certs(call).service.revoke(
        call.path_uuid("certificate_id"), actor_id=call.user.user_id, reason=call.body.reason
    )
    return _out(record)
