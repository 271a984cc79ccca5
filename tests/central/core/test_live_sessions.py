"""Issue 10 D8: live WebSocket sessions must not outlive their token, their login, the password or the role.

Real app (identity + readings subsystems, PostgreSQL), real WebSocket client; two app instances on one database show
that a revocation reaches the sockets of every central process (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from central.app import create_app
from central.http.context import SERVICES
from central.http.middleware import TOKENS
from central.http.roles import Role
from central.readings.live import CLOSE_UNAUTHENTICATED
from central.wiring import identity as identity_wiring
from central.wiring import readings as readings_wiring

PASSWORD = "correct horse battery"
#: The wire protocol's close code for "your role changed" (``central.readings.live.CLOSE_ROLE_CHANGED``).
CLOSE_ROLE_CHANGED = 4403
SUBSYSTEMS = (identity_wiring.SUBSYSTEM, readings_wiring.SUBSYSTEM)


async def _instance(config_factory: Any, client_factory: Any, config: Any = None) -> TestClient[Any, Any]:
    cfg = config if config is not None else config_factory()
    client: TestClient[Any, Any] = await client_factory(create_app(cfg, subsystems=SUBSYSTEMS))
    return client


async def _login(client: TestClient[Any, Any], role: Role = Role.PROSUMER) -> tuple[str, dict[str, Any]]:
    email = f"live-{time.monotonic_ns()}@example.org"
    await client.app[SERVICES].identity.accounts.create_user(email, PASSWORD, role, verified=True)
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status == 200, await r.text()
    return email, await r.json()


async def _socket(client: TestClient[Any, Any], token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await client.ws_connect("/api/v1/live")
    await ws.send_json({"type": "auth", "token": token})
    assert (await ws.receive_json(timeout=5))["type"] == "ready"
    await ws.send_json({"type": "subscribe", "channel": "readings"})
    assert (await ws.receive_json(timeout=5))["type"] == "subscribed"
    return ws


async def _closed_with(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """The close code the server sent (events before it are skipped)."""
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type == aiohttp.WSMsgType.CLOSE:
            return int(msg.data)
        if msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return ws.close_code


async def _refused(client: TestClient[Any, Any], token: str) -> bool:
    async with client.ws_connect("/api/v1/live") as ws:
        await ws.send_json({"type": "auth", "token": token})
        first = await ws.receive_json(timeout=5)
        return bool(first.get("code") == "unauthorized" and await _closed_with(ws) == CLOSE_UNAUTHENTICATED)


async def test_logout_closes_the_sessions_sockets_on_every_instance(config_factory, client_factory) -> None:
    cfg = config_factory()
    a = await _instance(config_factory, client_factory, cfg)
    b = await _instance(config_factory, client_factory, cfg)
    _, pair = await _login(a)
    _, other = await _login(a)
    ws_b = await _socket(b, pair["access_token"])
    ws_other = await _socket(b, other["access_token"])
    r = await a.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert r.status == 204
    assert await _closed_with(ws_b) == CLOSE_UNAUTHENTICATED
    assert await _refused(b, pair["access_token"]), "the logged-out token cannot open a new socket either"
    # Someone else's socket is untouched.
    await ws_other.send_json({"type": "unsubscribe", "channel": "readings"})
    assert (await ws_other.receive_json(timeout=5))["type"] == "unsubscribed"
    await ws_other.close()


async def test_password_change_closes_every_socket_of_the_user(config_factory, client_factory) -> None:
    client = await _instance(config_factory, client_factory)
    _, pair = await _login(client)
    r = await client.post("/api/v1/auth/login", json={"email": pair["user"]["email"], "password": PASSWORD})
    second = await r.json()
    sockets = [await _socket(client, pair["access_token"]), await _socket(client, second["access_token"])]
    r = await client.post("/api/v1/auth/password", headers={"Authorization": f"Bearer {pair['access_token']}"},
                          json={"current_password": PASSWORD, "new_password": "a brand new password"})
    assert r.status == 204, await r.text()
    assert [await _closed_with(ws) for ws in sockets] == [CLOSE_UNAUTHENTICATED] * 2


async def test_role_change_closes_the_socket_with_4403(config_factory, client_factory) -> None:
    client = await _instance(config_factory, client_factory)
    _, admin = await _login(client, Role.ADMIN)
    _, pair = await _login(client)
    ws = await _socket(client, pair["access_token"])
    r = await client.put(f"/api/v1/admin/users/{pair['user']['id']}/role", json={"role": "consumer"},
                         headers={"Authorization": f"Bearer {admin['access_token']}"})
    assert r.status == 200, await r.text()
    assert await _closed_with(ws) == CLOSE_ROLE_CHANGED
    assert await _refused(client, pair["access_token"]), "a token with the old role cannot open a new socket"


async def test_socket_closes_when_its_token_expires_unless_renewed_in_band(config_factory, client_factory) -> None:
    client = await _instance(config_factory, client_factory)
    _, pair = await _login(client)
    tokens = client.app[TOKENS]
    user = pair["user"]["id"]

    def short_lived() -> str:
        # A token issued long enough ago that it has about one second left.
        token, _ = tokens.issue(uuid.UUID(user), Role.PROSUMER, now=time.time() - tokens.ttl_s + 1)
        return token

    ws = await _socket(client, short_lived())
    assert await _closed_with(ws) == CLOSE_UNAUTHENTICATED

    ws = await _socket(client, short_lived())
    await ws.send_json({"type": "auth", "token": pair["access_token"]})
    assert (await ws.receive_json(timeout=5))["type"] == "ready"
    await asyncio.sleep(2.5)  # past the first token's expiry
    await ws.send_json({"type": "unsubscribe", "channel": "readings"})
    assert (await ws.receive_json(timeout=5))["type"] == "unsubscribed", "the renewed socket stays open"
    await ws.close()
