"""Accounts against real PostgreSQL: registration, e-mail verification, login limits, token rotation, passwords."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from central.http.context import CONFIG, SERVICES
from central.http.roles import Role
from central.identity.mailer import read_dev_mail
from central.observability.logs import JsonFormatter


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}

PASSWORD = "a long enough password"


async def _register(api, email: str, role: str = "prosumer") -> None:
    r = await api.client.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD, "role": role})
    assert r.status == 202, await r.text()
    assert await r.json() == {"status": "accepted"}


def _mail_token(api, email: str, kind: str) -> str:
    mails = read_dev_mail(api.app[CONFIG].mailer.dev_dir, to=email, kind=kind)
    assert mails, f"no {kind} mail for {email}"
    assert mails[-1].token in mails[-1].body
    return mails[-1].token


async def test_register_verify_login_me(api_factory) -> None:
    api = await api_factory()
    await _register(api, "Ada@Example.org")

    r = await api.client.post("/api/v1/auth/login", json={"email": "ada@example.org", "password": PASSWORD})
    assert r.status == 403
    assert (await r.json())["error"]["code"] == "email_not_verified"

    token = _mail_token(api, "ada@example.org", "verify")
    r = await api.client.post("/api/v1/auth/verify-email", json={"token": token})
    assert r.status == 200
    user = await r.json()
    assert user["email"] == "ada@example.org"
    assert user["role"] == "prosumer"
    assert user["email_verified"] is True
    assert "password" not in json.dumps(user)
    r = await api.client.post("/api/v1/auth/verify-email", json={"token": token})
    assert r.status == 400, "verification tokens are single use"

    r = await api.client.post("/api/v1/auth/login", json={"email": "ADA@example.org", "password": PASSWORD})
    assert r.status == 200
    pair = await r.json()
    assert pair["token_type"] == "Bearer"
    r = await api.client.get("/api/v1/me", headers=bearer(pair["access_token"]))
    assert (await r.json())["id"] == user["id"]

    r = await api.client.post("/api/v1/auth/register", json={"email": "ada@example.org", "password": PASSWORD})
    assert r.status == 202, "an existing address gets the same answer as a new one (issue 10 D9)"
    r = await api.client.post("/api/v1/auth/register", json={"email": "x@example.org", "password": PASSWORD,
                                                            "role": "admin"})
    assert r.status == 403
    r = await api.client.post("/api/v1/auth/register", json={"email": "x@example.org", "password": PASSWORD,
                                                            "role": "installer"})
    assert r.status == 403, "installer accounts are handed out by admins unless the operator opts in"
    r = await api.client.post("/api/v1/auth/register", json={"email": "y@example.org", "password": "short"})
    assert r.status == 400
    assert (await r.json())["error"]["code"] == "weak_password"


async def test_login_is_rate_limited_per_account_and_per_address(api_factory) -> None:
    api = await api_factory(auth={"login_max_failures_per_account": 3, "login_max_failures_per_address": 5})
    email, _ = await api.user("consumer", password=PASSWORD)
    for _ in range(3):
        r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": "wrong password!"})
        assert r.status == 401
        assert (await r.json())["error"]["code"] == "invalid_credentials"
    r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status == 429, "even the right password is refused while the account is locked"
    assert 1 <= int(r.headers["Retry-After"]) <= 900
    # Per address: failures against other (unknown) accounts from the same address add up.
    for i in range(2):
        r = await api.client.post("/api/v1/auth/login", json={"email": f"nobody{i}@example.org", "password": "x"})
        assert r.status == 401
    other = "other@example.org"
    await api.app[SERVICES].identity.accounts.create_user(other, PASSWORD, Role.CONSUMER, verified=True)
    r = await api.client.post("/api/v1/auth/login", json={"email": other, "password": PASSWORD})
    assert r.status == 429
    assert "Retry-After" in r.headers


async def test_refresh_rotates_and_reuse_revokes_the_family(api_factory) -> None:
    api = await api_factory()
    email, _ = await api.user("consumer", password=PASSWORD)
    pair = await (await api.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
    r = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status == 200
    second = await r.json()
    assert second["refresh_token"] != pair["refresh_token"]
    # Replaying the first (rotated) token fails and ends the session: the second one dies too.
    r = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status == 401
    r = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert r.status == 401
    assert (await r.json())["error"]["code"] == "invalid_refresh_token"


async def test_logout_revokes_refresh_token(api_factory) -> None:
    api = await api_factory()
    email, _ = await api.user("consumer", password=PASSWORD)
    pair = await (await api.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
    r = await api.client.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert r.status == 204
    r = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status == 401


async def test_concurrent_refresh_yields_one_session(api_factory) -> None:
    api = await api_factory()
    email, _ = await api.user("consumer", password=PASSWORD)
    pair = await (await api.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
    results = await asyncio.gather(*(
        api.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}) for _ in range(4)
    ))
    assert sorted(r.status for r in results) == [200, 401, 401, 401]


async def test_password_change_and_reset(api_factory) -> None:
    api = await api_factory()
    email, access = await api.user("prosumer", password=PASSWORD)
    pair = await (await api.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})).json()
    r = await api.client.post("/api/v1/auth/password", headers=bearer(access),
                              json={"current_password": "not it at all", "new_password": "another long one"})
    assert r.status == 400
    r = await api.client.post("/api/v1/auth/password", headers=bearer(access),
                              json={"current_password": PASSWORD, "new_password": "another long one"})
    assert r.status == 204
    r = await api.client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status == 401, "a password change ends existing sessions"
    r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": "another long one"})
    assert r.status == 200

    r = await api.client.post("/api/v1/auth/password-reset/request", json={"email": email})
    assert r.status == 202
    r = await api.client.post("/api/v1/auth/password-reset/request", json={"email": "ghost@example.org"})
    assert r.status == 202, "same answer for unknown addresses"
    await api.mailed()
    token = _mail_token(api, email, "reset")
    r = await api.client.post("/api/v1/auth/password-reset/confirm",
                              json={"token": token, "new_password": "third pw!!"})
    assert r.status == 204
    r = await api.client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "x" * 12})
    assert r.status == 400, "reset tokens are single use"
    r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": "third pw!!"})
    assert r.status == 200


async def test_logs_carry_no_secrets(api_factory, caplog: pytest.LogCaptureFixture) -> None:
    api = await api_factory()
    caplog.set_level(logging.DEBUG)
    await _register(api, "leak@example.org")
    token = _mail_token(api, "leak@example.org", "verify")
    await api.client.post("/api/v1/auth/verify-email", json={"token": token})
    r = await api.client.post("/api/v1/auth/login", json={"email": "leak@example.org", "password": PASSWORD})
    pair = await r.json()
    await api.client.post("/api/v1/auth/login", json={"email": "leak@example.org", "password": "wrong one here"})
    fmt = JsonFormatter()
    text = "\n".join(fmt.format(rec) for rec in caplog.records)
    assert text
    for secret in (PASSWORD, "wrong one here", token, pair["access_token"], pair["refresh_token"]):
        assert secret not in text


def test_json_formatter_redacts_secret_looking_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("gtx.test.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("auth header was Bearer abc.def.ghi", extra={"password": "p", "meter_key": "k",
                                                                    "refresh_token": "t", "serial": "S1"})
    finally:
        logger.removeHandler(handler)
    out = json.loads(stream.getvalue())
    assert out["password"] == out["meter_key"] == out["refresh_token"] == "[redacted]"
    assert out["serial"] == "S1"
    assert "abc.def.ghi" not in out["msg"]


async def test_reset_mails_are_limited_per_hour(api_factory) -> None:
    api = await api_factory()
    email, _ = await api.user("consumer", password=PASSWORD)
    for _ in range(8):
        r = await api.client.post("/api/v1/auth/password-reset/request", json={"email": email})
        assert r.status == 202
        await api.mailed()
    assert len(read_dev_mail(api.app[CONFIG].mailer.dev_dir, to=email, kind="reset")) == 5


async def test_register_answers_the_same_for_existing_addresses_and_is_rate_limited(api_factory) -> None:
    """Issue 10 D9: registering an address that has an account answered 409 ``email_taken`` (account enumeration) and
    nothing limited registrations. Now both answer 202 with the same body (the owner is mailed a notice), and the
    N+1th registration from one address within the hour gets 429."""
    api = await api_factory(identity={"register_max_per_address_per_hour": 3, "register_max_per_email_per_hour": 3})
    existing, _ = await api.user("consumer", password=PASSWORD)
    new = await api.client.post("/api/v1/auth/register", json={"email": "fresh@example.org", "password": PASSWORD})
    taken = await api.client.post("/api/v1/auth/register", json={"email": existing, "password": PASSWORD})
    assert (taken.status, await taken.read()) == (new.status, await new.read())
    assert new.status == 202
    dev_dir = api.app[CONFIG].mailer.dev_dir
    assert read_dev_mail(dev_dir, to="fresh@example.org", kind="verify")
    notices = read_dev_mail(dev_dir, to=existing, kind="account_exists")
    assert len(notices) == 1
    assert not notices[0].token, "the owner is told, with nothing to act on"
    assert not read_dev_mail(dev_dir, to=existing, kind="verify")

    r = await api.client.post("/api/v1/auth/register", json={"email": "third@example.org", "password": PASSWORD})
    assert r.status == 202
    r = await api.client.post("/api/v1/auth/register", json={"email": "fourth@example.org", "password": PASSWORD})
    assert r.status == 429
    assert 1 <= int(r.headers["Retry-After"]) <= 3600
    assert (await r.json())["error"]["code"] == "rate_limited"
    assert not read_dev_mail(dev_dir, to="fourth@example.org", kind="verify"), "a refused registration does nothing"


async def test_register_is_rate_limited_per_email_address(api_factory) -> None:
    """Issue 10 D9: one address cannot be used to flood its owner's inbox from many source addresses."""
    api = await api_factory(http={"trust_forwarded_for": True},
                            identity={"register_max_per_address_per_hour": 100, "register_max_per_email_per_hour": 2})
    statuses = []
    for i in range(3):
        r = await api.client.post("/api/v1/auth/register", json={"email": "victim@example.org", "password": PASSWORD},
                                  headers={"X-Forwarded-For": f"203.0.113.{i}"})
        statuses.append(r.status)
    assert statuses == [202, 202, 429]


