"""Identity's records, as the services and their stores exchange them (no database or HTTP types)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from central.roles import Role


@dataclass(frozen=True)
class OwnedMeter:
    """A meter as its owner sees it."""

    id: UUID
    serial: str
    device_id: str
    device_status: str
    model: str
    protocol: str
    source: str | None
    claimed_at: datetime


@dataclass(frozen=True)
class ClaimableMeter:
    """What a claim checks: the meter key's hash and the current owner (None: unclaimed)."""

    id: UUID
    key_hash: str = field(repr=False)
    owner_id: UUID | None


@dataclass(frozen=True)
class ClaimAttempt:
    """One meter-claim attempt, as the audit trail keeps it."""

    user_id: UUID
    serial: str
    address: str
    user_agent: str
    outcome: str
    at: datetime


# --- gateways ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewMeter:
    serial: str
    model: str
    protocol: str
    source: str | None
    meter_key: str = field(repr=False)


@dataclass(frozen=True)
class MeterInfo:
    serial: str
    model: str
    protocol: str
    source: str | None
    claimed: bool


@dataclass(frozen=True)
class Device:
    device_id: str
    status: str
    site_label: str
    installer_id: UUID | None
    created_at: datetime
    verified_at: datetime | None
    online: bool
    last_seen_at: datetime | None
    meters: list[MeterInfo]
    #: From the gateway's last status message (protocol/status.py); None/empty until it reports them.
    outbox_depth: int | None = None
    outbox_oldest_age_s: int | None = None
    meters_down: int | None = None
    alarms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Registration:
    """A gateway's registration as the store writes it (meter keys already hashed, in ``meters`` order)."""

    device_id: str
    public_key: bytes
    installer_id: UUID
    site_label: str
    pairing_code: str = field(repr=False)
    meters: list[NewMeter]
    key_hashes: list[str] = field(repr=False)


@dataclass(frozen=True)
class ChallengeTarget:
    """What deciding on an MQTT challenge needs, read under the device's lock; ``now`` is the store's clock."""

    status: str
    pairing_code: str | None = field(repr=False)
    last_challenge_at: datetime | None
    now: datetime


@dataclass(frozen=True)
class OpenChallenge:
    """An unused challenge, with the key of the device it was issued to."""

    expires_ms: int
    public_key: bytes = field(repr=False)


# --- accounts ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class User:
    id: UUID
    email: str
    role: Role
    email_verified: bool
    created_at: datetime


@dataclass(frozen=True)
class Credentials:
    """An account with what logging in checks."""

    user: User
    password_hash: str = field(repr=False)
    disabled: bool


@dataclass(frozen=True)
class Session:
    access_token: str = field(repr=False)
    access_expires_at: int
    refresh_token: str = field(repr=False)
    refresh_expires_at: datetime
    user: User


@dataclass(frozen=True)
class SessionInfo:
    """One active session (a refresh-token family: one login): the browser it was opened from, when it began and
    when it was last used (its last refresh)."""

    id: UUID
    user_agent: str
    created_at: datetime
    last_used_at: datetime


@dataclass(frozen=True)
class RefreshRecord:
    """A stored refresh token (by its hash) and whether its account is disabled."""

    user_id: UUID
    family_id: UUID
    expires_at: datetime
    revoked: bool
    disabled: bool
