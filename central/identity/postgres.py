"""Identity's stores on PostgreSQL (asyncpg): the SQL behind ``central.identity.port``."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

import asyncpg

from central import locks
from central.http.auth import SESSIONS_CHANNEL, Revocation
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

log = logging.getLogger("central.identity.devices")

_OWNED = (
    "SELECT m.id, m.serial, m.device_id, d.status AS device_status, m.model, m.protocol, m.source, m.claimed_at"
    " FROM meters m JOIN devices d ON d.device_id = m.device_id"
)


def _owned(r: asyncpg.Record) -> OwnedMeter:
    return OwnedMeter(r["id"], r["serial"], r["device_id"], r["device_status"], r["model"], r["protocol"],
                      r["source"], r["claimed_at"])  # fmt: skip


def _attempt(r: asyncpg.Record) -> ClaimAttempt:
    return ClaimAttempt(r["user_id"], r["serial"], r["address"], r["user_agent"], r["outcome"], r["at"])


class _PgClaimTx:
    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def recent_attempts(self, user_id: UUID, within: timedelta, limit: int) -> list[datetime]:
        rows = await self._conn.fetch(
            "SELECT at FROM meter_claim_attempts WHERE user_id = $1 AND outcome <> 'rate_limited'"
            " AND at > now() - $2::interval ORDER BY at DESC LIMIT $3",
            user_id, within, limit,
        )  # fmt: skip
        return [r["at"] for r in rows]

    async def recent_wrong_keys(self, serial: str, within: timedelta, limit: int) -> list[datetime]:
        rows = await self._conn.fetch(
            "SELECT at FROM meter_claim_attempts WHERE serial = $1 AND outcome = 'wrong_key'"
            " AND at > now() - $2::interval ORDER BY at DESC LIMIT $3",
            serial, within, limit,
        )  # fmt: skip
        return [r["at"] for r in rows]

    async def meter(self, serial: str) -> ClaimableMeter | None:
        row = await self._conn.fetchrow(
            "SELECT id, meter_key_hash, owner_id FROM meters WHERE serial = $1 FOR UPDATE", serial
        )
        return None if row is None else ClaimableMeter(row["id"], row["meter_key_hash"], row["owner_id"])

    async def take(self, meter_id: UUID, user_id: UUID) -> None:
        # the period starts once the row is locked, never before the previous owner's release
        at = await self._conn.fetchval(
            "UPDATE meters SET owner_id = $2, claimed_at = greatest(clock_timestamp(), released_at)"
            " WHERE id = $1 RETURNING claimed_at", meter_id, user_id,
        )  # fmt: skip
        # the ownership period accounting attributes windows by (central/accounting/ownership.py)
        await self._conn.execute(
            "INSERT INTO meter_ownerships (meter_id, owner_id, claimed_at) VALUES ($1, $2, $3)", meter_id, user_id, at
        )

    async def record(self, user_id: UUID, serial: str, address: str, user_agent: str, outcome: str) -> None:
        await self._conn.execute(
            "INSERT INTO meter_claim_attempts (user_id, serial, address, user_agent, outcome)"
            " VALUES ($1, $2, $3, $4, $5)",
            user_id, serial, address, user_agent, outcome,
        )  # fmt: skip


class PostgresMeterStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def claiming(self, user_id: UUID, serial: str) -> AsyncIterator[_PgClaimTx]:
        async with self._pool.acquire() as conn, conn.transaction():
            # A user's claims, then a serial's, are serialised (always in this order: no deadlock).
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1 || $2::uuid::text, 0))",
                               locks.METER_CLAIM_USER.prefix, user_id)  # fmt: skip
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1 || $2, 0))",
                               locks.METER_CLAIM_SERIAL.prefix, serial)  # fmt: skip
            yield _PgClaimTx(conn)

    async def owned(self, serial: str) -> OwnedMeter | None:
        row = await self._pool.fetchrow(_OWNED + " WHERE m.serial = $1", serial)
        return None if row is None else _owned(row)

    async def list_owned(self, user_id: UUID) -> list[OwnedMeter]:
        rows = await self._pool.fetch(_OWNED + " WHERE m.owner_id = $1 ORDER BY m.serial", user_id)
        return [_owned(r) for r in rows]

    async def release(self, user_id: UUID, serial: str) -> bool:
        # The release instant is taken once the meter row is locked — after any accounting pass that was
        # attributing windows to this owner has committed — and never before the end of the meter's last settled
        # window, so windows already recorded for this owner always end within their period
        # (central.accounting.ownership).
        async with self._pool.acquire() as conn, conn.transaction():
            meter_id = await conn.fetchval(
                "SELECT id FROM meters WHERE serial = $1 AND owner_id = $2 FOR UPDATE", serial, user_id
            )
            if meter_id is None:
                return False
            at = await conn.fetchval(
                "SELECT greatest(clock_timestamp(), (SELECT 'epoch'::timestamptz + boundary_ms * interval '1 ms'"
                " FROM accounting_checkpoints WHERE meter_id = $1))", meter_id,
            )  # fmt: skip
            await conn.execute(
                "UPDATE meters SET owner_id = NULL, claimed_at = NULL, released_at = $2 WHERE id = $1", meter_id, at
            )
            closed = await conn.execute(
                "UPDATE meter_ownerships SET released_at = $2 WHERE meter_id = $1 AND released_at IS NULL",
                meter_id, at,
            )  # fmt: skip
            if closed == "UPDATE 0":  # owner set outside claim (seeded by SQL): record the period we know of
                await conn.execute(
                    "INSERT INTO meter_ownerships (meter_id, owner_id, claimed_at, released_at)"
                    " VALUES ($1, $2, $3, $3)", meter_id, user_id, at,
                )  # fmt: skip
        return True

    async def attempts(self, user_id: UUID | None, limit: int) -> list[ClaimAttempt]:
        rows = await self._pool.fetch(
            "SELECT * FROM meter_claim_attempts WHERE ($1::uuid IS NULL OR user_id = $1) ORDER BY id DESC LIMIT $2",
            user_id, limit,
        )  # fmt: skip
        return [_attempt(r) for r in rows]


# --- gateways ----------------------------------------------------------------------------------------------------
class _PgChallengeTx:
    def __init__(self, conn: asyncpg.Connection, device_id: str) -> None:
        self._conn = conn
        self._device_id = device_id

    async def target(self) -> ChallengeTarget | None:
        row = await self._conn.fetchrow(
            "SELECT status, pairing_code, last_challenge_at, now() AS now FROM devices WHERE device_id = $1"
            " FOR UPDATE", self._device_id,
        )  # fmt: skip
        if row is None:
            return None
        return ChallengeTarget(row["status"], row["pairing_code"], row["last_challenge_at"], row["now"])

    async def start_cooldown(self) -> None:
        await self._conn.execute("UPDATE devices SET last_challenge_at = now() WHERE device_id = $1", self._device_id)

    async def end_cooldown(self) -> None:
        await self._conn.execute("UPDATE devices SET last_challenge_at = NULL WHERE device_id = $1", self._device_id)

    async def outstanding(self, valid_after_ms: int) -> Challenge | None:
        row = await self._conn.fetchrow(
            "SELECT nonce, expires_ms FROM device_challenges WHERE device_id = $1 AND channel = 'mqtt'"
            " AND used_at IS NULL AND expires_ms > $2 ORDER BY expires_ms DESC LIMIT 1",
            self._device_id, valid_after_ms,
        )  # fmt: skip
        return None if row is None else Challenge(bytes(row["nonce"]), row["expires_ms"])

    async def replace_outstanding(self, challenge: Challenge) -> None:
        await self._conn.execute(
            "DELETE FROM device_challenges WHERE device_id = $1 AND channel = 'mqtt' AND used_at IS NULL",
            self._device_id,
        )
        await self._conn.execute(
            "INSERT INTO device_challenges (nonce, device_id, channel, expires_ms, expires_at)"
            " VALUES ($1, $2, 'mqtt', $3::bigint, to_timestamp($3::bigint / 1000.0))",
            challenge.nonce, self._device_id, challenge.expires_ms,
        )  # fmt: skip


class _PgStatusTx:
    def __init__(self, conn: asyncpg.Connection, device_id: str) -> None:
        self._conn = conn
        self._device_id = device_id

    async def current(self) -> tuple[str, bool] | None:
        row = await self._conn.fetchrow(
            "SELECT status, verified_at FROM devices WHERE device_id = $1 FOR UPDATE", self._device_id
        )
        return None if row is None else (row["status"], row["verified_at"] is not None)

    async def set(self, status: str, actor_id: UUID, event: str, reason: str) -> None:
        await self._conn.execute("UPDATE devices SET status = $2 WHERE device_id = $1", self._device_id, status)
        await self._conn.execute(
            "INSERT INTO device_events (device_id, actor_id, event, detail) VALUES ($1, $2, $3, $4)",
            self._device_id, actor_id, event, reason,
        )  # fmt: skip


class PostgresDeviceStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def visible(self, device_id: str, installer_id: UUID | None) -> bool:
        row = await self._pool.fetchrow("SELECT installer_id FROM devices WHERE device_id = $1", device_id)
        return row is not None and (installer_id is None or row["installer_id"] == installer_id)

    async def load(self, device_ids: list[str]) -> list[Device]:
        rows = await self._pool.fetch(
            "SELECT * FROM devices WHERE device_id = ANY($1) ORDER BY created_at, device_id", device_ids
        )
        meters = await self._pool.fetch(
            "SELECT device_id, serial, model, protocol, source, owner_id IS NOT NULL AS claimed FROM meters"
            " WHERE device_id = ANY($1) ORDER BY serial",
            device_ids,
        )
        by_device: dict[str, list[MeterInfo]] = {}
        for m in meters:
            by_device.setdefault(m["device_id"], []).append(
                MeterInfo(m["serial"], m["model"], m["protocol"], m["source"], m["claimed"])
            )
        return [
            Device(r["device_id"], r["status"], r["site_label"], r["installer_id"], r["created_at"],
                   r["verified_at"], r["online"], r["last_seen_at"], by_device.get(r["device_id"], []),
                   r["outbox_depth"], r["outbox_oldest_age_s"], r["meters_down"], tuple(r["alarms"]))
            for r in rows
        ]  # fmt: skip

    async def list_ids(self, installer_id: UUID | None, after: str | None, limit: int) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT device_id FROM devices WHERE ($1::uuid IS NULL OR installer_id = $1)"
            " AND ($2::text IS NULL OR device_id > $2) ORDER BY device_id LIMIT $3",
            installer_id, after, limit,
        )  # fmt: skip
        return [r["device_id"] for r in rows]

    async def register(self, registration: Registration, stale_after_s: int) -> str:
        r = registration
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                if await self._take_over_stale(conn, r, stale_after_s):
                    event = "replaced"
                else:
                    await conn.execute(
                        "INSERT INTO devices (device_id, public_key, installer_id, site_label, pairing_code)"
                        " VALUES ($1, $2, $3, $4, $5)",
                        r.device_id, r.public_key, r.installer_id, r.site_label, r.pairing_code,
                    )  # fmt: skip
                    event = "registered"
                await _insert_meters(conn, r.device_id, r.meters, r.key_hashes, stale_after_s)
                await conn.execute(
                    "INSERT INTO device_events (device_id, actor_id, event) VALUES ($1, $2, $3)",
                    r.device_id, r.installer_id, event,
                )  # fmt: skip
        except asyncpg.ForeignKeyViolationError:  # a stale registration's meter is referenced (never expected)
            raise DeviceExistsError("this device is already registered") from None
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "devices_pkey":
                raise DeviceExistsError("this device is already registered") from None
            raise SerialTakenError("a meter with this serial is already registered") from None
        return event

    @staticmethod
    async def _take_over_stale(conn: asyncpg.Connection, r: Registration, stale_after_s: int) -> bool:
        """Hand a stale registration (``pending``, never verified, older than ``stale_after_s``) to the new
        registrant: its meters and open challenges go, the device row is reset. False if there is none."""
        old_installer = await conn.fetchrow(
            "SELECT installer_id FROM devices WHERE device_id = $1 AND status = 'pending' AND verified_at IS NULL"
            " AND created_at < now() - make_interval(secs => $2) FOR UPDATE",
            r.device_id, float(stale_after_s),
        )  # fmt: skip
        if old_installer is None:
            return False
        await conn.execute("DELETE FROM device_challenges WHERE device_id = $1", r.device_id)
        await conn.execute("DELETE FROM meters WHERE device_id = $1", r.device_id)
        await conn.execute(
            "UPDATE devices SET installer_id = $2, site_label = $3, created_at = now(), pairing_code = $4,"
            " last_challenge_at = NULL WHERE device_id = $1",
            r.device_id, r.installer_id, r.site_label, r.pairing_code,
        )  # fmt: skip
        log.warning("stale pending registration taken over",
                    extra={"device_id": r.device_id, "previous_installer": str(old_installer["installer_id"])})
        return True

    async def add_meters(self, device_id: str, meters: list[NewMeter], key_hashes: list[str],
                         stale_after_s: int) -> None:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                await _insert_meters(conn, device_id, meters, key_hashes, stale_after_s)
        except asyncpg.UniqueViolationError:
            raise SerialTakenError("a meter with this serial is already registered") from None

    async def pairing_code(self, device_id: str) -> str | None:
        code: str | None = await self._pool.fetchval(
            "SELECT pairing_code FROM devices WHERE device_id = $1", device_id
        )
        return code

    async def status(self, device_id: str) -> str | None:
        status: str | None = await self._pool.fetchval("SELECT status FROM devices WHERE device_id = $1", device_id)
        return status

    async def add_challenge(self, device_id: str, channel: str, challenge: Challenge) -> bool:
        row = await self._pool.fetchrow(
            "INSERT INTO device_challenges (nonce, device_id, channel, expires_ms, expires_at)"
            " SELECT $1, device_id, $3, $4::bigint, to_timestamp($4::bigint / 1000.0) FROM devices"
            " WHERE device_id = $2 AND status <> 'revoked' RETURNING nonce",
            challenge.nonce, device_id, channel, challenge.expires_ms,
        )  # fmt: skip
        return row is not None

    @asynccontextmanager
    async def challenging(self, device_id: str) -> AsyncIterator[_PgChallengeTx]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield _PgChallengeTx(conn, device_id)

    async def open_challenge(self, device_id: str, nonce: bytes) -> OpenChallenge | None:
        row = await self._pool.fetchrow(
            "SELECT c.expires_ms, d.public_key FROM device_challenges c JOIN devices d USING (device_id)"
            " WHERE c.nonce = $1 AND c.device_id = $2 AND c.used_at IS NULL",
            nonce, device_id,
        )  # fmt: skip
        return None if row is None else OpenChallenge(row["expires_ms"], bytes(row["public_key"]))

    async def use_challenge(self, device_id: str, nonce: bytes) -> str | None:
        status: str | None = await self._pool.fetchval(
            "UPDATE device_challenges c SET used_at = now() FROM devices d"
            " WHERE c.nonce = $1 AND c.device_id = $2 AND d.device_id = c.device_id AND c.used_at IS NULL"
            " RETURNING d.status",
            nonce, device_id,
        )  # fmt: skip
        return status

    async def mark_verified(self, device_id: str) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            status = await conn.fetchval(
                "UPDATE devices SET status = 'verified', verified_at = now() WHERE device_id = $1"
                " AND status = 'pending' RETURNING status",
                device_id,
            )
            if status is None:
                return False
            await conn.execute("INSERT INTO device_events (device_id, event) VALUES ($1, 'verified')", device_id)
        return True

    async def pending_online_unchallenged(self, valid_after_ms: int, limit: int) -> list[str]:
        rows = await self._pool.fetch(
            "SELECT d.device_id FROM devices d WHERE d.status = 'pending' AND d.online AND d.pairing_code IS NOT NULL"
            " AND NOT EXISTS"
            " (SELECT 1 FROM device_challenges c WHERE c.device_id = d.device_id AND c.channel = 'mqtt'"
            " AND c.used_at IS NULL AND c.expires_ms > $1) LIMIT $2",
            valid_after_ms, limit,
        )  # fmt: skip
        return [r["device_id"] for r in rows]

    async def delete_expired_challenges(self, now_ms: int) -> int:
        result: str = await self._pool.execute("DELETE FROM device_challenges WHERE expires_ms < $1", now_ms)
        return int(result.rsplit(maxsplit=1)[-1])

    @asynccontextmanager
    async def changing_status(self, device_id: str) -> AsyncIterator[_PgStatusTx]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield _PgStatusTx(conn, device_id)


async def _insert_meters(conn: asyncpg.Connection, device_id: str, meters: list[NewMeter], hashes: list[str],
                         stale_after_s: int) -> None:
    # Serials held by another stale, never-verified registration are freed (that device never sent a reading).
    await conn.execute(
        "DELETE FROM meters m USING devices d WHERE m.serial = ANY($1) AND d.device_id = m.device_id"
        " AND d.device_id <> $2 AND d.status = 'pending' AND d.verified_at IS NULL"
        " AND d.created_at < now() - make_interval(secs => $3)",
        [m.serial for m in meters], device_id, float(stale_after_s),
    )  # fmt: skip
    await conn.executemany(
        "INSERT INTO meters (id, serial, device_id, model, protocol, source, meter_key_hash)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [(uuid.uuid4(), m.serial, device_id, m.model, m.protocol, m.source, h)
         for m, h in zip(meters, hashes, strict=True)],
    )  # fmt: skip


# --- accounts ----------------------------------------------------------------------------------------------------
def _user(row: asyncpg.Record) -> User:
    return User(row["id"], row["email"], Role(row["role"]), row["email_verified_at"] is not None, row["created_at"])


def _credentials(row: asyncpg.Record | None) -> Credentials | None:
    return None if row is None else Credentials(_user(row), row["password_hash"], row["disabled_at"] is not None)


#: Conditions of ``recent_registrations`` (fixed column names, never input).
_REGISTRATIONS_BY = {"address": "address = $1", "email": "email = $1"}


class _PgAccountOps:
    """The account operations on a pool (each statement alone) or a connection (inside its transaction)."""

    def __init__(self, conn: asyncpg.Pool | asyncpg.Connection) -> None:
        self._conn = conn

    async def insert_user(self, email: str, password_hash: str, role: Role, verified: bool) -> User:
        try:
            row = await self._conn.fetchrow(
                "INSERT INTO users (id, email, password_hash, role, email_verified_at)"
                " VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END) RETURNING *",
                uuid.uuid4(), email, password_hash, role.value, verified,
            )  # fmt: skip
        except asyncpg.UniqueViolationError:
            raise EmailTakenError("an account with this e-mail address exists") from None
        assert row is not None
        return _user(row)

    async def credentials(self, email: str) -> Credentials | None:
        return _credentials(await self._conn.fetchrow("SELECT * FROM users WHERE email = $1", email))

    async def credentials_by_id(self, user_id: UUID) -> Credentials | None:
        return _credentials(await self._conn.fetchrow("SELECT * FROM users WHERE id = $1", user_id))

    async def list_users(self, limit: int, after: UUID | None) -> list[User]:
        rows = await self._conn.fetch(
            "SELECT * FROM users WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2", after, limit
        )
        return [_user(r) for r in rows]

    async def mark_verified(self, user_id: UUID) -> User:
        row = await self._conn.fetchrow(
            "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1 RETURNING *",
            user_id,
        )
        assert row is not None
        return _user(row)

    async def set_password_hash(self, user_id: UUID, password_hash: str) -> None:
        await self._conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)

    async def admins(self) -> set[UUID]:
        rows = await self._conn.fetch("SELECT id FROM users WHERE role = $1 ORDER BY id FOR UPDATE", Role.ADMIN.value)
        return {r["id"] for r in rows}

    async def set_role(self, user_id: UUID, role: Role) -> User | None:
        row = await self._conn.fetchrow("UPDATE users SET role = $2 WHERE id = $1 RETURNING *", user_id, role.value)
        return None if row is None else _user(row)

    async def record_registration(self, email: str, address: str) -> int:
        attempt: int = await self._conn.fetchval(
            "INSERT INTO registration_attempts (email, address) VALUES ($1, $2) RETURNING id", email, address
        )
        return attempt

    async def recent_registrations(self, by: Literal["address", "email"], value: str, within: timedelta,
                                   limit: int) -> list[datetime]:
        rows = await self._conn.fetch(
            f"SELECT at FROM registration_attempts WHERE {_REGISTRATIONS_BY[by]}"  # noqa: S608 - fixed conditions
            " AND at > now() - $2::interval ORDER BY at DESC LIMIT $3",
            value, within, limit,
        )  # fmt: skip
        return [r["at"] for r in rows]

    async def delete_registration(self, attempt_id: int) -> None:
        await self._conn.execute("DELETE FROM registration_attempts WHERE id = $1", attempt_id)

    async def prune_registrations(self, older_than: timedelta) -> None:
        await self._conn.execute("DELETE FROM registration_attempts WHERE at < now() - $1::interval", older_than)

    async def tokens_sent(self, user_id: UUID, purpose: str, within: timedelta) -> int:
        count: int = await self._conn.fetchval(
            "SELECT count(*) FROM email_tokens WHERE user_id = $1 AND purpose = $2"
            " AND created_at > now() - $3::interval",
            user_id, purpose, within,
        )  # fmt: skip
        return count

    async def add_token(self, token_hash: bytes, user_id: UUID, purpose: str, ttl_s: int) -> None:
        await self._conn.execute(
            "INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at)"
            " VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
            token_hash, user_id, purpose, float(ttl_s),
        )  # fmt: skip

    async def use_token(self, token_hash: bytes, purpose: str) -> UUID | None:
        user_id: UUID | None = await self._conn.fetchval(
            "UPDATE email_tokens SET used_at = now() WHERE token_hash = $1 AND purpose = $2"
            " AND used_at IS NULL AND expires_at > now() RETURNING user_id",
            token_hash, purpose,
        )  # fmt: skip
        return user_id

    async def burn_tokens(self, user_id: UUID, purpose: str) -> None:
        await self._conn.execute(
            "UPDATE email_tokens SET used_at = now() WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
            user_id, purpose,
        )  # fmt: skip

    async def recent_failures(self, email: str | None, address: str | None, within: timedelta,
                              limit: int) -> list[datetime]:
        rows = await self._conn.fetch(
            "SELECT at FROM login_attempts WHERE ($1::text IS NULL OR email = $1)"
            " AND ($2::text IS NULL OR address = $2) AND NOT success"
            " AND at > now() - $3::interval ORDER BY at DESC LIMIT $4",
            email, address, within, limit,
        )  # fmt: skip
        return [r["at"] for r in rows]

    async def record_failure(self, email: str, address: str) -> int:
        attempt: int = await self._conn.fetchval(
            "INSERT INTO login_attempts (email, address, success) VALUES ($1, $2, false) RETURNING id",
            email, address,
        )  # fmt: skip
        return attempt

    async def mark_success(self, attempt_id: int) -> None:
        await self._conn.execute("UPDATE login_attempts SET success = true WHERE id = $1", attempt_id)

    async def delete_attempt(self, attempt_id: int) -> None:
        await self._conn.execute("DELETE FROM login_attempts WHERE id = $1", attempt_id)

    async def add_refresh(self, token_hash: bytes, user_id: UUID, family_id: UUID, expires_at: datetime,
                          user_agent: str | None = None) -> None:
        await self._conn.execute(
            "INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at, user_agent) VALUES ($1, $2, $3,"
            " $4, coalesce($5, (SELECT user_agent FROM refresh_tokens WHERE family_id = $3 LIMIT 1), ''))",
            token_hash, user_id, family_id, expires_at, user_agent,
        )  # fmt: skip

    async def sessions(self, user_id: UUID, now: datetime) -> list[SessionInfo]:
        rows = await self._conn.fetch(
            "SELECT family_id, min(created_at) AS created_at, max(created_at) AS last_used_at,"
            " (array_agg(user_agent ORDER BY created_at DESC))[1] AS user_agent FROM refresh_tokens"
            " WHERE user_id = $1 GROUP BY family_id"
            " HAVING bool_or(revoked_at IS NULL AND expires_at > $2) ORDER BY last_used_at DESC",
            user_id, now,
        )  # fmt: skip
        return [SessionInfo(r["family_id"], r["user_agent"], r["created_at"], r["last_used_at"]) for r in rows]

    async def revoke_user_family(self, user_id: UUID, family_id: UUID) -> bool:
        status = await self._conn.execute(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND family_id = $2"
            " AND revoked_at IS NULL AND expires_at > now()",
            user_id, family_id,
        )  # fmt: skip
        return str(status) != "UPDATE 0"

    async def refresh_record(self, token_hash: bytes) -> RefreshRecord | None:
        row = await self._conn.fetchrow(
            "SELECT t.user_id, t.family_id, t.expires_at, t.revoked_at, u.disabled_at FROM refresh_tokens t"
            " JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1 FOR UPDATE OF t",
            token_hash,
        )
        if row is None:
            return None
        return RefreshRecord(row["user_id"], row["family_id"], row["expires_at"], row["revoked_at"] is not None,
                             row["disabled_at"] is not None)  # fmt: skip

    async def revoke_refresh(self, token_hash: bytes) -> None:
        await self._conn.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = $1", token_hash)

    async def revoke_family(self, family_id: UUID) -> None:
        await self._conn.execute(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL", family_id
        )

    async def revoke_user(self, user_id: UUID) -> None:
        await self._conn.execute(
            "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL", user_id
        )

    async def announce(self, kind: str, user_id: UUID, family_id: UUID | None = None, role: Role | None = None) -> None:
        revocation = Revocation(kind, user_id, family_id, None if role is None else role.value)
        await self._conn.execute("SELECT pg_notify($1, $2)", SESSIONS_CHANNEL, revocation.to_json())


class PostgresAccountStore(_PgAccountOps):
    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self._pool = pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[_PgAccountOps]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield _PgAccountOps(conn)
