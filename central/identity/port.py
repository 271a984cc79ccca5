"""The stores identity's services need (implemented by ``central.identity.postgres`` and, for unit tests of the
rules, by ``central.identity.memory``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from typing import Literal, Protocol
from uuid import UUID

from central.identity.model import (
    ChallengeTarget,
    ClaimableMeter,
    ClaimAttempt,
    Credentials,
    Device,
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


class ClaimTx(Protocol):
    """One meter claim's unit of work: everything in it commits together (or not at all)."""

    async def recent_attempts(self, user_id: UUID, within: timedelta, limit: int) -> list[datetime]:
        """When the user's attempts of the last ``within`` that were not rate-limited were made, newest first (at
        most ``limit``)."""
        ...

    async def recent_wrong_keys(self, serial: str, within: timedelta, limit: int) -> list[datetime]:
        """When wrong-key attempts on ``serial`` (by any account) of the last ``within`` were made, newest first."""
        ...

    async def meter(self, serial: str) -> ClaimableMeter | None:
        """The meter with this serial, locked until the end of the unit of work."""
        ...

    async def take(self, meter_id: UUID, user_id: UUID) -> None:
        """Make ``user_id`` the owner and open its ownership period (never before the previous owner's release)."""
        ...

    async def record(self, user_id: UUID, serial: str, address: str, user_agent: str, outcome: str) -> None:
        """Add an attempt to the audit trail (made now)."""
        ...


class MeterStore(Protocol):
    def claiming(self, user_id: UUID, serial: str) -> AbstractAsyncContextManager[ClaimTx]:
        """A unit of work for one claim; claims by the same user, and on the same serial, run one at a time."""
        ...

    async def owned(self, serial: str) -> OwnedMeter | None:
        """The meter with this serial, as its owner sees it."""
        ...

    async def list_owned(self, user_id: UUID) -> list[OwnedMeter]:
        """The user's meters, by serial."""
        ...

    async def release(self, user_id: UUID, serial: str) -> bool:
        """End the user's ownership of the meter (``meters.released_at`` and the ownership period; never before the
        end of the meter's last settled window). False when the user owns no meter with this serial."""
        ...

    async def attempts(self, user_id: UUID | None, limit: int) -> list[ClaimAttempt]:
        """The claim audit trail, newest first (one user's, or everybody's)."""
        ...


class ChallengeTx(Protocol):
    """One MQTT challenge decision's unit of work, under the device's lock (concurrent triggers run one by one)."""

    async def target(self) -> ChallengeTarget | None:
        """The device (None: unknown)."""
        ...

    async def start_cooldown(self) -> None:
        """Note that an unforced challenge is sent now (``last_challenge_at``)."""
        ...

    async def end_cooldown(self) -> None:
        """Let the next unforced challenge go at once (``last_challenge_at`` cleared)."""
        ...

    async def outstanding(self, valid_after_ms: int) -> Challenge | None:
        """The latest unused MQTT challenge still valid after ``valid_after_ms``."""
        ...

    async def replace_outstanding(self, challenge: Challenge) -> None:
        """Drop the device's unused MQTT challenges and store ``challenge`` as its outstanding one."""
        ...


class StatusTx(Protocol):
    """One status change's unit of work, under the device's lock."""

    async def current(self) -> tuple[str, bool] | None:
        """The device's status and whether it was ever verified (None: unknown)."""
        ...

    async def set(self, status: str, actor_id: UUID, event: str, reason: str) -> None:
        """Change the status and record the event."""
        ...


class DeviceStore(Protocol):
    async def visible(self, device_id: str, installer_id: UUID | None) -> bool:
        """The device exists and (unless ``installer_id`` is None: any) was registered by ``installer_id``."""
        ...

    async def load(self, device_ids: list[str]) -> list[Device]:
        """The devices with their meters, by creation time."""
        ...

    async def list_ids(self, installer_id: UUID | None, after: str | None, limit: int) -> list[str]:
        """Device ids by id (one installer's, or all), after the cursor."""
        ...

    async def register(self, registration: Registration, stale_after_s: int) -> str:
        """Store a registration atomically; a stale one for the same device (``pending``, never verified, older than
        ``stale_after_s``) is taken over, and serials held by other stale registrations are freed. Returns the event
        recorded ("registered" or "replaced"). Raises ``DeviceExistsError`` or ``SerialTakenError``."""
        ...

    async def add_meters(self, device_id: str, meters: list[NewMeter], key_hashes: list[str],
                         stale_after_s: int) -> None:
        """Add meters to a device (serials of stale registrations are freed). Raises ``SerialTakenError``."""
        ...

    async def pairing_code(self, device_id: str) -> str | None:
        ...

    async def status(self, device_id: str) -> str | None:
        ...

    async def add_challenge(self, device_id: str, channel: str, challenge: Challenge) -> bool:
        """Store a challenge for a device that is not revoked; False when there is no such device or it is."""
        ...

    def challenging(self, device_id: str) -> AbstractAsyncContextManager[ChallengeTx]:
        ...

    async def open_challenge(self, device_id: str, nonce: bytes) -> OpenChallenge | None:
        """The unused challenge ``nonce`` of the device."""
        ...

    async def use_challenge(self, device_id: str, nonce: bytes) -> str | None:
        """Mark the challenge used unless it already is; returns the device's status, None when it was used."""
        ...

    async def mark_verified(self, device_id: str) -> bool:
        """``pending`` → ``verified`` (with its event); False when the device was no longer pending."""
        ...

    async def pending_online_unchallenged(self, valid_after_ms: int, limit: int) -> list[str]:
        """Pending, online devices with a pairing code and no unused MQTT challenge valid after ``valid_after_ms``."""
        ...

    async def delete_expired_challenges(self, now_ms: int) -> int:
        ...

    def changing_status(self, device_id: str) -> AbstractAsyncContextManager[StatusTx]:
        ...


