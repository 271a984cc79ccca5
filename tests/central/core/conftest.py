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

from central.config import CentralConfig, from_mapping


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
