"""Defects found in review: each test failed before its fix."""

from __future__ import annotations

import asyncio
import json
import socket
import stat
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from central.app import create_app
from central.config import load_config
from central.errors import ConfigError
from central.http import PUBLIC, Call, RouteTable
from central.http.context import CONFIG, POOL
from central.identity.mailer import DevMailer, Mail, read_dev_mail
from central.wiring import Subsystem
from protocol.challenge import sign_challenge
from protocol.keys import DeviceKey
from tests.central.core.support import Api
from tests.central.device import central_challenge, registration


async def _chunked(client: TestClient[web.Request, web.Application], path: str, chunks: list[bytes],
                   token: str) -> Any:
    async def gen() -> Any:
        for c in chunks:
            yield c
            await asyncio.sleep(0.05)

    return await client.post(path, data=gen(), headers={"Authorization": f"Bearer {token}",
                                                        "Content-Type": "application/json"})


async def test_body_sent_in_several_chunks_is_read_whole(api_factory) -> None:
    api: Api = await api_factory()
    token = await api.token("admin")
    body = json.dumps({"email": "chunky@example.org", "password": "correct horse battery",
                       "role": "consumer"}).encode()
    r = await _chunked(api.client, "/api/v1/admin/users", [body[:10], body[10:30], body[30:]], token)
    assert r.status == 201, await r.text()
    assert (await r.json())["email"] == "chunky@example.org"


async def test_deeply_nested_json_is_a_400_not_a_500(api_factory) -> None:
    api: Api = await api_factory()
    # 8,000 levels (16,000 bytes, inside the auth routes' 16 KiB body limit): far past json's recursion limit.
    r = await api.client.post("/api/v1/auth/login", data=b"[" * 8_000 + b"]" * 8_000,
                              headers={"Content-Type": "application/json"})
    assert r.status == 400, await r.text()
    assert (await r.json())["error"]["code"] == "malformed_json"


async def test_concurrent_wrong_logins_cannot_slip_past_the_account_limit(api_factory) -> None:
    """The failure count was read before the attempt was recorded: N parallel guesses all passed the check."""
    api: Api = await api_factory(auth={"login_max_failures_per_account": 3, "login_max_failures_per_address": 1000})
    email, _ = await api.user("consumer")

    async def guess(i: int) -> int:
        r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": f"wrong guess {i}"})
        return r.status

    statuses = await asyncio.gather(*(guess(i) for i in range(20)))
    assert statuses.count(401) <= 3, statuses
    assert set(statuses) <= {401, 429}


async def test_login_limit_is_not_bypassed_by_case_or_whitespace(api_factory) -> None:
    api: Api = await api_factory(auth={"login_max_failures_per_account": 2, "login_max_failures_per_address": 1000})
    email, _ = await api.user("consumer")
    variants = [email, email.upper(), email.title(), email.swapcase()]
    statuses = []
    for v in variants:
        r = await api.client.post("/api/v1/auth/login", json={"email": v, "password": "wrong password!"})
        statuses.append(r.status)
    assert statuses == [401, 401, 429, 429]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _meter(serial: str, key: str = "utility-key-0001") -> dict[str, Any]:
    return {"serial": serial, "model": "SDM630", "protocol": "modbus-tcp", "source": "solar", "meter_key": key}


async def _age_device(api: Api, device_id: str, seconds: int) -> None:
    await api.app[POOL].execute(
        "UPDATE devices SET created_at = created_at - make_interval(secs => $2) WHERE device_id = $1",
        device_id, float(seconds),
    )


