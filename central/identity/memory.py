"""In-memory stores for identity's services: the rules' unit tests run on these (no PostgreSQL). They keep the same
promises as the PostgreSQL stores: a unit of work commits all or nothing, and claims run one at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from central.identity.model import ClaimableMeter, ClaimAttempt, OwnedMeter


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class MeterRow:
    """A meter as the fake keeps it."""

    serial: str
    key_hash: str = field(repr=False)
    device_id: str = "device"
    device_status: str = "verified"
    model: str = "test meter"
    protocol: str = "modbus-tcp"
    source: str | None = "solar"
    id: UUID = field(default_factory=uuid4)
    owner_id: UUID | None = None
    claimed_at: datetime | None = None
    released_at: datetime | None = None


@dataclass(frozen=True)
class Ownership:
    meter_id: UUID
    owner_id: UUID
    claimed_at: datetime
    released_at: datetime | None = None


@dataclass
class _MeterState:
    meters: dict[str, MeterRow] = field(default_factory=dict)
    attempts: list[ClaimAttempt] = field(default_factory=list)
    ownerships: list[Ownership] = field(default_factory=list)


class _MemoryClaimTx:
    """Works on a copy of the state; ``MemoryMeterStore.claiming`` installs it on success."""

    def __init__(self, state: _MeterState, now: datetime) -> None:
        self.state = state
        self._now = now

    async def recent_attempts(self, user_id: UUID, within: timedelta, limit: int) -> list[datetime]:
        return self._recent(lambda a: a.user_id == user_id and a.outcome != "rate_limited", within, limit)

    async def recent_wrong_keys(self, serial: str, within: timedelta, limit: int) -> list[datetime]:
        return self._recent(lambda a: a.serial == serial and a.outcome == "wrong_key", within, limit)

    def _recent(self, match: Callable[[ClaimAttempt], bool], within: timedelta, limit: int) -> list[datetime]:
        since = self._now - within
        return sorted((a.at for a in self.state.attempts if match(a) and a.at > since), reverse=True)[:limit]

    async def meter(self, serial: str) -> ClaimableMeter | None:
        m = self.state.meters.get(serial)
        return None if m is None else ClaimableMeter(m.id, m.key_hash, m.owner_id)

    async def take(self, meter_id: UUID, user_id: UUID) -> None:
        m = next(m for m in self.state.meters.values() if m.id == meter_id)
        at = max(self._now, m.released_at) if m.released_at is not None else self._now
        self.state.meters[m.serial] = replace(m, owner_id=user_id, claimed_at=at)
        self.state.ownerships.append(Ownership(meter_id, user_id, at))

    async def record(self, user_id: UUID, serial: str, address: str, user_agent: str, outcome: str) -> None:
        self.state.attempts.append(ClaimAttempt(user_id, serial, address, user_agent, outcome, self._now))


class MemoryMeterStore:
    """Meters, claim attempts and ownership periods in memory; ``clock`` is the store's ``now()``."""

    def __init__(self, clock: Callable[[], datetime] = _utc_now) -> None:
        self._state = _MeterState()
        self._clock = clock
        self._lock = asyncio.Lock()  # one claim at a time (stricter than per user and per serial)

    # --- test set-up and inspection --------------------------------------------------------------------------
    def add_meter(self, meter: MeterRow) -> MeterRow:
        self._state.meters[meter.serial] = meter
        return meter

    def meter_row(self, serial: str) -> MeterRow:
        return self._state.meters[serial]

    @property
    def ownerships(self) -> list[Ownership]:
        return list(self._state.ownerships)

    # --- MeterStore ----------------------------------------------------------------------------------------------
    @asynccontextmanager
    async def claiming(self, user_id: UUID, serial: str) -> AsyncIterator[_MemoryClaimTx]:  # noqa: ARG002 - one lock
        async with self._lock:
            s = self._state
            tx = _MemoryClaimTx(_MeterState(dict(s.meters), list(s.attempts), list(s.ownerships)), self._clock())
            yield tx
            self._state = tx.state  # reached only when the unit of work ended without an exception

    async def owned(self, serial: str) -> OwnedMeter | None:
        m = self._state.meters.get(serial)
        return None if m is None else self._owned(m)

    async def list_owned(self, user_id: UUID) -> list[OwnedMeter]:
        return [self._owned(m) for m in sorted(self._state.meters.values(), key=lambda m: m.serial)
                if m.owner_id == user_id]  # fmt: skip

    @staticmethod
    def _owned(m: MeterRow) -> OwnedMeter:
        assert m.claimed_at is not None or m.owner_id is None
        claimed = m.claimed_at or datetime.min.replace(tzinfo=UTC)
        return OwnedMeter(m.id, m.serial, m.device_id, m.device_status, m.model, m.protocol, m.source, claimed)

    async def release(self, user_id: UUID, serial: str) -> bool:
        async with self._lock:
            m = self._state.meters.get(serial)
            if m is None or m.owner_id != user_id:
                return False
            at = self._clock()
            self._state.meters[serial] = replace(m, owner_id=None, claimed_at=None, released_at=at)
            self._state.ownerships = [
                replace(o, released_at=at) if o.meter_id == m.id and o.released_at is None else o
                for o in self._state.ownerships
            ]
            return True

    async def attempts(self, user_id: UUID | None, limit: int) -> list[ClaimAttempt]:
        mine = [a for a in self._state.attempts if user_id is None or a.user_id == user_id]
        return list(reversed(mine))[:limit]
