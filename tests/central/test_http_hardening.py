"""HTTP hardening against the real app: security headers on every response, CORS from the allow-list, body and rate
limits per route class, and an audit row for every admin / REC-authority action (issue 14)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from central.app import SUBSYSTEMS
from central.config import RateClass
from central.errors import ConfigError
from central.http.ratelimit import TOKEN_ROUTES, TokenBuckets, route_class
from central.http.roles import Role
from central.http.routes import Route
from central.wiring import identity
from tests.central.app_env import PASSWORD, login, make_config, running_app

API_CSP = "default-src 'none'; frame-ancestors 'none'"
APP = "https://app.example.org"
AUDITED = {Role.ADMIN, Role.REC_AUTHORITY}
OWNER_ROLES = {Role.CONSUMER, Role.PROSUMER}


def _assert_hardened(headers: Any) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]


async def test_security_headers_on_every_response(pg_dsn: str, tmp_path: Path) -> None:
    config = make_config(pg_dsn, tmp_path)
    async with running_app(config, (identity.SUBSYSTEM,)) as central:
        for path, status in (("/healthz", 200), ("/api/v1/me", 401), ("/nowhere", 404), ("/api/openapi.json", 200)):
            resp = await central.get(path)
            assert resp.status == status, path
            _assert_hardened(resp.headers)
            assert resp.headers["Content-Security-Policy"] == API_CSP, path
            assert "Strict-Transport-Security" not in resp.headers  # plain HTTP, no proxy trusted
            assert "Access-Control-Allow-Origin" not in resp.headers
        # A page with its own policy keeps it (the web app's SPA does the same for its HTML).
        docs = await central.get("/api/docs")
        _assert_hardened(docs.headers)
        assert "script-src 'sha256-" in docs.headers["Content-Security-Policy"]
        # An untrusted proxy header does not switch HSTS on.
        resp = await central.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert "Strict-Transport-Security" not in resp.headers
        # No origin is allowed by default: a preflight is refused through the error shape.
        pre = await central.options("/api/v1/me", headers={"Origin": APP, "Access-Control-Request-Method": "GET"})
        assert pre.status == 403
        assert (await pre.json())["error"]["code"] == "cors_origin_not_allowed"


async def test_hsts_behind_tls(pg_dsn: str, tmp_path: Path) -> None:
    behind_proxy = make_config(pg_dsn, tmp_path, http={"trust_forwarded_for": True, "hsts_max_age_s": 600})
    async with running_app(behind_proxy, (identity.SUBSYSTEM,)) as central:
        resp = await central.get("/healthz", headers={"X-Forwarded-Proto": "https"})
        assert resp.headers["Strict-Transport-Security"] == "max-age=600; includeSubDomains"
        resp = await central.get("/healthz", headers={"X-Forwarded-Proto": "http"})
        assert "Strict-Transport-Security" not in resp.headers
    always = make_config(pg_dsn, tmp_path, http={"hsts": True})
    async with running_app(always, (identity.SUBSYSTEM,)) as central:
        resp = await central.get("/api/v1/me")
        assert resp.status == 401
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=31536000")


async def test_cors_allow_list(pg_dsn: str, tmp_path: Path) -> None:
    config = make_config(pg_dsn, tmp_path, http={"cors_origins": [APP]})
    async with running_app(config, (identity.SUBSYSTEM,)) as central:
        headers = await login(central, config, "cors@example.org", Role.CONSUMER)
        pre = await central.options("/api/v1/me", headers={
            "Origin": APP, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
        assert pre.status == 204
        assert pre.headers["Access-Control-Allow-Origin"] == APP
        assert pre.headers["Access-Control-Allow-Credentials"] == "true"
        assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]
        assert "PUT" in pre.headers["Access-Control-Allow-Methods"]
        resp = await central.get("/api/v1/me", headers={**headers, "Origin": APP})
        assert resp.status == 200
        assert resp.headers["Access-Control-Allow-Origin"] == APP
        assert resp.headers["Access-Control-Allow-Credentials"] == "true"
        assert "Origin" in resp.headers.getall("Vary")
        # Errors carry CORS too, so the page can read the error body.
        resp = await central.get("/api/v1/me", headers={"Origin": APP})
        assert resp.status == 401
        assert resp.headers["Access-Control-Allow-Origin"] == APP
        # Another origin: no CORS header (and no credentials), its preflight refused.
        evil = "https://evil.example.net"
        resp = await central.get("/api/v1/me", headers={**headers, "Origin": evil})
        assert "Access-Control-Allow-Origin" not in resp.headers
        assert "Access-Control-Allow-Credentials" not in resp.headers
        pre = await central.options("/api/v1/me", headers={"Origin": evil, "Access-Control-Request-Method": "GET"})
        assert pre.status == 403
        assert "Access-Control-Allow-Origin" not in pre.headers


async def test_cors_origins_are_validated(pg_dsn: str, tmp_path: Path) -> None:
    for bad in ("*", "https://app.example.org/", "app.example.org", "https://a.example.org/path"):
        with pytest.raises(ConfigError, match="cors_origins"):
            make_config(pg_dsn, tmp_path, http={"cors_origins": [bad]})


def test_token_bucket_refills_and_forgets() -> None:
    now = [0.0]
    buckets = TokenBuckets(RateClass(per_s=2.0, burst=3), max_keys=100, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0  # per key
    now[0] += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    many = TokenBuckets(RateClass(per_s=1.0, burst=1), max_keys=100, clock=lambda: now[0])
    for i in range(1_000):
        many.take(f"k{i}")
        now[0] += 0.001
    assert len(many) <= 100  # bounded memory under a flood of keys


def test_route_classes() -> None:
    routes = [r for s in SUBSYSTEMS for t in s.routes for r in t.routes]
    by_key = {(r.method, r.path): route_class(r) for r in routes}
    assert by_key[("POST", "/api/v1/auth/login")] == "auth"
    assert by_key[("POST", "/api/v1/auth/register")] == "auth"
    assert by_key[("POST", "/api/v1/auth/password-reset/request")] == "auth"
    # a token refresh or a log-out guesses nothing; many households share one carrier-grade NAT address
    for key in TOKEN_ROUTES:
        assert by_key[key] == "write", key
    assert by_key[("GET", "/api/v1/me")] == "read"
    assert by_key[("POST", "/api/v1/market/orders")] == "write"


async def test_rate_limits_per_class(pg_dsn: str, tmp_path: Path) -> None:
    slow = 0.01  # tokens per second: nothing refills during the test
    config = make_config(pg_dsn, tmp_path, http={"rate_limit": {
        "enabled": True, "auth": {"per_s": slow, "burst": 5}, "write": {"per_s": slow, "burst": 2},
        "read": {"per_s": slow, "burst": 4}}})
    async with running_app(config, (identity.SUBSYSTEM,)) as central:
        # auth: per client address, whichever account (two logins, then three wrong passwords)
        users = [await login(central, config, f"u{i}@example.org", Role.CONSUMER) for i in range(2)]
        wrong = [{"email": f"nobody{i}@example.org", "password": "wrong password"} for i in range(4)]
        assert [(await central.post("/api/v1/auth/login", json=b)).status for b in wrong[:3]] == [401] * 3
        resp = await central.post("/api/v1/auth/login", json=wrong[3])
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) >= 1
        assert (await resp.json())["error"]["code"] == "rate_limited"
        _assert_hardened(resp.headers)
        # writes: per user
        writes = [(await central.delete("/api/v1/meters/NO-SUCH/claim", headers=users[0])).status for _ in range(3)]
        assert writes[:2] != [429, 429]
        assert 429 not in writes[:2]
        assert writes[2] == 429
        assert (await central.delete("/api/v1/meters/NO-SUCH/claim", headers=users[1])).status != 429
        # reads: their own buckets, per user
        reads = [(await central.get("/api/v1/me", headers=users[0])).status for _ in range(5)]
        assert reads == [200] * 4 + [429]
        assert (await central.get("/api/v1/me", headers=users[1])).status == 200
        assert (await central.get("/healthz")).status == 200  # outside /api/: never limited


async def test_auth_routes_take_small_bodies(pg_dsn: str, tmp_path: Path) -> None:
    config = make_config(pg_dsn, tmp_path, http={"auth_max_body_bytes": 1024})
    async with running_app(config, (identity.SUBSYSTEM,)) as central:
        big = {"email": "a@example.org", "password": "p" * 2000}
        resp = await central.post("/api/v1/auth/login", json=big)
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "payload_too_large"
        small = {"email": "a@example.org", "password": "p" * 100}
        assert (await central.post("/api/v1/auth/login", json=small)).status == 401


async def test_web_asset_names_the_file_system_refuses_are_not_found(pg_dsn: str, tmp_path: Path) -> None:
    """``GET /assets/<a name longer than the file system allows>`` was a 500 (the lookup's OSError escaped)."""
    async with running_app(make_config(pg_dsn, tmp_path), ()) as central:
        for name in ("a" * 5000, "x" * 300 + ".js", "no-such-asset.js"):
            resp = await central.get(f"/assets/{name}")
            assert resp.status == 404, (name[:20], await resp.text())
            assert (await resp.json())["error"]["code"] == "not_found"


def _privileged_writes() -> list[Route]:
    """Every state-changing route an admin or a REC authority may call and meter owners may not (derived from the
    route table's access declarations: a new admin route joins this list by itself)."""
    routes = [r for s in SUBSYSTEMS for t in s.routes for r in t.routes]
    return [r for r in routes
            if not r.access.public and r.access.roles & AUDITED and not r.access.roles & OWNER_ROLES
            and r.method not in ("GET", "HEAD")]


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _m: str(uuid.uuid4()), path)


