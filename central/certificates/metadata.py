"""What a certificate says about itself on chain: the token-metadata name/symbol/uri and its additional fields.

Field keys are stable API (third-party validators read them); dates are UTC ISO 8601 with a ``Z`` suffix, energy is
an integer count of Wh, the readings root is 64 lowercase hex characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from central.certificates.errors import InvalidCertificateError

SYMBOL = "GTXREC"

KEY_CERTIFICATE_ID = "certificate_id"
KEY_METER_SERIAL = "meter_serial"
KEY_PERIOD_START = "period_start"
KEY_PERIOD_END = "period_end"
KEY_ENERGY_SOURCE = "energy_source"
KEY_ENERGY_WH = "energy_wh"
KEY_ISSUER = "issuer"
KEY_ISSUE_DATE = "issue_date"
KEY_EXPIRY_DATE = "expiry_date"
KEY_READINGS_ROOT = "readings_merkle_root"
# Written only on revocation.
KEY_STATUS = "status"
KEY_REVOCATION_REASON = "revocation_reason"
STATUS_REVOKED = "revoked"

FIELD_KEYS = (
    KEY_CERTIFICATE_ID,
    KEY_METER_SERIAL,
    KEY_PERIOD_START,
    KEY_PERIOD_END,
    KEY_ENERGY_SOURCE,
    KEY_ENERGY_WH,
    KEY_ISSUER,
    KEY_ISSUE_DATE,
    KEY_EXPIRY_DATE,
    KEY_READINGS_ROOT,
)

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_HEX64 = re.compile(r"[0-9a-f]{64}")
MAX_TEXT = 64


def format_time(value: datetime) -> str:
    if value.tzinfo is None:
        raise InvalidCertificateError("certificate times must be timezone-aware")
    if value.microsecond:
        raise InvalidCertificateError(f"certificate times have whole seconds, got {value.isoformat()}")
    return value.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(text: str) -> datetime:
    try:
        return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidCertificateError(f"bad certificate time {text!r}") from exc


def _check_text(name: str, value: str) -> None:
    if not value or len(value) > MAX_TEXT or not value.isprintable():
        raise InvalidCertificateError(f"{name} must be 1..{MAX_TEXT} printable characters")


@dataclass(frozen=True)
class CertificateMetadata:
    certificate_id: UUID
    meter_serial: str
    period_start: datetime
    period_end: datetime
    energy_source: str
    energy_wh: int
    issuer: str
    issue_date: datetime
    expiry_date: datetime
    readings_root: bytes

    def __post_init__(self) -> None:
        _check_text("meter serial", self.meter_serial)
        _check_text("energy source", self.energy_source)
        _check_text("issuer", self.issuer)
        for t in (self.period_start, self.period_end, self.issue_date, self.expiry_date):
            format_time(t)
        if self.period_end <= self.period_start:
            raise InvalidCertificateError("production period must end after it starts")
        if self.expiry_date <= self.issue_date:
            raise InvalidCertificateError("expiry must be after issue")
        if not 0 < self.energy_wh < 2**64:
            raise InvalidCertificateError("certified energy must be a positive u64 of Wh")
        if len(self.readings_root) != 32:
            raise InvalidCertificateError("readings Merkle root must be 32 bytes")

    @property
    def name(self) -> str:
        return f"GridTokenX REC {self.certificate_id.hex[:8]}"

    def uri(self, uri_base: str) -> str:
        return f"{uri_base.rstrip('/')}/{self.certificate_id}"

    def fields(self) -> list[tuple[str, str]]:
        """The additional metadata fields in their on-chain order."""
        return [
            (KEY_CERTIFICATE_ID, str(self.certificate_id)),
            (KEY_METER_SERIAL, self.meter_serial),
            (KEY_PERIOD_START, format_time(self.period_start)),
            (KEY_PERIOD_END, format_time(self.period_end)),
            (KEY_ENERGY_SOURCE, self.energy_source),
            (KEY_ENERGY_WH, str(self.energy_wh)),
            (KEY_ISSUER, self.issuer),
            (KEY_ISSUE_DATE, format_time(self.issue_date)),
            (KEY_EXPIRY_DATE, format_time(self.expiry_date)),
            (KEY_READINGS_ROOT, self.readings_root.hex()),
        ]

    @classmethod
    def from_fields(cls, fields: Mapping[str, str] | Sequence[tuple[str, str]]) -> CertificateMetadata:
        values = dict(fields)
        missing = [k for k in FIELD_KEYS if k not in values]
        if missing:
            raise InvalidCertificateError(f"certificate metadata lacks {', '.join(missing)}")
        energy = values[KEY_ENERGY_WH]
        root = values[KEY_READINGS_ROOT]
        if not energy.isdigit() or energy != str(int(energy)):
            raise InvalidCertificateError(f"bad energy_wh {energy!r}")
        if not _HEX64.fullmatch(root):
            raise InvalidCertificateError(f"bad readings root {root!r}")
        try:
            certificate_id = UUID(values[KEY_CERTIFICATE_ID])
        except ValueError as exc:
            raise InvalidCertificateError("bad certificate id") from exc
        return cls(
            certificate_id=certificate_id,
            meter_serial=values[KEY_METER_SERIAL],
            period_start=parse_time(values[KEY_PERIOD_START]),
            period_end=parse_time(values[KEY_PERIOD_END]),
            energy_source=values[KEY_ENERGY_SOURCE],
            energy_wh=int(energy),
            issuer=values[KEY_ISSUER],
            issue_date=parse_time(values[KEY_ISSUE_DATE]),
            expiry_date=parse_time(values[KEY_EXPIRY_DATE]),
            readings_root=bytes.fromhex(root),
        )
