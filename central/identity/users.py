"""Accounts as pure rules over an ``AccountStore``: registration, e-mail verification, login (rate-limited per
account and per address), rotating refresh tokens, logout, password change and reset, roles.

Refresh tokens are random, stored as SHA-256, single use: each refresh revokes the presented token and issues the
next one of the same *family* (one login). Presenting an already-rotated token revokes the whole family (a stolen
token used after its owner — or vice versa — ends that session for both).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Literal
from uuid import UUID

from central.config import AuthConfig, IdentityConfig
from central.identity.claims import utc_now, wait_s
from central.identity.errors import (
    EmailNotVerifiedError,
    EmailTakenError,
    InvalidCredentialsError,
    InvalidRefreshTokenError,
    InvalidTokenError,
    LastAdminError,
    LoginRateLimitedError,
    MailError,
    RegistrationRateLimitedError,
    RoleNotAllowedError,
    SessionNotFoundError,
    UnknownUserError,
    UserNotFoundError,
    WeakPasswordError,
    WrongPasswordError,
)
from central.identity.hashing import burn_check, check_secret, hash_secret, new_token, token_hash
from central.identity.mail import Mail, Mailer
from central.identity.model import Session, SessionInfo, User
from central.identity.port import AccountOps, AccountStore, TokenIssuer
from central.roles import Role

log = logging.getLogger("central.identity.accounts")

SELF_SERVICE_ROLES = frozenset({Role.CONSUMER, Role.PROSUMER})
#: Verification / reset e-mails sent per account and purpose per hour.
MAILS_PER_HOUR = 5
HOUR = timedelta(hours=1)


def normalise_email(email: str) -> str:
    return email.strip().lower()


class AccountService:
    def __init__(self, store: AccountStore, auth: AuthConfig, identity: IdentityConfig, tokens: TokenIssuer,
                 mailer: Mailer, clock: Callable[[], datetime] = utc_now) -> None:
        self._store = store
        self._auth = auth
        self._identity = identity
        self._tokens = tokens
        self._mailer = mailer
        self._clock = clock
        #: Reset and verification requests still being looked up and mailed (see ``_in_background``).
        self._pending: set[asyncio.Task[None]] = set()

    # --- registration and verification -----------------------------------------------------------------------
    def _check_password(self, password: str) -> None:
        if len(password) < self._auth.min_password_length:
            raise WeakPasswordError(f"password must have at least {self._auth.min_password_length} characters")

    async def create_user(self, email: str, password: str, role: Role, *, verified: bool = False) -> User:
        """Create an account (no e-mail sent). ``verified`` marks the address verified (admin/CLI creation)."""
        self._check_password(password)
        pw_hash = await hash_secret(password, self._auth.password_bcrypt_cost)
        user = await self._store.insert_user(normalise_email(email), pw_hash, role, verified)
        log.info("user created", extra={"user_id": str(user.id), "role": role.value})
        return user

    async def register(self, email: str, password: str, role: Role, address: str = "unknown") -> User | None:
        """Self-service registration. The caller's answer must not depend on whether ``email`` has an account
        (issue 10 D9): a new account gets the verification mail; for an existing one the owner is mailed a notice
        instead and ``None`` is returned (the route answers the same either way). Limited per source address and per
        e-mail address (``RegistrationRateLimitedError``)."""
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
        """Record this registration attempt, then refuse it (its record removed) when the attempts of the last hour
        from ``address`` or for ``email`` exceed their limits. Recording first means concurrent attempts see each
        other."""
        attempt = await self._store.record_registration(email, address)
        limits: tuple[tuple[Literal["address", "email"], str, int], ...] = (
            ("address", address, self._identity.register_max_per_address_per_hour),
            ("email", email, self._identity.register_max_per_email_per_hour),
        )
        for by, value, limit in limits:
            recent = await self._store.recent_registrations(by, value, HOUR, limit + 1)
            if len(recent) > limit:
                await self._store.delete_registration(attempt)
                log.warning("registration rate-limited", extra={"by": by, "address": address})
                raise RegistrationRateLimitedError("too many registrations; try again later",
                                                   wait_s(recent[-1], HOUR, self._clock()))
        # Old records are useless to the limits: keep them few.
        await self._store.prune_registrations(timedelta(days=1))

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
        if await self._store.tokens_sent(user_id, purpose, HOUR) >= MAILS_PER_HOUR:
            # Nobody can flood an inbox through us; the caller's answer does not change (no enumeration).
            log.warning("e-mail token not sent: hourly limit", extra={"user_id": str(user_id), "purpose": purpose})
            return
        token = new_token()
        ttl = self._auth.verify_token_ttl_s if purpose == "verify" else self._auth.reset_token_ttl_s
        await self._store.add_token(token_hash(token), user_id, purpose, ttl)
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

    @staticmethod
    async def _use_token(tx: AccountOps, token: str, purpose: str) -> UUID:
        user_id = await tx.use_token(token_hash(token), purpose)
        if user_id is None:
            raise InvalidTokenError("the token is invalid, expired or already used")
        return user_id

    async def verify_email(self, token: str) -> User:
        async with self._store.transaction() as tx:
            user_id = await self._use_token(tx, token, "verify")
            return await tx.mark_verified(user_id)

    async def resend_verification(self, email: str) -> None:
        """Mail a new verification token to ``email`` if it has an unverified account, in the background (see
        ``_in_background``)."""
        self._in_background(self._resend_verification(normalise_email(email)), "verify")

    async def _resend_verification(self, email: str) -> None:
        found = await self._store.credentials(email)
        if found is not None and not found.user.email_verified:
            await self._send_token(found.user.id, found.user.email, "verify")

    def _in_background(self, work: Coroutine[None, None, None], purpose: str) -> None:
        """Run a request's account lookup and e-mail after its answer: the answer to an anonymous caller must not
        take longer when the address has an account (an SMTP exchange, up to ``mailer.smtp_timeout_s``, told them
        so). ``settled`` waits for these (shutdown, tests)."""

        async def run() -> None:
            try:
                await work
            except Exception:
                log.exception("e-mail request failed", extra={"purpose": purpose})

        task = asyncio.get_running_loop().create_task(run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settled(self) -> None:
        """Wait until every reset and verification request made so far has been looked up and mailed."""
        while self._pending:
            await asyncio.gather(*self._pending)

    # --- login, refresh, logout --------------------------------------------------------------------------------
    async def _check_login_limits(self, email: str, address: str, *, own: int = 0) -> None:
        """``LoginRateLimitedError`` when the failures counted in the window reach the limits (``own``: this
        attempt's own record, already a failure, is among them). The tight limit is per (account, address): a
        guesser backs off without locking the owner out from another address (issue 10 D14); the per-account
        ceiling is much higher."""
        window = timedelta(seconds=self._auth.login_window_s)
        limits: tuple[tuple[str, str | None, str | None, int], ...] = (
            ("account_address", email, address, self._auth.login_max_failures_per_account_address),
            ("address", None, address, self._auth.login_max_failures_per_address),
            ("account", email, None, self._auth.login_max_failures_per_account),
        )
        for by, by_email, by_address, limit in limits:
            failures = await self._store.recent_failures(by_email, by_address, window, limit + own)
            if len(failures) >= limit + own:
                log.warning("login rate-limited", extra={"by": by, "address": address})
                raise LoginRateLimitedError("too many failed logins; try again later",
                                            wait_s(failures[-1], window, self._clock()))

    async def _begin_attempt(self, email: str, address: str) -> int:
        """Record a password attempt as a failure *before* the password is checked, then check the limits again
        with it: concurrent guesses each see the others' records, so at most the limit of them get to guess.
        Returns the attempt's id (mark it a success when the password is right)."""
        await self._check_login_limits(email, address)
        attempt = await self._store.record_failure(email, address)
        try:
            await self._check_login_limits(email, address, own=1)
        except LoginRateLimitedError:
            await self._store.delete_attempt(attempt)
            raise
        return attempt

    async def login(self, email: str, password: str, address: str, user_agent: str = "") -> Session:
        email = normalise_email(email)
        attempt = await self._begin_attempt(email, address)
        found = await self._store.credentials(email)
        if found is None:
            await burn_check(password, self._auth.password_bcrypt_cost)
            ok = False
        else:
            ok = await check_secret(password, found.password_hash) and not found.disabled
        if ok:
            await self._store.mark_success(attempt)
        if not ok or found is None:
            raise InvalidCredentialsError("wrong e-mail address or password")
        if self._auth.require_verified_email and not found.user.email_verified:
            raise EmailNotVerifiedError("verify your e-mail address first")
        return await self._new_session(self._store, found.user, uuid.uuid4(), user_agent[:512])

    async def _new_session(self, tx: AccountOps, user: User, family: UUID, user_agent: str | None = None) -> Session:
        """``user_agent`` None: a rotation, the family keeps its login's."""
        refresh = new_token()
        expires = self._clock() + timedelta(seconds=self._auth.refresh_ttl_s)
        await tx.add_refresh(token_hash(refresh), user.id, family, expires, user_agent)
        access, access_exp = self._tokens.issue(user.id, user.role, session=family)
        return Session(access, access_exp, refresh, expires, user)

    async def refresh(self, refresh_token: str) -> Session:
        invalid = InvalidRefreshTokenError("refresh token is invalid, expired or revoked")
        hashed = token_hash(refresh_token)
        async with self._store.transaction() as tx:
            record = await tx.refresh_record(hashed)
            if record is None:
                raise invalid
            if not record.revoked and record.expires_at > self._clock() and not record.disabled:
                await tx.revoke_refresh(hashed)
                found = await tx.credentials_by_id(record.user_id)
                assert found is not None
                return await self._new_session(tx, found.user, record.family_id)
        if record.revoked:
            # Reuse of a rotated token: end the whole session family.
            await self._store.revoke_family(record.family_id)
            await self._store.announce("revoked", record.user_id, record.family_id)
            log.warning("refresh token reuse; session family revoked", extra={"user_id": str(record.user_id)})
        raise invalid

    async def logout(self, refresh_token: str) -> None:
        """Revoke the session (token family) the refresh token belongs to, and close its live sockets. Unknown
        tokens are ignored."""
        async with self._store.transaction() as tx:
            record = await tx.refresh_record(token_hash(refresh_token))
            if record is None:
                return
            await tx.revoke_family(record.family_id)
            await tx.announce("revoked", record.user_id, record.family_id)

    # --- active sessions (settings page) -------------------------------------------------------------------------
    async def sessions(self, user_id: UUID) -> list[SessionInfo]:
        """The user's active sessions (logins whose refresh token is neither revoked nor expired), last used first."""
        return await self._store.sessions(user_id, self._clock())

    async def end_session(self, user_id: UUID, session_id: UUID) -> None:
        """End one of the user's sessions (its refresh tokens revoked, its live sockets closed)."""
        async with self._store.transaction() as tx:
            if not await tx.revoke_user_family(user_id, session_id):
                raise SessionNotFoundError("no such active session")
            await tx.announce("revoked", user_id, session_id)

    async def end_all_sessions(self, user_id: UUID) -> None:
        """Log out everywhere: every session of the user ends, this one included."""
        async with self._store.transaction() as tx:
            await tx.revoke_user(user_id)
            await tx.announce("revoked", user_id)

    # --- passwords ---------------------------------------------------------------------------------------------
    async def change_password(self, user_id: UUID, current: str, new: str, *, address: str = "unknown") -> None:
        found = await self._store.credentials_by_id(user_id)
        if found is None:
            raise UnknownUserError("authentication required")
        # The current password is checked like a login (same limits, same record), so a stolen access token
        # cannot be used to guess it.
        attempt = await self._begin_attempt(found.user.email, address)
        if not await check_secret(current, found.password_hash):
            raise WrongPasswordError("the current password is wrong")
        await self._store.mark_success(attempt)
        self._check_password(new)
        await self._set_password(self._store, user_id, new)

    async def _set_password(self, tx: AccountOps, user_id: UUID, new: str) -> None:
        await tx.set_password_hash(user_id, await hash_secret(new, self._auth.password_bcrypt_cost))
        # Every session ends: a changed password must lock out whoever knew the old one.
        await tx.revoke_user(user_id)
        await tx.announce("revoked", user_id)
        # ... and so does every reset link still in someone's mailbox.
        await tx.burn_tokens(user_id, "reset")

    async def request_reset(self, email: str) -> None:
        """Mail a reset token to ``email`` if it has an account, in the background (see ``_in_background``)."""
        self._in_background(self._request_reset(normalise_email(email)), "reset")

    async def _request_reset(self, email: str) -> None:
        found = await self._store.credentials(email)
        if found is not None:
            await self._send_token(found.user.id, found.user.email, "reset")

    async def reset_password(self, token: str, new: str) -> None:
        self._check_password(new)
        async with self._store.transaction() as tx:
            user_id = await self._use_token(tx, token, "reset")
            await self._set_password(tx, user_id, new)
            # Receiving the reset mail proves the address too.
            await tx.mark_verified(user_id)

    # --- reads and roles ---------------------------------------------------------------------------------------
    async def get(self, user_id: UUID) -> User:
        found = await self._store.credentials_by_id(user_id)
        if found is None:
            raise UserNotFoundError("no such user")
        return found.user

    async def list_users(self, limit: int, after: UUID | None) -> list[User]:
        return await self._store.list_users(limit, after)

    async def set_role(self, user_id: UUID, role: Role) -> User:
        async with self._store.transaction() as tx:
            # Every admin is locked so two concurrent demotions cannot both see "another admin remains" (issue 10
            # D15).
            if role is not Role.ADMIN and await tx.admins() == {user_id}:
                raise LastAdminError("the last admin account cannot lose its admin role")
            user = await tx.set_role(user_id, role)
            if user is not None:
                await tx.announce("role", user_id, role=role)
        if user is None:
            raise UserNotFoundError("no such user")
        return user