@pytest.mark.slow
async def test_every_admin_action_is_audited(pg_dsn: str, tmp_path: Path) -> None:
    privileged = _privileged_writes()
    listed = {(r.method, r.path) for r in privileged}
    # The list is derived, not typed in; these must be among it (users/roles, mint retry, devices, certificates,
    # faucet), so a change to the derivation that empties it fails here.
    for expected in (("PUT", "/api/v1/admin/users/{user_id}/role"), ("POST", "/api/v1/admin/users"),
                     ("POST", "/api/v1/admin/mints/{key}/retry"), ("POST", "/api/v1/devices/{device_id}/suspend"),
                     ("POST", "/api/v1/devices/{device_id}/revoke"), ("POST", "/api/v1/admin/faucet/quote")):
        assert expected in listed, expected
    assert any("certificates" in p and p.endswith("/revoke") for _m, p in listed), listed
    config = make_config(pg_dsn, tmp_path, ledger={"create_keys": True, "serve_rpc": False, "slot_ms": 20})
    async with running_app(config, SUBSYSTEMS) as central:
        admin = await login(central, config, "admin@example.org", Role.ADMIN)
        rec = await login(central, config, "rec@example.org", Role.REC_AUTHORITY)
        conn = await asyncpg.connect(pg_dsn)
        try:
            missing = []
            for route in privileged:
                who = admin if Role.ADMIN in route.access.roles else rec
                before = await conn.fetchval("SELECT count(*) FROM admin_audit WHERE method = $1 AND route = $2",
                                             route.method, route.path)
                resp = await central.request(route.method, _fill(route.path), json={}, headers=who)
                assert resp.status < 500 or resp.status == 503, (route.path, resp.status, await resp.text())
                row = await conn.fetchrow(
                    "SELECT status, actor_role, params FROM admin_audit WHERE method = $1 AND route = $2 "
                    "ORDER BY id DESC LIMIT 1", route.method, route.path)
                after = await conn.fetchval("SELECT count(*) FROM admin_audit WHERE method = $1 AND route = $2",
                                            route.method, route.path)
                if after != before + 1 or row is None or row["status"] != resp.status:
                    missing.append((route.method, route.path))
            assert not missing, f"admin actions without an audit row: {missing}"
            # A real action, end to end: the row names actor, target and outcome.
            created = await central.post("/api/v1/admin/users", headers=admin, json={
                "email": "inst@example.org", "password": PASSWORD, "role": "installer"})
            assert created.status == 201, await created.text()
            target = (await created.json())["id"]
            changed = await central.put(f"/api/v1/admin/users/{target}/role", headers=admin, json={"role": "prosumer"})
            assert changed.status == 200, await changed.text()
            row = await conn.fetchrow(
                "SELECT a.status, a.error_code, a.params, a.finished_at, u.email FROM admin_audit a "
                "JOIN users u ON u.id = a.actor_id WHERE a.route = '/api/v1/admin/users/{user_id}/role' "
                "ORDER BY a.id DESC LIMIT 1")
            assert row["status"] == 200
            assert row["error_code"] is None
            assert row["finished_at"] is not None
            assert row["email"] == "admin@example.org"
            assert target in row["params"]
            # Path parameters jsonb cannot hold (NUL, a lone surrogate) are stored replaced, never a 500.
            for raw in ("%00x", "%ED%A0%80"):
                odd = await central.post(f"/api/v1/devices/{raw}/suspend", json={"reason": "x"}, headers=admin)
                assert odd.status in (400, 404), await odd.text()
                assert await conn.fetchval("SELECT status FROM admin_audit ORDER BY id DESC LIMIT 1") == odd.status
            # Reads and owners' writes are not admin actions.
            assert (await central.get("/api/v1/admin/users", headers=admin)).status == 200
            assert await conn.fetchval("SELECT count(*) FROM admin_audit WHERE method = 'GET'") == 0
        finally:
            await conn.close()
