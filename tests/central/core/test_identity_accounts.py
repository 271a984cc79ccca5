"""The account rules on the in-memory store (no PostgreSQL): e-mail verification and reset tokens, the hourly mail
limit, registration and login limits with their wait, refresh-token rotation and reuse, the last admin. The same
service runs on PostgreSQL in test_accounts.py and test_admin.py."""

from __future__ import annotations

import asyncio
from uuid import UUID

import pytest

from central.config import AuthConfig, IdentityConfig
from central.http.roles import Role
from central.identity.errors import (
    EmailNotVerifiedError,
    InvalidCredentialsError,
    InvalidRefreshTokenError,
    InvalidTokenError,
    LastAdminError,
    LoginRateLimitedError,
    RegistrationRateLimitedError,
    RoleNotAllowedError,
    WeakPasswordError,
    WrongPasswordError,
)
from central.identity.mail import Mail
from central.identity.memory import MemoryAccountStore
from central.identity.users import MAILS_PER_HOUR, AccountService
from tests.central.clock import Clock

PASSWORD = "correct horse battery"


class Outbox:
    def __init__(self) -> None:
        self.sent: list[Mail] = []

    async def send(self, mail: Mail) -> None:
        self.sent.append(mail)

    def tokens(self, kind: str) -> list[str]:
        return [m.token for m in self.sent if m.kind == kind]