async def test_never_verified_registration_does_not_squat_a_device_forever(api_factory) -> None:
    """An installer could register somebody else's device id (and its meter serials) and never verify it: the
    real installer got 409 forever. A stale pending registration is now taken over by a new one."""
    api: Api = await api_factory(identity={"pending_registration_ttl_s": 3600})
    squatter, real = await api.token("installer"), await api.token("installer")
    key = DeviceKey.generate()
    r = await api.client.post("/api/v1/devices", headers=_bearer(squatter),
                              json={**registration(key), "meters": [_meter("SQ-1"), _meter("REAL-1")]})
    assert r.status == 201
    # Fresh pending registration: still protected (the first installer gets its chance to verify).
    r = await api.client.post("/api/v1/devices", headers=_bearer(real),
                              json={**registration(key), "meters": [_meter("REAL-1")]})
    assert (r.status, (await r.json())["error"]["code"]) == (409, "device_exists")

    await _age_device(api, key.device_id, 3601)
    r = await api.client.post("/api/v1/devices", headers=_bearer(real),
                              json={**registration(key), "site_label": "roof",
                                    "meters": [_meter("REAL-1", "the-real-utility-key")]})
    assert r.status == 201, await r.text()
    body = await r.json()
    assert [m["serial"] for m in body["meters"]] == ["REAL-1"]
    assert (body["status"], body["site_label"]) == ("pending", "roof")
    # The squatter lost it; the real installer sees it and can run the challenge.
    assert (await api.client.get(f"/api/v1/devices/{key.device_id}", headers=_bearer(squatter))).status == 404
    raw = await (await api.client.get(f"/api/v1/devices/{key.device_id}/challenge", headers=_bearer(real))).read()
    ch = json.loads(central_challenge(raw, key.seed).to_json())
    sig = sign_challenge(key, bytes.fromhex(ch["nonce"]), ch["expires_ms"])
    r = await api.client.post(f"/api/v1/devices/{key.device_id}/challenge-response", headers=_bearer(real),
                              json={"nonce": ch["nonce"], "signature": sig.hex()})
    assert (await r.json())["status"] == "verified"
    events = await api.app[POOL].fetch("SELECT event FROM device_events WHERE device_id = $1 ORDER BY id",
                                       key.device_id)
    assert [e["event"] for e in events] == ["registered", "replaced", "verified"]
    # A verified device is never taken over, however old.
    await _age_device(api, key.device_id, 10 * 3600)
    r = await api.client.post("/api/v1/devices", headers=_bearer(squatter), json={**registration(key)})
    assert r.status == 409


async def test_stale_pending_device_does_not_squat_meter_serials(api_factory) -> None:
    api: Api = await api_factory(identity={"pending_registration_ttl_s": 3600})
    squatter, real = await api.token("installer"), await api.token("installer")
    fake, genuine = DeviceKey.generate(), DeviceKey.generate()
    r = await api.client.post("/api/v1/devices", headers=_bearer(squatter),
                              json={**registration(fake), "meters": [_meter("SERIAL-9")]})
    assert r.status == 201
    r = await api.client.post("/api/v1/devices", headers=_bearer(real),
                              json={**registration(genuine), "meters": [_meter("SERIAL-9")]})
    assert (r.status, (await r.json())["error"]["code"]) == (409, "serial_taken")
    await _age_device(api, fake.device_id, 3601)
    r = await api.client.post("/api/v1/devices", headers=_bearer(real),
                              json={**registration(genuine), "meters": [_meter("SERIAL-9")]})
    assert r.status == 201, await r.text()
    owner = await api.app[POOL].fetchval("SELECT device_id FROM meters WHERE serial = 'SERIAL-9'")
    assert owner == genuine.device_id


@dataclass(frozen=True)
class _Num:
    n: int
    text: str = ""
    at: datetime | None = None


_probe = RouteTable(tag="probe")


@_probe.post("/probe", access=PUBLIC, body=_Num, response=_Num, summary="store-like round trip")
async def _probe_handler(call: Call[_Num, None]) -> _Num:
    row = await call.app[POOL].fetchrow("SELECT $1::bigint AS n, $2::text AS text, $3::timestamptz AS at",
                                        call.body.n, call.body.text, call.body.at)
    return _Num(row["n"], row["text"], call.body.at)


@_probe.get("/probe/{name}", access=PUBLIC, response=_Num, summary="path parameter into the database")
async def _probe_path(call: Call[None, None]) -> _Num:
    row = await call.app[POOL].fetchrow("SELECT 1::bigint AS n, $1::text AS text", call.path("name"))
    return _Num(row["n"], row["text"])


@_probe.get("/probe-int/{n}", access=PUBLIC, response=_Num, summary="path integer into the database")
async def _probe_int(call: Call[None, None]) -> _Num:
    row = await call.app[POOL].fetchrow("SELECT $1::bigint AS n, '' AS text", int(call.path("n")))
    return _Num(row["n"], row["text"])


async def test_unconvertible_query_argument_is_a_400_without_echoing_it(config_factory, client_factory) -> None:
    """Handlers that parse a path integer themselves (market orders, mint keys) handed asyncpg a value outside
    int64: a 500. The error middleware now answers 400 ``invalid_input``, without the value."""
    app = create_app(config_factory(), subsystems=(Subsystem("probe", (_probe,)),))
    client = await client_factory(app)
    assert (await client.get("/probe-int/12")).status == 200
    r = await client.get("/probe-int/99999999999999999999")
    assert r.status == 400, await r.text()
    body = await r.json()
    assert body["error"]["code"] == "invalid_input"
    assert "99999" not in body["error"]["message"]


