"""Identity's records, as the services and their stores exchange them (no database or HTTP types)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID


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
