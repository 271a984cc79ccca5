"""Fixtures for central core tests: a config pointing at the per-test database and private broker, a running app
with an HTTP client, and gateway stand-ins (their classes are in ``support.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from central.app import create_app
from central.config import CentralConfig
from central.wiring import identity as identity_wiring
from tests.central.app_env import make_config
from tests.central.core.support import Api, TestDevice


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


@pytest.fixture
async def api_factory(config_factory, client_factory) -> Callable[..., Any]:  # type: ignore[no-untyped-def]
    async def make(broker: Any = None, **sections: dict[str, Any]) -> Api:
        app = create_app(config_factory(broker, **sections), subsystems=(identity_wiring.SUBSYSTEM,))
        client = await client_factory(app)
        return Api(app, client)

    return make


@pytest.fixture
def gateway_factory(broker: Any) -> Iterator[Callable[..., TestDevice]]:
    made: list[TestDevice] = []

    def make(key: Any = None) -> TestDevice:
        d = TestDevice(broker, key)
        d.start()
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()