class TokenIssuer(Protocol):
    """Issues access tokens (``central.http.auth.TokenCodec``)."""

    def issue(self, user_id: UUID, role: Role, *, session: UUID | None = None) -> tuple[str, int]: ...


class AccountOps(Protocol):
    """What the account rules read and write; on ``AccountStore`` each call stands alone, inside
    ``AccountStore.transaction()`` they commit together. Tokens are only ever handed over as hashes."""

    # users
    async def insert_user(self, email: str, password_hash: str, role: Role, verified: bool) -> User:
        """Raises ``EmailTakenError``."""
        ...

    async def credentials(self, email: str) -> Credentials | None: ...

    async def credentials_by_id(self, user_id: UUID) -> Credentials | None: ...

    async def list_users(self, limit: int, after: UUID | None) -> list[User]: ...

    async def mark_verified(self, user_id: UUID) -> User:
        """Set the e-mail verified (kept when it already was)."""
        ...

    async def set_password_hash(self, user_id: UUID, password_hash: str) -> None: ...

    async def admins(self) -> set[UUID]:
        """The admin accounts, locked until the end of the transaction (concurrent demotions see each other)."""
        ...

    async def set_role(self, user_id: UUID, role: Role) -> User | None: ...

    # registration attempts
    async def record_registration(self, email: str, address: str) -> int: ...

    async def recent_registrations(self, by: Literal["address", "email"], value: str, within: timedelta,
                                   limit: int) -> list[datetime]:
        """When the registrations of the last ``within`` from this address (or for this e-mail) were made, newest
        first."""
        ...

    async def delete_registration(self, attempt_id: int) -> None: ...

    async def prune_registrations(self, older_than: timedelta) -> None: ...

    # e-mail tokens
    async def tokens_sent(self, user_id: UUID, purpose: str, within: timedelta) -> int: ...

    async def add_token(self, token_hash: bytes, user_id: UUID, purpose: str, ttl_s: int) -> None: ...

    async def use_token(self, token_hash: bytes, purpose: str) -> UUID | None:
        """Mark an unused, unexpired token used; its user, or None."""
        ...

    async def burn_tokens(self, user_id: UUID, purpose: str) -> None:
        """Mark every unused token of the user for ``purpose`` used."""
        ...

    # login attempts
    async def recent_failures(self, email: str | None, address: str | None, within: timedelta,
                              limit: int) -> list[datetime]:
        """When failed password attempts of the last ``within`` were made (for the account and/or from the
        address; None matches any), newest first."""
        ...

    async def record_failure(self, email: str, address: str) -> int:
        """Record a password attempt as failed (until ``mark_success``); its id."""
        ...

    async def mark_success(self, attempt_id: int) -> None: ...

    async def delete_attempt(self, attempt_id: int) -> None: ...

    # sessions (refresh-token families)
    async def add_refresh(self, token_hash: bytes, user_id: UUID, family_id: UUID, expires_at: datetime,
                          user_agent: str | None = None) -> None:
        """``user_agent`` None: the family's (a rotation keeps the login's)."""
        ...

    async def sessions(self, user_id: UUID, now: datetime) -> list[SessionInfo]:
        """The user's sessions with a refresh token neither revoked nor expired at ``now``, last used first."""
        ...

    async def revoke_user_family(self, user_id: UUID, family_id: UUID) -> bool:
        """Revoke the session ``family_id`` if it is ``user_id``'s and still has a live token."""
        ...

    async def refresh_record(self, token_hash: bytes) -> RefreshRecord | None:
        """The refresh token, locked until the end of the transaction."""
        ...

    async def revoke_refresh(self, token_hash: bytes) -> None: ...

    async def revoke_family(self, family_id: UUID) -> None: ...

    async def revoke_user(self, user_id: UUID) -> None:
        """Revoke every session of the user."""
        ...

    async def announce(self, kind: str, user_id: UUID, family_id: UUID | None = None, role: Role | None = None) -> None:
        """Tell every central process (live sockets) that sessions ended (``revoked``) or a role changed
        (``role``); inside a transaction the notice goes out at commit."""
        ...


class AccountStore(AccountOps, Protocol):
    def transaction(self) -> AbstractAsyncContextManager[AccountOps]: ...
