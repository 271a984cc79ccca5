"""Fixtures for central core tests: a config pointing at the per-test database and private broker, and a running
app with an HTTP client."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from central.app import create_app
from central.config import CentralConfig, from_mapping
from central.http.roles import Role
from central.identity.context import IDENTITY


def make_config(pg_dsn: str, tmp_path: Path, broker: Any = None, **sections: dict[str, Any]) -> CentralConfig:
    raw: dict[str, Any] = {
        "database": {"dsn": pg_dsn, "pool_min": 1, "pool_max": 4},
        "mqtt": {"enabled": False} if broker is None else {"host": broker.host, "port": broker.port,
                                                          "reconnect_min_s": 0.5, "reconnect_max_s": 2.0},
        "auth": {"jwt_secret": secrets.token_urlsafe(48), "password_bcrypt_cost": 4},
        "mailer": {"kind": "dev", "dev_dir": str(tmp_path / "mail")},
        "log": {"access_log": False},
    }
    for name, table in sections.items():
        raw.setdefault(name, {}).update(table)
    return from_mapping(raw)


@pytest.fixture
def config_factory(pg_dsn: str, tmp_path: Path) -> Callable[..., CentralConfig]:
    def make(broker: Any = None, **sections: dict[str, Any]) -> CentralConfig:
        return make_config(pg_dsn, tmp_path, broker, **sections)

    return make


@pytest.fixture
async def client_factory() -> AsyncIterator[Callable[[web.Application], Any]]:
    clients: list[TestClient[web.Request, web.Application]] = []

    async def make(app: web.Application) -> TestClient[web.Request, web.Application]:
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for c in reversed(clients):
        await c.close()


class Api:
    """A running central app (identity plug-in) with a test client and helpers to make logged-in users."""

    def __init__(self, app: web.Application, client: TestClient[web.Request, web.Application]) -> None:
        self.app = app
        self.client = client
        self._n = 0

    async def user(self, role: str, *, password: str = "correct horse battery") -> tuple[str, str]:
        """Create a verified user with ``role``; returns (email, access token)."""
        self._n += 1
        email = f"{role}{self._n}-{secrets.token_hex(3)}@example.org"
        await self.app[IDENTITY].accounts.create_user(email, password, Role(role), verified=True)
        r = await self.client.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status == 200, await r.text()
        return email, (await r.json())["access_token"]

    async def token(self, role: str) -> str:
        return (await self.user(role))[1]


@pytest.fixture
async def api_factory(config_factory, client_factory) -> Callable[..., Any]:  # type: ignore[no-untyped-def]
    async def make(broker: Any = None, **sections: dict[str, Any]) -> Api:
        app = create_app(config_factory(broker, **sections), plugins=["central.identity.plugin"])
        client = await client_factory(app)
        return Api(app, client)

    return make
