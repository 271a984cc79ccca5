"""In-memory stores for identity's services: the rules' unit tests run on these (no PostgreSQL). They keep the same
promises as the PostgreSQL stores: a unit of work commits all or nothing, and claims run one at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID, uuid4

from central.identity.errors import DeviceExistsError, EmailTakenError, SerialTakenError
from central.identity.model import (
    ChallengeTarget,
    ClaimableMeter,
    ClaimAttempt,
    Credentials,
    Device,
    MeterInfo,
    NewMeter,
    OpenChallenge,
    OwnedMeter,
    RefreshRecord,
    Registration,
    SessionInfo,
    User,
)
from central.roles import Role
from protocol.challenge import Challenge


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


# --- gateways ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceRow:
    device_id: str
    public_key: bytes
    installer_id: UUID
    site_label: str
    pairing_code: str | None
    created_at: datetime
    status: str = "pending"
    verified_at: datetime | None = None
    online: bool = False
    last_seen_at: datetime | None = None
    last_challenge_at: datetime | None = None


@dataclass(frozen=True)
class StoredChallenge:
    nonce: bytes
    device_id: str
    channel: str
    expires_ms: int
    used: bool = False


@dataclass(frozen=True)
class GatewayMeter:
    serial: str
    device_id: str
    model: str
    protocol: str
    source: str | None
    key_hash: str = field(repr=False)
    owner_id: UUID | None = None


@dataclass
class _DeviceState:
    devices: dict[str, DeviceRow] = field(default_factory=dict)
    meters: dict[str, GatewayMeter] = field(default_factory=dict)
    challenges: list[StoredChallenge] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)

    def copy(self) -> _DeviceState:
        return _DeviceState(dict(self.devices), dict(self.meters), list(self.challenges), list(self.events))


class _MemoryChallengeTx:
    def __init__(self, state: _DeviceState, device_id: str, now: datetime) -> None:
        self.state = state
        self._device_id = device_id
        self._now = now

    async def target(self) -> ChallengeTarget | None:
        d = self.state.devices.get(self._device_id)
        return None if d is None else ChallengeTarget(d.status, d.pairing_code, d.last_challenge_at, self._now)

    async def start_cooldown(self) -> None:
        d = self.state.devices[self._device_id]
        self.state.devices[self._device_id] = replace(d, last_challenge_at=self._now)

    async def end_cooldown(self) -> None:
        d = self.state.devices[self._device_id]
        self.state.devices[self._device_id] = replace(d, last_challenge_at=None)

    async def outstanding(self, valid_after_ms: int) -> Challenge | None:
        open_ = [c for c in self.state.challenges if c.device_id == self._device_id and c.channel == "mqtt"
                 and not c.used and c.expires_ms > valid_after_ms]  # fmt: skip
        latest = max(open_, key=lambda c: c.expires_ms, default=None)
        return None if latest is None else Challenge(latest.nonce, latest.expires_ms)

    async def replace_outstanding(self, challenge: Challenge) -> None:
        self.state.challenges = [c for c in self.state.challenges
                                 if not (c.device_id == self._device_id and c.channel == "mqtt" and not c.used)]
        self.state.challenges.append(StoredChallenge(challenge.nonce, self._device_id, "mqtt", challenge.expires_ms))


class _MemoryStatusTx:
    def __init__(self, state: _DeviceState, device_id: str) -> None:
        self.state = state
        self._device_id = device_id

    async def current(self) -> tuple[str, bool] | None:
        d = self.state.devices.get(self._device_id)
        return None if d is None else (d.status, d.verified_at is not None)

    async def set(self, status: str, actor_id: UUID, event: str, reason: str) -> None:  # noqa: ARG002 - unaudited
        self.state.devices[self._device_id] = replace(self.state.devices[self._device_id], status=status)
        self.state.events.append((self._device_id, event))


class MemoryDeviceStore:
    """Devices, their meters and challenges in memory; ``clock`` is the store's ``now()``."""

    def __init__(self, clock: Callable[[], datetime] = _utc_now) -> None:
        self._state = _DeviceState()
        self._clock = clock
        self._lock = asyncio.Lock()

    # --- test set-up and inspection --------------------------------------------------------------------------
    def device_row(self, device_id: str) -> DeviceRow:
        return self._state.devices[device_id]

    def set_online(self, device_id: str, online: bool = True) -> None:
        self._state.devices[device_id] = replace(self._state.devices[device_id], online=online)

    @property
    def challenges(self) -> list[StoredChallenge]:
        return list(self._state.challenges)

    @property
    def events(self) -> list[tuple[str, str]]:
        return list(self._state.events)

    # --- DeviceStore ---------------------------------------------------------------------------------------------
    async def visible(self, device_id: str, installer_id: UUID | None) -> bool:
        d = self._state.devices.get(device_id)
        return d is not None and (installer_id is None or d.installer_id == installer_id)

    async def load(self, device_ids: list[str]) -> list[Device]:
        rows = sorted((d for d in self._state.devices.values() if d.device_id in device_ids),
                      key=lambda d: (d.created_at, d.device_id))  # fmt: skip
        return [
            Device(d.device_id, d.status, d.site_label, d.installer_id, d.created_at, d.verified_at, d.online,
                   d.last_seen_at, [MeterInfo(m.serial, m.model, m.protocol, m.source, m.owner_id is not None)
                                    for m in sorted(self._state.meters.values(), key=lambda m: m.serial)
                                    if m.device_id == d.device_id])
            for d in rows
        ]  # fmt: skip

    async def list_ids(self, installer_id: UUID | None, after: str | None, limit: int) -> list[str]:
        ids = sorted(d.device_id for d in self._state.devices.values()
                     if (installer_id is None or d.installer_id == installer_id)
                     and (after is None or d.device_id > after))  # fmt: skip
        return ids[:limit]

    def _stale(self, d: DeviceRow, stale_after_s: int) -> bool:
        return (d.status == "pending" and d.verified_at is None
                and d.created_at < self._clock() - timedelta(seconds=stale_after_s))  # fmt: skip

    def _insert_meters(self, state: _DeviceState, device_id: str, meters: list[NewMeter], hashes: list[str],
                       stale_after_s: int) -> None:
        for m, h in zip(meters, hashes, strict=True):
            held = state.meters.get(m.serial)
            if held is not None and held.device_id != device_id and self._stale(state.devices[held.device_id],
                                                                                 stale_after_s):
                held = None  # freed: that stale registration never sent a reading
            if held is not None:
                raise SerialTakenError("a meter with this serial is already registered")
            state.meters[m.serial] = GatewayMeter(m.serial, device_id, m.model, m.protocol, m.source, h)

    async def register(self, registration: Registration, stale_after_s: int) -> str:
        r = registration
        async with self._lock:
            state = self._state.copy()
            now = self._clock()
            old = state.devices.get(r.device_id)
            if old is not None and not self._stale(old, stale_after_s):
                raise DeviceExistsError("this device is already registered")
            event = "registered" if old is None else "replaced"
            if old is not None:
                state.challenges = [c for c in state.challenges if c.device_id != r.device_id]
                state.meters = {s: m for s, m in state.meters.items() if m.device_id != r.device_id}
            state.devices[r.device_id] = DeviceRow(r.device_id, r.public_key, r.installer_id, r.site_label,
                                                   r.pairing_code, now)  # fmt: skip
            self._insert_meters(state, r.device_id, r.meters, r.key_hashes, stale_after_s)
            state.events.append((r.device_id, event))
            self._state = state
        return event

    async def add_meters(self, device_id: str, meters: list[NewMeter], key_hashes: list[str],
                         stale_after_s: int) -> None:
        async with self._lock:
            state = self._state.copy()
            self._insert_meters(state, device_id, meters, key_hashes, stale_after_s)
            self._state = state

    async def pairing_code(self, device_id: str) -> str | None:
        d = self._state.devices.get(device_id)
        return None if d is None else d.pairing_code

    async def status(self, device_id: str) -> str | None:
        d = self._state.devices.get(device_id)
        return None if d is None else d.status

    async def add_challenge(self, device_id: str, channel: str, challenge: Challenge) -> bool:
        d = self._state.devices.get(device_id)
        if d is None or d.status == "revoked":
            return False
        self._state.challenges.append(StoredChallenge(challenge.nonce, device_id, channel, challenge.expires_ms))
        return True

    @asynccontextmanager
    async def challenging(self, device_id: str) -> AsyncIterator[_MemoryChallengeTx]:
        async with self._lock:
            tx = _MemoryChallengeTx(self._state.copy(), device_id, self._clock())
            yield tx
            self._state = tx.state

    async def open_challenge(self, device_id: str, nonce: bytes) -> OpenChallenge | None:
        for c in self._state.challenges:
            if c.nonce == nonce and c.device_id == device_id and not c.used:
                return OpenChallenge(c.expires_ms, self._state.devices[device_id].public_key)
        return None

    async def use_challenge(self, device_id: str, nonce: bytes) -> str | None:
        for i, c in enumerate(self._state.challenges):
            if c.nonce == nonce and c.device_id == device_id and not c.used:
                self._state.challenges[i] = replace(c, used=True)
                return self._state.devices[device_id].status
        return None

    async def mark_verified(self, device_id: str) -> bool:
        d = self._state.devices[device_id]
        if d.status != "pending":
            return False
        self._state.devices[device_id] = replace(d, status="verified", verified_at=self._clock())
        self._state.events.append((device_id, "verified"))
        return True

    async def pending_online_unchallenged(self, valid_after_ms: int, limit: int) -> list[str]:
        covered = {c.device_id for c in self._state.challenges
                   if c.channel == "mqtt" and not c.used and c.expires_ms > valid_after_ms}  # fmt: skip
        return [d.device_id for d in self._state.devices.values()
                if d.status == "pending" and d.online and d.pairing_code is not None
                and d.device_id not in covered][:limit]  # fmt: skip

    async def delete_expired_challenges(self, now_ms: int) -> int:
        before = len(self._state.challenges)
        self._state.challenges = [c for c in self._state.challenges if c.expires_ms >= now_ms]
        return before - len(self._state.challenges)

    @asynccontextmanager
    async def changing_status(self, device_id: str) -> AsyncIterator[_MemoryStatusTx]:
        async with self._lock:
            tx = _MemoryStatusTx(self._state.copy(), device_id)
            yield tx
            self._state = tx.state


