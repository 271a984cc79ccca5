"""HTTP routes for accounts: register, verify e-mail, login, refresh, logout, password change and reset, me, and
admin user management."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from central.http import ANY_USER, PUBLIC, Call, Role, RouteTable, meta, roles
from central.identity.http_errors import ERRORS
from central.identity.model import Session, User

routes = RouteTable(tag="accounts", error_map=ERRORS)

_EMAIL = meta(max_length=254, format="email", example="ada@example.org")
_PASSWORD = meta(min_length=1, max_length=1024, write_only=True)
_TOKEN = meta(min_length=1, max_length=200, write_only=True)


@dataclass(frozen=True)
class UserOut:
    id: UUID
    email: str
    role: Role
    email_verified: bool
    created_at: datetime


def user_out(u: User) -> UserOut:
    return UserOut(u.id, u.email, u.role, u.email_verified, u.created_at)


@dataclass(frozen=True)
class RegisterIn:
    """Self-service registration: consumer or prosumer (installer only where the operator allows it). A
    verification e-mail is sent."""

    email: str = field(metadata=_EMAIL)
    password: str = field(metadata=_PASSWORD)
    role: Role = Role.CONSUMER


@dataclass(frozen=True)
class TokenIn:
    token: str = field(metadata=_TOKEN)


@dataclass(frozen=True)
class EmailIn:
    email: str = field(metadata=_EMAIL)


@dataclass(frozen=True)
class LoginIn:
    email: str = field(metadata=_EMAIL)
    password: str = field(metadata=_PASSWORD)


@dataclass(frozen=True)
class RefreshIn:
    refresh_token: str = field(metadata=_TOKEN)


@dataclass(frozen=True)
class TokenPair:
    """``access_token`` is a short-lived JWT for ``Authorization: Bearer``; ``refresh_token`` is single use and
    rotates on every refresh."""

    access_token: str
    token_type: str
    expires_in: int
    expires_at: int
    refresh_token: str
    refresh_expires_at: datetime
    user: UserOut


@dataclass(frozen=True)
class PasswordChangeIn:
    current_password: str = field(metadata=_PASSWORD)
    new_password: str = field(metadata=_PASSWORD)


@dataclass(frozen=True)
class PasswordResetIn:
    token: str = field(metadata=_TOKEN)
    new_password: str = field(metadata=_PASSWORD)


@dataclass(frozen=True)
class Accepted:
    status: str = "accepted"


@dataclass(frozen=True)
class CreateUserIn:
    email: str = field(metadata=_EMAIL)
    password: str = field(metadata=_PASSWORD)
    role: Role = Role.CONSUMER


@dataclass(frozen=True)
class RoleIn:
    role: Role


@dataclass(frozen=True)
class UserPage:
    limit: int = field(default=100, metadata=meta(minimum=1, maximum=1000))
    after: UUID | None = None


def _pair(s: Session, ttl: int) -> TokenPair:
    return TokenPair(s.access_token, "Bearer", ttl, s.access_expires_at, s.refresh_token, s.refresh_expires_at,
                     user_out(s.user))


@routes.post("/api/v1/auth/register", access=PUBLIC, body=RegisterIn, response=Accepted, status=202,
             errors=(403, 429),
             summary="Create an account and send the verification e-mail (answers the same whether or not the "
                     "address already has an account: its owner is mailed a notice instead; rate-limited per "
                     "address and per e-mail address)")
async def register(call: Call[RegisterIn, None]) -> Accepted:
    b = call.body
    await call.services.identity.accounts.register(b.email, b.password, b.role, call.address)
    return Accepted()


@routes.post("/api/v1/auth/verify-email", access=PUBLIC, body=TokenIn, response=UserOut,
             summary="Verify the e-mail address with the single-use token from the verification e-mail")
async def verify_email(call: Call[TokenIn, None]) -> UserOut:
    return user_out(await call.services.identity.accounts.verify_email(call.body.token))


@routes.post("/api/v1/auth/resend-verification", access=PUBLIC, body=EmailIn, response=Accepted, status=202,
             summary="Send a new verification e-mail (answers the same whether or not the address exists)")
async def resend_verification(call: Call[EmailIn, None]) -> Accepted:
    await call.services.identity.accounts.resend_verification(call.body.email)
    return Accepted()


@routes.post("/api/v1/auth/login", access=PUBLIC, body=LoginIn, response=TokenPair, errors=(401, 403, 429),
             summary="Log in: access token + refresh token (rate-limited per account and per address)")
async def login(call: Call[LoginIn, None]) -> TokenPair:
    session = await call.services.identity.accounts.login(call.body.email, call.body.password, call.address,
                                                          call.user_agent)
    return _pair(session, call.services.tokens.ttl_s)


@routes.post("/api/v1/auth/refresh", access=PUBLIC, body=RefreshIn, response=TokenPair, errors=(401,),
             summary="Exchange a refresh token for a new pair (the old refresh token is revoked)")
async def refresh(call: Call[RefreshIn, None]) -> TokenPair:
    session = await call.services.identity.accounts.refresh(call.body.refresh_token)
    return _pair(session, call.services.tokens.ttl_s)


@routes.post("/api/v1/auth/logout", access=PUBLIC, body=RefreshIn, status=204,
             summary="End the session the refresh token belongs to")
async def logout(call: Call[RefreshIn, None]) -> None:
    await call.services.identity.accounts.logout(call.body.refresh_token)


@routes.post("/api/v1/auth/password", access=ANY_USER, body=PasswordChangeIn, status=204, errors=(429,),
             summary="Change my password (ends all my sessions)")
async def change_password(call: Call[PasswordChangeIn, None]) -> None:
    await call.services.identity.accounts.change_password(call.user.user_id, call.body.current_password,
                                                      call.body.new_password, address=call.address)


@routes.post("/api/v1/auth/password-reset/request", access=PUBLIC, body=EmailIn, response=Accepted, status=202,
             summary="E-mail a password-reset token (answers the same whether or not the address exists)")
async def request_reset(call: Call[EmailIn, None]) -> Accepted:
    await call.services.identity.accounts.request_reset(call.body.email)
    return Accepted()


@routes.post("/api/v1/auth/password-reset/confirm", access=PUBLIC, body=PasswordResetIn, status=204,
             summary="Set a new password with the single-use reset token (ends all sessions)")
async def confirm_reset(call: Call[PasswordResetIn, None]) -> None:
    await call.services.identity.accounts.reset_password(call.body.token, call.body.new_password)


@routes.get("/api/v1/me", access=ANY_USER, response=UserOut, errors=(404,), summary="My account")
async def me(call: Call[None, None]) -> UserOut:
    return user_out(await call.services.identity.accounts.get(call.user.user_id))


@routes.get("/api/v1/admin/users", access=roles(Role.ADMIN), query=UserPage, response=list[UserOut],
            summary="List accounts (cursor: the last id of the previous page)")
async def list_users(call: Call[None, UserPage]) -> list[UserOut]:
    users = await call.services.identity.accounts.list_users(call.query.limit, call.query.after)
    return [user_out(u) for u in users]


@routes.post("/api/v1/admin/users", access=roles(Role.ADMIN), body=CreateUserIn, response=UserOut, status=201,
             errors=(409,), summary="Create an account with any role (e-mail marked verified)")
async def create_user(call: Call[CreateUserIn, None]) -> UserOut:
    b = call.body
    return user_out(await call.services.identity.accounts.create_user(b.email, b.password, b.role, verified=True))


@routes.put("/api/v1/admin/users/{user_id}/role", access=roles(Role.ADMIN), body=RoleIn, response=UserOut,
            errors=(404, 409), summary="Change an account's role (effective from its next token refresh)")
async def set_role(call: Call[RoleIn, None]) -> UserOut:
    return user_out(await call.services.identity.accounts.set_role(call.path_uuid("user_id"), call.body.role))