async def test_out_of_range_ints_nul_and_lone_surrogates_are_400s(config_factory, client_factory) -> None:
    app = create_app(config_factory(), subsystems=(Subsystem("probe", (_probe,)),))
    client = await client_factory(app)
    ok = await client.post("/probe", json={"n": 2**63 - 1, "text": "ünïcode ✓"})
    assert (ok.status, await ok.json()) == (200, {"n": 2**63 - 1, "text": "ünïcode ✓", "at": None})
    for body in ({"n": 2**63}, {"n": -(2**63) - 1}, {"n": 1, "text": "a\x00b"}):
        r = await client.post("/probe", json=body)
        assert r.status == 400, (body, await r.text())
    r = await client.post("/probe", data=b'{"n": 1, "text": "\\ud800"}', headers={"Content-Type": "application/json"})
    assert r.status == 400, await r.text()
    r = await client.get("/probe/a%00b")
    assert r.status == 404, await r.text()


async def test_nul_in_email_or_password_is_a_400(api_factory) -> None:
    api: Api = await api_factory()
    r = await api.client.post("/api/v1/auth/register", json={"email": "a\x00b@example.org",
                                                            "password": "correct horse battery"})
    assert r.status == 400, await r.text()
    email, _ = await api.user("consumer")
    r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": "correct\x00horse"})
    assert r.status == 400, await r.text()


async def test_password_change_cannot_be_used_to_guess_the_current_password(api_factory) -> None:
    """Whoever holds a (stolen, short-lived) access token could guess the current password through the change
    endpoint without limit, then change it. Wrong guesses there now count as failed logins of the account."""
    api: Api = await api_factory(auth={"login_max_failures_per_account": 3, "login_max_failures_per_address": 1000})
    email, token = await api.user("consumer")
    statuses = []
    for i in range(5):
        r = await api.client.post("/api/v1/auth/password", headers=_bearer(token),
                                  json={"current_password": f"guess number {i}", "new_password": "a new password 1"})
        statuses.append(r.status)
    assert statuses == [400, 400, 400, 429, 429]
    r = await api.client.post("/api/v1/auth/password", headers=_bearer(token),
                              json={"current_password": "correct horse battery", "new_password": "a new password 1"})
    assert r.status == 429
    r = await api.client.post("/api/v1/auth/login", json={"email": email, "password": "correct horse battery"})
    assert r.status == 429


def test_world_readable_jwt_secret_file_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    secret = tmp_path / "jwt"
    secret.write_text("k" * 48)
    secret.chmod(0o644)
    cfg = load_config(None, [f'auth.jwt_secret_file="{secret}"'])
    with pytest.raises(ConfigError, match="others") as info:
        cfg.auth.secret()
    assert "kkkk" not in str(info.value)
    secret.chmod(0o640)  # group-readable is refused too: one rule for every secret file (issue 10, D17)
    with pytest.raises(ConfigError, match=f"chmod 600 {secret}"):
        cfg.auth.secret()
    secret.chmod(0o600)
    assert cfg.auth.secret() == b"k" * 48


async def test_datetimes_at_the_ends_of_the_calendar_are_400s(config_factory, client_factory) -> None:
    """``0001-01-01T00:00:00+05:00`` parses, but converting it to UTC (as certificates and accounting do)
    overflowed: a 500 from the retirement route. Date-times must lie in 1970..9000 UTC."""
    app = create_app(config_factory(), subsystems=(Subsystem("probe", (_probe,)),))
    client = await client_factory(app)
    fine = datetime(2026, 11, 29, 12, tzinfo=timezone(timedelta(hours=7)))
    r = await client.post("/probe", json={"n": 1, "at": fine.isoformat()})
    assert r.status == 200
    assert datetime.fromisoformat((await r.json())["at"]) == fine
    for bad in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:00:00-05:00", "1969-12-31T23:59:59+00:00"):
        r = await client.post("/probe", json={"n": 1, "at": bad})
        assert r.status == 400, (bad, await r.text())