async def test_failed_logins_from_one_address_do_not_lock_the_owner_out_elsewhere(api_factory) -> None:
    """Issue 10 D14: five wrong passwords from anywhere locked the account for 15 minutes, the owner included. The
    back-off is now per (account, address): the attacker's address is refused, the owner's is not."""
    api = await api_factory(http={"trust_forwarded_for": True})
    email, _ = await api.user("consumer", password=PASSWORD)
    attacker = {"X-Forwarded-For": "203.0.113.66"}
    statuses = []
    for i in range(7):
        r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": f"guess number {i}"},
                                  headers=attacker)
        statuses.append(r.status)
    assert statuses == [401] * 5 + [429] * 2
    r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}, headers=attacker)
    assert r.status == 429, "the guessing address stays refused, even with the right password"
    r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD},
                              headers={"X-Forwarded-For": "198.51.100.20"})
    assert r.status == 200, await r.text()


async def test_the_per_account_ceiling_still_stops_distributed_guessing(api_factory) -> None:
    api = await api_factory(http={"trust_forwarded_for": True}, auth={"login_max_failures_per_account": 4})
    email, _ = await api.user("consumer", password=PASSWORD)
    statuses = []
    for i in range(6):
        r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": "wrong password!"},
                                  headers={"X-Forwarded-For": f"203.0.113.{i}"})
        statuses.append(r.status)
    assert statuses == [401] * 4 + [429] * 2
