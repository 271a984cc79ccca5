"""Accounts: registration, e-mail verification, login (rate-limited per account and per address), rotating
refresh tokens, logout, password change and reset.

Refresh tokens are random, stored as SHA-256, single use: each refresh revokes the presented token and issues the
next one of the same *family* (one login). Presenting an already-rotated token revokes the whole family (a stolen
token used after its owner — or vice versa — ends that session for both).
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg

from central.config import AuthConfig, IdentityConfig
from central.http.auth import SESSIONS_CHANNEL, Revocation, TokenCodec
from central.http.roles import Role
from central.identity.errors import (
    EmailNotVerifiedError,
    EmailTakenError,
    InvalidCredentialsError,
    InvalidRefreshTokenError,
    InvalidTokenError,
    LastAdminError,
    LoginRateLimitedError,
    RegistrationRateLimitedError,
    RoleNotAllowedError,
    UnknownUserError,
    UserNotFoundError,
    WeakPasswordError,
    WrongPasswordError,
)
from central.identity.hashing import burn_check, check_secret, hash_secret, new_token, token_hash
from central.identity.mailer import Mail, Mailer, MailError

log = logging.getLogger(__name__)

SELF_SERVICE_ROLES = frozenset({Role.CONSUMER, Role.PROSUMER})
#: Verification / reset e-mails sent per account and purpose per hour.
MAILS_PER_HOUR = 5


@dataclass(frozen=True)
class User:
    id: UUID
    email: str
    role: Role
    email_verified: bool
    created_at: datetime


@dataclass(frozen=True)
class Session:
    access_token: str
    access_expires_at: int
    refresh_token: str
    refresh_expires_at: datetime
    user: User


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _user(row: asyncpg.Record) -> User:
    return User(row["id"], row["email"], Role(row["role"]), row["email_verified_at"] is not None, row["created_at"])


class Accounts:
    def __init__(self, pool: asyncpg.Pool, auth: AuthConfig, identity: IdentityConfig, tokens: TokenCodec,
                 mailer: Mailer) -> None:
        self._pool = pool
        self._auth = auth
        self._identity = identity
        self._tokens = tokens
        self._mailer = mailer

    # --- registration and verification -----------------------------------------------------------------------
    def _check_password(self, password: str) -> None:
        if len(password) < self._auth.min_password_length:
            raise WeakPasswordError(f"password must have at least {self._auth.min_password_length} characters")

    async def create_user(self, email: str, password: str, role: Role, *, verified: bool = False) -> User:
        """Create an account (no e-mail sent). ``verified`` marks the address verified (admin/CLI creation)."""
        self._check_password(password)
        email = normalise_email(email)
        pw_hash = await hash_secret(password, self._auth.password_bcrypt_cost)
        try:
            row = await self._pool.fetchrow(
                "INSERT INTO users (id, email, password_hash, role, email_verified_at)"
                " VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END) RETURNING *",
                uuid.uuid4(), email, pw_hash, role.value, verified,
            )
        except asyncpg.UniqueViolationError:
            raise EmailTakenError("an account with this e-mail address exists") from None
        assert row is not None
        log.info("user created", extra={"user_id": str(row["id"]), "role": role.value})
        return _user(row)

    async def register(self, email: str, password: str, role: Role, address: str = "unknown") -> User | None:
        """Self-service registration. The caller's answer must not depend on whether ``email`` has an account
        (issue 10 D9): a new account gets the verification mail; for an existing one the owner is mailed a notice
        instead and ``None`` is returned (the route answers the same 202 either way). Limited per source address and per
        e-mail address (429)."""
        allowed = SELF_SERVICE_ROLES | ({Role.INSTALLER} if self._identity.self_register_installers else set())
        if role not in allowed:
            raise RoleNotAllowedError(f"role {role.value} cannot be self-registered")
        self._check_password(password)
        email = normalise_email(email)
        await self._check_register_limits(email, address)
        try:
            user = await self.create_user(email, password, role)
        except EmailTakenError:
            await self._notify_existing(email)
            return None
        await self._send_token(user.id, user.email, "verify")
        return user

    async def _check_register_limits(self, email: str, address: str) -> None:
        """Record this registration attempt, then refuse it (429, row removed) when the attempts of the last hour
        from ``address`` or for ``email`` exceed their limits. Recording first means concurrent attempts see each
        other."""
        attempt: int = await self._pool.fetchval(
            "INSERT INTO registration_attempts (email, address) VALUES ($1, $2) RETURNING id", email, address
        )
        for column, value, limit in (
            ("address", address, self._identity.register_max_per_address_per_hour),
            ("email", email, self._identity.register_max_per_email_per_hour),
        ):
            rows = await self._pool.fetch(
                f"SELECT at FROM registration_attempts WHERE {column} = $1"  # noqa: S608 - fixed column names
                " AND at > now() - interval '1 hour' ORDER BY at DESC LIMIT $2",
                value, limit + 1,
            )
            if len(rows) > limit:
                await self._pool.execute("DELETE FROM registration_attempts WHERE id = $1", attempt)
                oldest: datetime = rows[-1]["at"]
                wait = max(1, math.ceil((oldest + timedelta(hours=1) - datetime.now(UTC)).total_seconds()))
                log.warning("registration rate-limited", extra={"by": column, "address": address})
                raise RegistrationRateLimitedError("too many registrations; try again later", wait)
        # Old rows are useless to the limits: keep the table small.
        await self._pool.execute("DELETE FROM registration_attempts WHERE at < now() - interval '1 day'")

    async def _notify_existing(self, email: str) -> None:
        """Someone tried to register an address that already has an account: tell its owner (no token, nothing
        to act on), instead of telling the caller."""
        base = self._identity.web_base_url.rstrip("/")
        body = ("Someone tried to create a GridTokenX account with this e-mail address, which already has one.\n\n"
                f"If it was you, log in at {base} (or reset your password there). If it was not you, ignore this "
                "message: nothing was changed.\n")
        try:
            await self._mailer.send(Mail(to=email, subject="Your GridTokenX account", body=body, kind="account_exists"))
        except MailError as exc:
            log.warning("e-mail not sent", extra={"purpose": "account_exists", "error": str(exc)})

    async def _send_token(self, user_id: UUID, email: str, purpose: str) -> None:
        recent = await self._pool.fetchval(
            "SELECT count(*) FROM email_tokens WHERE user_id = $1 AND purpose = $2"
            " AND created_at > now() - interval '1 hour'",
            user_id, purpose,
        )
        if recent >= MAILS_PER_HOUR:
            # Nobody can flood an inbox through us; the caller's answer does not change (no enumeration).
            log.warning("e-mail token not sent: hourly limit", extra={"user_id": str(user_id), "purpose": purpose})
            return
        token = new_token()
        ttl = self._auth.verify_token_ttl_s if purpose == "verify" else self._auth.reset_token_ttl_s
        await self._pool.execute(
            "INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at)"
            " VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
            token_hash(token), user_id, purpose, float(ttl),
        )
        base = self._identity.web_base_url.rstrip("/")
        if purpose == "verify":
            subject = "Verify your GridTokenX e-mail address"
            body = (f"Welcome to GridTokenX.\n\nConfirm your address: {base}/verify-email?token={token}\n"
                    f"(or POST it to /api/v1/auth/verify-email). The link works once.\n")
        else:
            subject = "Reset your GridTokenX password"
            body = (f"Someone asked to reset your GridTokenX password.\n\n{base}/reset-password?token={token}\n"
                    f"(or POST it with a new password to /api/v1/auth/password-reset/confirm). It expires in "
                    f"{ttl // 60} minutes and works once. If it was not you, ignore this message.\n")
        try:
            await self._mailer.send(Mail(to=email, subject=subject, body=body, kind=purpose, token=token))
        except MailError as exc:
            # The caller's answer must not change (an account exists, a mail server is down): the request stands
            # and can be repeated; operators see the failure.
            log.warning("e-mail not sent", extra={"user_id": str(user_id), "purpose": purpose, "error": str(exc)})

    async def _use_token(self, conn: asyncpg.Connection, token: str, purpose: str) -> UUID:
        row = await conn.fetchrow(
            "UPDATE email_tokens SET used_at = now() WHERE token_hash = $1 AND purpose = $2"
            " AND used_at IS NULL AND expires_at > now() RETURNING user_id",
            token_hash(token), purpose,
        )
        if row is None:
            raise InvalidTokenError("the token is invalid, expired or already used")
        user_id: UUID = row["user_id"]
        return user_id

    async def verify_email(self, token: str) -> User:
        async with self._pool.acquire() as conn, conn.transaction():
            user_id = await self._use_token(conn, token, "verify")
            row = await conn.fetchrow(
                "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1 RETURNING *",
                user_id,
            )
        assert row is not None
        return _user(row)

    async def resend_verification(self, email: str) -> None:
        row = await self._pool.fetchrow(
            "SELECT id, email FROM users WHERE email = $1 AND email_verified_at IS NULL", normalise_email(email)
        )
        if row is not None:
            await self._send_token(row["id"], row["email"], "verify")

    # --- login, refresh, logout --------------------------------------------------------------------------------
    async def _retry_after(self, where: str, email: str, address: str, limit: int) -> int | None:
        """Seconds until the oldest counted failure leaves the window, when ``limit`` is reached; else None.
        ``where`` is a fixed condition on ``email`` ($1) and/or ``address`` ($2)."""
        window = self._auth.login_window_s
        rows = await self._pool.fetch(
            f"SELECT at FROM login_attempts WHERE {where} AND NOT success"  # noqa: S608 - fixed conditions
            " AND at > now() - make_interval(secs => $3) ORDER BY at DESC LIMIT $4",
            email, address, float(window), limit,
        )
        if len(rows) < limit:
            return None
        oldest: datetime = rows[-1]["at"]
        remaining = (oldest + timedelta(seconds=window) - datetime.now(UTC)).total_seconds()
        return max(1, math.ceil(remaining))

    async def _check_login_limits(self, email: str, address: str, *, own: int = 0) -> None:
        """429 when the failures counted in the window reach the limits (``own``: this attempt's own row, already
        recorded as a failure, is among them). The tight limit is per (account, address): a guesser backs off
        without locking the owner out from another address (issue 10 D14); the per-account ceiling is much higher."""
        for by, where, limit in (
            ("account_address", "email = $1 AND address = $2", self._auth.login_max_failures_per_account_address),
            ("address", "$1::text IS NOT NULL AND address = $2", self._auth.login_max_failures_per_address),
            ("account", "email = $1 AND $2::text IS NOT NULL", self._auth.login_max_failures_per_account),
        ):
            wait = await self._retry_after(where, email, address, limit + own)
            if wait is not None:
                log.warning("login rate-limited", extra={"by": by, "address": address})
                raise LoginRateLimitedError("too many failed logins; try again later", wait)

    async def _begin_attempt(self, email: str, address: str) -> int:
        """Record a password attempt as a failure *before* the password is checked, then check the limits again
        with it: concurrent guesses each see the others' rows, so at most the limit of them get to guess.
        Returns the attempt's id (mark it a success when the password is right); raises the 429."""
        await self._check_login_limits(email, address)
        attempt: int = await self._pool.fetchval(
            "INSERT INTO login_attempts (email, address, success) VALUES ($1, $2, false) RETURNING id",
            email, address,
        )
        try:
            await self._check_login_limits(email, address, own=1)
        except LoginRateLimitedError:
            await self._pool.execute("DELETE FROM login_attempts WHERE id = $1", attempt)
            raise
        return attempt

    async def login(self, email: str, password: str, address: str) -> Session:
        email = normalise_email(email)
        attempt = await self._begin_attempt(email, address)
        row = await self._pool.fetchrow("SELECT * FROM users WHERE email = $1", email)
        if row is None:
            await burn_check(password, self._auth.password_bcrypt_cost)
            ok = False
        else:
            ok = await check_secret(password, row["password_hash"]) and row["disabled_at"] is None
        if ok:
            await self._pool.execute("UPDATE login_attempts SET success = true WHERE id = $1", attempt)
        if not ok or row is None:
            raise InvalidCredentialsError("wrong e-mail address or password")
        if self._auth.require_verified_email and row["email_verified_at"] is None:
            raise EmailNotVerifiedError("verify your e-mail address first")
        user = _user(row)
        return await self._new_session(self._pool, user, uuid.uuid4())

    async def _new_session(self, conn: asyncpg.Pool | asyncpg.Connection, user: User, family: UUID) -> Session:
        refresh = new_token()
        expires = datetime.now(UTC) + timedelta(seconds=self._auth.refresh_ttl_s)
        await conn.execute(
            "INSERT INTO refresh_tokens (token_hash, user_id, family_id, expires_at) VALUES ($1, $2, $3, $4)",
            token_hash(refresh), user.id, family, expires,
        )
        access, access_exp = self._tokens.issue(user.id, user.role, session=family)
        return Session(access, access_exp, refresh, expires, user)

    async def refresh(self, refresh_token: str) -> Session:
        invalid = InvalidRefreshTokenError("refresh token is invalid, expired or revoked")
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                row = await conn.fetchrow(
                    "SELECT t.*, u.disabled_at FROM refresh_tokens t JOIN users u ON u.id = t.user_id"
                    " WHERE t.token_hash = $1 FOR UPDATE OF t",
                    token_hash(refresh_token),
                )
                if row is None:
                    raise invalid
                if row["revoked_at"] is None and row["expires_at"] > datetime.now(UTC) and row["disabled_at"] is None:
                    await conn.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = $1",
                                       row["token_hash"])
                    urow = await conn.fetchrow("SELECT * FROM users WHERE id = $1", row["user_id"])
                    assert urow is not None
                    return await self._new_session(conn, _user(urow), row["family_id"])
            if row["revoked_at"] is not None:
                # Reuse of a rotated token: end the whole session family.
                await conn.execute(
                    "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
                    row["family_id"],
                )
                await _announce(conn, Revocation("revoked", row["user_id"], row["family_id"]))
                log.warning("refresh token reuse; session family revoked", extra={"user_id": str(row["user_id"])})
        raise invalid

    async def logout(self, refresh_token: str) -> None:
        """Revoke the session (token family) the refresh token belongs to, and close its live sockets. Unknown
        tokens are ignored."""
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = $1",
                                      token_hash(refresh_token))
            if row is None:
                return
            await conn.execute(
                "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND family_id = $1",
                row["family_id"],
            )
            await _announce(conn, Revocation("revoked", row["user_id"], row["family_id"]))

    # --- passwords ---------------------------------------------------------------------------------------------
    async def change_password(self, user_id: UUID, current: str, new: str, *, address: str = "unknown") -> None:
        row = await self._pool.fetchrow("SELECT email, password_hash FROM users WHERE id = $1", user_id)
        if row is None:
            raise UnknownUserError("authentication required")
        # The current password is checked like a login (same limits, same record), so a stolen access token
        # cannot be used to guess it.
        attempt = await self._begin_attempt(row["email"], address)
        if not await check_secret(current, row["password_hash"]):
            raise WrongPasswordError("the current password is wrong")
        await self._pool.execute("UPDATE login_attempts SET success = true WHERE id = $1", attempt)
        self._check_password(new)
        await self._set_password(self._pool, user_id, new)

    async def _set_password(self, conn: asyncpg.Pool | asyncpg.Connection, user_id: UUID, new: str) -> None:
        pw_hash = await hash_secret(new, self._auth.password_bcrypt_cost)
        await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, pw_hash)
        # Every session ends: a changed password must lock out whoever knew the old one.
        await conn.execute("UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
                           user_id)
        await _announce(conn, Revocation("revoked", user_id))
        # ... and so does every reset link still in someone's mailbox.
        await conn.execute("UPDATE email_tokens SET used_at = now() WHERE user_id = $1 AND purpose = 'reset'"
                           " AND used_at IS NULL", user_id)

    async def request_reset(self, email: str) -> None:
        row = await self._pool.fetchrow("SELECT id, email FROM users WHERE email = $1", normalise_email(email))
        if row is not None:
            await self._send_token(row["id"], row["email"], "reset")

    async def reset_password(self, token: str, new: str) -> None:
        self._check_password(new)
        async with self._pool.acquire() as conn, conn.transaction():
            user_id = await self._use_token(conn, token, "reset")
            await self._set_password(conn, user_id, new)
            # Receiving the reset mail proves the address too.
            await conn.execute(
                "UPDATE users SET email_verified_at = coalesce(email_verified_at, now()) WHERE id = $1", user_id
            )

    # --- reads -------------------------------------------------------------------------------------------------
    async def get(self, user_id: UUID) -> User:
        row = await self._pool.fetchrow("SELECT * FROM users WHERE id = $1", user_id)
        if row is None:
            raise UserNotFoundError("no such user")
        return _user(row)

    async def list_users(self, limit: int, after: UUID | None) -> list[User]:
        rows = await self._pool.fetch(
            "SELECT * FROM users WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2", after, limit
        )
        return [_user(r) for r in rows]

    async def set_role(self, user_id: UUID, role: Role) -> User:
        async with self._pool.acquire() as conn, conn.transaction():
            if role is not Role.ADMIN:
                # Lock every admin row so two concurrent demotions cannot both see "another admin remains" (issue 10
                # D15).
                admins = await conn.fetch(
                    "SELECT id FROM users WHERE role = $1 ORDER BY id FOR UPDATE", Role.ADMIN.value
                )
                ids = {r["id"] for r in admins}
                if ids == {user_id}:
                    raise LastAdminError("the last admin account cannot lose its admin role")
            row = await conn.fetchrow("UPDATE users SET role = $2 WHERE id = $1 RETURNING *", user_id, role.value)
            if row is not None:
                await _announce(conn, Revocation("role", user_id, role=role.value))
        if row is None:
            raise UserNotFoundError("no such user")
        return _user(row)


async def _announce(conn: asyncpg.Pool | asyncpg.Connection, revocation: Revocation) -> None:
    """Tell every central process (live sockets) that sessions ended or a role changed; inside a transaction the
    notice goes out at commit."""
    await conn.execute("SELECT pg_notify($1, $2)", SESSIONS_CHANNEL, revocation.to_json())