async def test_readyz_names_the_failing_check_but_not_its_error_text(config_factory, client_factory, caplog) -> None:
    """/readyz is public: a check's exception text (a DSN, an RPC URL with its API key, an internal address)
    must not reach anonymous callers; it goes to the log."""

    async def leaky() -> None:
        raise ConnectionError("cannot reach https://rpc.example/?api-key=sk_live_123 at 10.1.2.3")

    wired = Subsystem("leaky", ready_checks=lambda _services: {"ledger": leaky})
    app = create_app(config_factory(), subsystems=(wired,))
    client = await client_factory(app)
    r = await client.get("/readyz")
    assert r.status == 503
    body = await r.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["ledger"] == "failed: ConnectionError"
    assert "sk_live" not in await r.text()
    assert any("sk_live_123" in str(getattr(rec, "error", "")) for rec in caplog.records)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_mail_server_down_neither_fails_registration_nor_reveals_accounts(api_factory) -> None:
    """An SMTP failure used to be a 500 after the account was created (the retry then got 409) and, on a
    password-reset request, told an anonymous caller that the address has an account (unknown ones got 202)."""
    api: Api = await api_factory(mailer={"kind": "smtp", "smtp_port": _closed_port(), "smtp_timeout_s": 2.0})
    r = await api.client.post("/api/v1/auth/register", json={"email": "down@example.org",
                                                            "password": "correct horse battery"})
    assert r.status == 202, await r.text()
    for email in ("down@example.org", "nobody@example.org"):
        r = await api.client.post("/api/v1/auth/password-reset/request", json={"email": email})
        assert r.status == 202, await r.text()
        r = await api.client.post("/api/v1/auth/resend-verification", json={"email": email})
        assert r.status == 202, await r.text()


async def test_email_addresses_that_are_several_smtp_recipients_are_refused(api_factory) -> None:
    api: Api = await api_factory()
    for email in ("victim,me@evil.org", "<victim@corp.example>", "a\"b@example.org", "x@y.org;z@w.org"):
        r = await api.client.post("/api/v1/auth/register", json={"email": email, "password": "correct horse battery"})
        assert r.status == 400, (email, await r.text())
    r = await api.client.post("/api/v1/auth/register", json={"email": "Zoë.O'Neil+gtx@exämple.org",
                                                            "password": "correct horse battery"})
    assert r.status == 202, await r.text()


async def test_a_new_password_voids_every_outstanding_reset_token(api_factory) -> None:
    """A reset link mailed earlier kept working after the password was reset (or changed) another way."""
    api: Api = await api_factory()
    email, token = await api.user("consumer")
    for _ in range(2):
        r = await api.client.post("/api/v1/auth/password-reset/request", json={"email": email})
        assert r.status == 202
    await api.mailed()
    first, second = (m.token for m in read_dev_mail(api.app[CONFIG].mailer.dev_dir, to=email, kind="reset")[:2])
    r = await api.client.post("/api/v1/auth/password-reset/confirm",
                              json={"token": first, "new_password": "brand new password 1"})
    assert r.status == 204
    r = await api.client.post("/api/v1/auth/password-reset/confirm",
                              json={"token": second, "new_password": "attacker password 2"})
    assert (r.status, (await r.json())["error"]["code"]) == (400, "invalid_token")
    # A password change does the same.
    r = await api.client.post("/api/v1/auth/password-reset/request", json={"email": email})
    await api.mailed()
    third = next(m.token for m in read_dev_mail(api.app[CONFIG].mailer.dev_dir, to=email, kind="reset")
                 if m.token not in (first, second))
    r = await api.client.post("/api/v1/auth/password", headers=_bearer(token),
                              json={"current_password": "brand new password 1", "new_password": "another one 3x"})
    assert r.status == 204
    r = await api.client.post("/api/v1/auth/password-reset/confirm",
                              json={"token": third, "new_password": "attacker password 2"})
    assert r.status == 400


async def test_spoofed_forwarded_for_hops_do_not_reset_the_address_limit(api_factory) -> None:
    """Behind a proxy that appends to X-Forwarded-For, the first hop is whatever the client wrote: taking it let
    a client rotate addresses and escape the per-address login limit. The proxy's own hop (the last) counts."""
    api: Api = await api_factory(http={"trust_forwarded_for": True},
                                 auth={"login_max_failures_per_address": 2, "login_max_failures_per_account": 100})
    statuses = []
    for i in range(4):
        r = await api.client.post("/api/v1/auth/login", json={"email": f"who{i}@example.org", "password": "nope nope"},
                                  headers={"X-Forwarded-For": f"203.0.113.{i}, 198.51.100.7"})
        statuses.append(r.status)
    assert statuses == [401, 401, 429, 429]
    rows = await api.app[POOL].fetch("SELECT DISTINCT address FROM login_attempts")
    assert [r["address"] for r in rows] == ["198.51.100.7"]


async def test_dev_mailer_files_are_private_and_mail_reprs_hide_tokens(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The dev mailer (demo, tests) wrote verification/reset tokens into world-readable files."""
    mailer = DevMailer(tmp_path / "mail")
    await mailer.send(Mail(to="a@example.org", subject="s", body="link?token=SECRET123", kind="reset",
                           token="SECRET123"))
    (path,) = (tmp_path / "mail").glob("*.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "mail").stat().st_mode) == 0o700
    assert "SECRET123" not in repr(mailer.sent[0])
    assert read_dev_mail(tmp_path / "mail", kind="reset")[0].token == "SECRET123"