class SlowOutbox(Outbox):
    """A mail server that takes as long as the test says: ``entered`` is set when a message is being sent, the send
    completes when ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = asyncio.Event(), asyncio.Event()

    async def send(self, mail: Mail) -> None:
        self.entered.set()
        await self.release.wait()
        await super().send(mail)


class Tokens:
    def issue(self, user_id: UUID, role: Role, *, session: UUID | None = None) -> tuple[str, int]:
        return f"access:{user_id}:{role.value}:{session}", 0


class World:
    def __init__(self, mail: Outbox | None = None, **identity: int) -> None:
        self.clock = Clock()
        self.store = MemoryAccountStore(self.clock)
        self.mail = mail or Outbox()
        auth = AuthConfig(jwt_secret="x" * 32, password_bcrypt_cost=4)
        self.service = AccountService(self.store, auth, IdentityConfig(**identity),  # type: ignore[arg-type]
                                      Tokens(), self.mail, self.clock)


@pytest.fixture
def world() -> World:
    return World()


async def test_verification_token_is_single_use_and_expires(world: World) -> None:
    svc = world.service
    user = await svc.register("Ada@Example.org ", PASSWORD, Role.PROSUMER, "10.0.0.1")
    assert user is not None
    assert user.email == "ada@example.org"
    with pytest.raises(EmailNotVerifiedError):
        await svc.login("ada@example.org", PASSWORD, "10.0.0.1")
    [token] = world.mail.tokens("verify")
    assert token not in repr(world.mail.sent[0])
    assert (await svc.verify_email(token)).email_verified
    with pytest.raises(InvalidTokenError):
        await svc.verify_email(token)
    await svc.login("ada@example.org", PASSWORD, "10.0.0.1")

    late = await svc.register("bob@example.org", PASSWORD, Role.CONSUMER, "10.0.0.2")
    assert late is not None
    world.clock.advance(hours=25)
    with pytest.raises(InvalidTokenError):
        await svc.verify_email(world.mail.tokens("verify")[-1])


async def test_registration_rules(world: World) -> None:
    svc = world.service
    with pytest.raises(RoleNotAllowedError):
        await svc.register("i@example.org", PASSWORD, Role.INSTALLER)
    with pytest.raises(WeakPasswordError):
        await svc.register("i@example.org", "short", Role.CONSUMER)
    await svc.register("ada@example.org", PASSWORD, Role.CONSUMER, "10.0.0.1")
    # an existing address answers the same; its owner gets a notice without a token
    assert await svc.register("ada@example.org", PASSWORD, Role.CONSUMER, "10.0.0.1") is None
    assert [m.kind for m in world.mail.sent] == ["verify", "account_exists"]
    assert world.mail.sent[-1].token == ""


async def test_registrations_per_address_per_hour() -> None:
    world = World(register_max_per_address_per_hour=3)
    for i in range(3):
        await world.service.register(f"u{i}@example.org", PASSWORD, Role.CONSUMER, "10.0.0.1")
        world.clock.advance(minutes=10)
    with pytest.raises(RegistrationRateLimitedError) as refused:
        await world.service.register("u9@example.org", PASSWORD, Role.CONSUMER, "10.0.0.1")
    assert refused.value.retry_after_s == 30 * 60
    await world.service.register("u9@example.org", PASSWORD, Role.CONSUMER, "10.0.0.2")  # another address
    world.clock.advance(minutes=30, seconds=1)
    await world.service.register("u10@example.org", PASSWORD, Role.CONSUMER, "10.0.0.1")


async def test_reset_ends_sessions_and_burns_other_reset_links(world: World) -> None:
    svc = world.service
    await svc.create_user("ada@example.org", PASSWORD, Role.CONSUMER)  # not verified: the reset proves it
    await svc.request_reset("ADA@example.org")
    await svc.request_reset("ada@example.org")
    await svc.request_reset("nobody@example.org")  # answers the same, sends nothing
    await svc.settled()
    first, second = world.mail.tokens("reset")
    await svc.reset_password(second, "a new long password")
    with pytest.raises(InvalidTokenError):
        await svc.reset_password(first, "another long password")
    session = await svc.login("ada@example.org", "a new long password", "10.0.0.1")
    assert session.user.email_verified
    await svc.change_password(session.user.id, "a new long password", "third long password")
    with pytest.raises(InvalidRefreshTokenError):
        await svc.refresh(session.refresh_token)  # a changed password ends every session
    assert ("revoked", session.user.id, None, None) in world.store.notices


async def test_mails_per_hour(world: World) -> None:
    svc = world.service
    await svc.create_user("ada@example.org", PASSWORD, Role.CONSUMER)
    for _ in range(MAILS_PER_HOUR + 3):
        await svc.request_reset("ada@example.org")
        await svc.settled()
    assert len(world.mail.tokens("reset")) == MAILS_PER_HOUR
    world.clock.advance(hours=1, seconds=1)
    await svc.request_reset("ada@example.org")
    await svc.settled()
    assert len(world.mail.tokens("reset")) == MAILS_PER_HOUR + 1


async def test_login_limit_per_account_and_address_with_wait(world: World) -> None:
    svc = world.service
    await svc.create_user("ada@example.org", PASSWORD, Role.CONSUMER, verified=True)
    for _ in range(5):
        with pytest.raises(InvalidCredentialsError):
            await svc.login("ada@example.org", "wrong password!", "10.0.0.9")
        world.clock.advance(seconds=60)
    with pytest.raises(LoginRateLimitedError) as refused:
        await svc.login("ada@example.org", PASSWORD, "10.0.0.9")  # even the right password
    assert refused.value.retry_after_s == 900 - 5 * 60
    user = (await svc.login("ada@example.org", PASSWORD, "10.0.0.1")).user  # the owner, elsewhere, is not locked out
    with pytest.raises(WrongPasswordError):
        await svc.change_password(user.id, "not it at all", "whatever long", address="10.0.0.1")
    with pytest.raises(LoginRateLimitedError):  # a password change counts like a login (same limits)
        await svc.change_password(user.id, PASSWORD, "whatever long", address="10.0.0.9")


async def test_refresh_rotates_and_reuse_revokes_the_family(world: World) -> None:
    svc = world.service
    await svc.create_user("ada@example.org", PASSWORD, Role.CONSUMER, verified=True)
    first = await svc.login("ada@example.org", PASSWORD, "10.0.0.1")
    other = await svc.login("ada@example.org", PASSWORD, "10.0.0.2")  # another session (family)
    second = await svc.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    with pytest.raises(InvalidRefreshTokenError):
        await svc.refresh(first.refresh_token)  # reuse of a rotated token ...
    with pytest.raises(InvalidRefreshTokenError):
        await svc.refresh(second.refresh_token)  # ... ends its whole family
    await svc.refresh(other.refresh_token)  # but not the other session
    world.clock.advance(days=31)
    with pytest.raises(InvalidRefreshTokenError):
        await svc.refresh(other.refresh_token)


async def test_logout_and_disabled_accounts(world: World) -> None:
    svc = world.service
    user = await svc.create_user("ada@example.org", PASSWORD, Role.CONSUMER, verified=True)
    session = await svc.login("ada@example.org", PASSWORD, "10.0.0.1")
    await svc.logout(session.refresh_token)
    await svc.logout("unknown")
    with pytest.raises(InvalidRefreshTokenError):
        await svc.refresh(session.refresh_token)
    session = await svc.login("ada@example.org", PASSWORD, "10.0.0.1")
    world.store.disable(user.id)
    with pytest.raises(InvalidRefreshTokenError):
        await svc.refresh(session.refresh_token)
    with pytest.raises(InvalidCredentialsError):
        await svc.login("ada@example.org", PASSWORD, "10.0.0.1")


async def test_the_last_admin_keeps_the_role(world: World) -> None:
    svc = world.service
    root = await svc.create_user("root@example.org", PASSWORD, Role.ADMIN, verified=True)
    with pytest.raises(LastAdminError):
        await svc.set_role(root.id, Role.CONSUMER)
    other = await svc.create_user("ops@example.org", PASSWORD, Role.CONSUMER, verified=True)
    await svc.set_role(other.id, Role.ADMIN)
    assert (await svc.set_role(root.id, Role.CONSUMER)).role is Role.CONSUMER
    assert world.store.notices[-1] == ("role", root.id, None, Role.CONSUMER)


async def test_reset_and_verification_requests_answer_before_the_mail_server_does() -> None:
    """An anonymous reset (or resend-verification) request for an address with an account waited for the SMTP
    exchange, one for an unknown address did not: the answer's delay told who has an account. The request now
    returns before the lookup and the mail, whatever the address."""
    outbox = SlowOutbox()
    world = World(outbox)
    svc = world.service
    await svc.create_user("ada@example.org", PASSWORD, Role.CONSUMER)
    for request, kind in ((svc.request_reset, "reset"), (svc.resend_verification, "verify")):
        outbox.entered.clear()
        outbox.release.clear()
        answered = asyncio.create_task(request("ada@example.org"))
        await outbox.entered.wait()  # the mail server is busy with ada's message ...
        assert answered.done(), f"the {kind} request waited for the mail server"  # ... and she has her answer
        await answered
        outbox.release.set()
        await svc.settled()
        assert len(outbox.tokens(kind)) == 1