# --- accounts ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmailToken:
    token_hash: bytes
    user_id: UUID
    purpose: str
    created_at: datetime
    expires_at: datetime
    used: bool = False


@dataclass(frozen=True)
class Attempt:
    id: int
    email: str
    address: str
    at: datetime
    success: bool = False


@dataclass(frozen=True)
class RefreshRow:
    token_hash: bytes
    user_id: UUID
    family_id: UUID
    expires_at: datetime
    revoked: bool = False
    user_agent: str = ""
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class _AccountState:
    users: dict[UUID, Credentials] = field(default_factory=dict)
    registrations: list[Attempt] = field(default_factory=list)
    logins: list[Attempt] = field(default_factory=list)
    tokens: list[EmailToken] = field(default_factory=list)
    refresh: list[RefreshRow] = field(default_factory=list)
    notices: list[tuple[str, UUID, UUID | None, Role | None]] = field(default_factory=list)
    next_id: int = 1

    def copy(self) -> _AccountState:
        return _AccountState(dict(self.users), list(self.registrations), list(self.logins), list(self.tokens),
                             list(self.refresh), list(self.notices), self.next_id)  # fmt: skip


class _MemoryAccountOps:
    def __init__(self, state: _AccountState, clock: Callable[[], datetime]) -> None:
        self.state = state
        self._clock = clock

    def _id(self) -> int:
        self.state.next_id += 1
        return self.state.next_id - 1

    def _row(self, user_id: UUID) -> Credentials:
        return self.state.users[user_id]

    async def insert_user(self, email: str, password_hash: str, role: Role, verified: bool) -> User:
        if any(r.user.email == email for r in self.state.users.values()):
            raise EmailTakenError("an account with this e-mail address exists")
        user = User(uuid4(), email, role, verified, self._clock())
        self.state.users[user.id] = Credentials(user, password_hash, disabled=False)
        return user

    async def credentials(self, email: str) -> Credentials | None:
        return next((r for r in self.state.users.values() if r.user.email == email), None)

    async def credentials_by_id(self, user_id: UUID) -> Credentials | None:
        return self.state.users.get(user_id)

    async def list_users(self, limit: int, after: UUID | None) -> list[User]:
        ids = sorted(i for i in self.state.users if after is None or i > after)
        return [self.state.users[i].user for i in ids[:limit]]

    async def mark_verified(self, user_id: UUID) -> User:
        row = self._row(user_id)
        self.state.users[user_id] = replace(row, user=replace(row.user, email_verified=True))
        return self.state.users[user_id].user

    async def set_password_hash(self, user_id: UUID, password_hash: str) -> None:
        self.state.users[user_id] = replace(self._row(user_id), password_hash=password_hash)

    async def admins(self) -> set[UUID]:
        return {i for i, r in self.state.users.items() if r.user.role is Role.ADMIN}

    async def set_role(self, user_id: UUID, role: Role) -> User | None:
        row = self.state.users.get(user_id)
        if row is None:
            return None
        self.state.users[user_id] = replace(row, user=replace(row.user, role=role))
        return self.state.users[user_id].user

    async def record_registration(self, email: str, address: str) -> int:
        attempt = Attempt(self._id(), email, address, self._clock())
        self.state.registrations.append(attempt)
        return attempt.id

    async def recent_registrations(self, by: Literal["address", "email"], value: str, within: timedelta,
                                   limit: int) -> list[datetime]:
        since = self._clock() - within
        ats = [a.at for a in self.state.registrations if getattr(a, by) == value and a.at > since]
        return sorted(ats, reverse=True)[:limit]

    async def delete_registration(self, attempt_id: int) -> None:
        self.state.registrations = [a for a in self.state.registrations if a.id != attempt_id]

    async def prune_registrations(self, older_than: timedelta) -> None:
        since = self._clock() - older_than
        self.state.registrations = [a for a in self.state.registrations if a.at >= since]

    async def tokens_sent(self, user_id: UUID, purpose: str, within: timedelta) -> int:
        since = self._clock() - within
        return sum(1 for t in self.state.tokens if t.user_id == user_id and t.purpose == purpose
                   and t.created_at > since)  # fmt: skip

    async def add_token(self, token_hash: bytes, user_id: UUID, purpose: str, ttl_s: int) -> None:
        now = self._clock()
        self.state.tokens.append(EmailToken(token_hash, user_id, purpose, now, now + timedelta(seconds=ttl_s)))

    async def use_token(self, token_hash: bytes, purpose: str) -> UUID | None:
        now = self._clock()
        for i, t in enumerate(self.state.tokens):
            if t.token_hash == token_hash and t.purpose == purpose and not t.used and t.expires_at > now:
                self.state.tokens[i] = replace(t, used=True)
                return t.user_id
        return None

    async def burn_tokens(self, user_id: UUID, purpose: str) -> None:
        self.state.tokens = [replace(t, used=True) if t.user_id == user_id and t.purpose == purpose else t
                             for t in self.state.tokens]  # fmt: skip

    async def recent_failures(self, email: str | None, address: str | None, within: timedelta,
                              limit: int) -> list[datetime]:
        since = self._clock() - within
        ats = [a.at for a in self.state.logins if not a.success and a.at > since
               and (email is None or a.email == email) and (address is None or a.address == address)]  # fmt: skip
        return sorted(ats, reverse=True)[:limit]

    async def record_failure(self, email: str, address: str) -> int:
        attempt = Attempt(self._id(), email, address, self._clock())
        self.state.logins.append(attempt)
        return attempt.id

    async def mark_success(self, attempt_id: int) -> None:
        self.state.logins = [replace(a, success=True) if a.id == attempt_id else a for a in self.state.logins]

    async def delete_attempt(self, attempt_id: int) -> None:
        self.state.logins = [a for a in self.state.logins if a.id != attempt_id]

    async def add_refresh(self, token_hash: bytes, user_id: UUID, family_id: UUID, expires_at: datetime,
                          user_agent: str | None = None) -> None:
        if user_agent is None:
            user_agent = next((r.user_agent for r in self.state.refresh if r.family_id == family_id), "")
        self.state.refresh.append(RefreshRow(token_hash, user_id, family_id, expires_at, user_agent=user_agent))

    async def sessions(self, user_id: UUID, now: datetime) -> list[SessionInfo]:
        families: dict[UUID, list[RefreshRow]] = {}
        for r in self.state.refresh:
            if r.user_id == user_id:
                families.setdefault(r.family_id, []).append(r)
        out = [
            SessionInfo(f, max(rows, key=lambda r: r.created_at).user_agent, min(r.created_at for r in rows),
                        max(r.created_at for r in rows))
            for f, rows in families.items() if any(not r.revoked and r.expires_at > now for r in rows)
        ]
        return sorted(out, key=lambda s: s.last_used_at, reverse=True)

    async def revoke_user_family(self, user_id: UUID, family_id: UUID) -> bool:
        now = datetime.now(UTC)
        live = [r for r in self.state.refresh
                if r.user_id == user_id and r.family_id == family_id and not r.revoked and r.expires_at > now]
        self._revoke(lambda r: r.user_id == user_id and r.family_id == family_id)
        return bool(live)

    async def refresh_record(self, token_hash: bytes) -> RefreshRecord | None:
        for r in self.state.refresh:
            if r.token_hash == token_hash:
                return RefreshRecord(r.user_id, r.family_id, r.expires_at, r.revoked, self._row(r.user_id).disabled)
        return None

    def _revoke(self, match: Callable[[RefreshRow], bool]) -> None:
        self.state.refresh = [replace(r, revoked=True) if match(r) else r for r in self.state.refresh]

    async def revoke_refresh(self, token_hash: bytes) -> None:
        self._revoke(lambda r: r.token_hash == token_hash)

    async def revoke_family(self, family_id: UUID) -> None:
        self._revoke(lambda r: r.family_id == family_id)

    async def revoke_user(self, user_id: UUID) -> None:
        self._revoke(lambda r: r.user_id == user_id)

    async def announce(self, kind: str, user_id: UUID, family_id: UUID | None = None, role: Role | None = None) -> None:
        self.state.notices.append((kind, user_id, family_id, role))


class MemoryAccountStore(_MemoryAccountOps):
    """Accounts, attempts, e-mail tokens and sessions in memory; ``clock`` is the store's ``now()``. ``notices``
    are the announcements that would reach other processes (only committed ones)."""

    def __init__(self, clock: Callable[[], datetime] = _utc_now) -> None:
        super().__init__(_AccountState(), clock)
        self._lock = asyncio.Lock()

    def disable(self, user_id: UUID) -> None:
        self.state.users[user_id] = replace(self.state.users[user_id], disabled=True)

    @property
    def notices(self) -> list[tuple[str, UUID, UUID | None, Role | None]]:
        return list(self.state.notices)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_MemoryAccountOps]:
        async with self._lock:
            tx = _MemoryAccountOps(self.state.copy(), self._clock)
            yield tx
            self.state = tx.state
