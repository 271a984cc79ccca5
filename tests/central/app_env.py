"""Test helper shared by the central tests that run the real app: a config on the per-test database (and private
broker, if given) and a running app with a test client."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from central.app import MQTT, create_app
from central.config import CentralConfig, from_mapping
from central.errors import require
from central.http import Role
from central.http.context import SERVICES
from central.identity.cli import create_user
from central.ledger.runtime import LedgerRuntime
from central.ledger.setup import LedgerSetup
from central.wiring import Subsystem
from tests.central.device import write_signing_key

PASSWORD = "correct horse battery"


def make_config(pg_dsn: str, tmp_path: Path, mqtt_broker: Any = None, /, **sections: dict[str, Any]) -> CentralConfig:
    """Every section a test needs set to private, fast values; ``sections`` update them table by table (the
    ``[broker]`` table too: the private broker to connect to is the positional ``mqtt_broker``)."""
    broker = mqtt_broker
    raw: dict[str, Any] = {
        "database": {"dsn": pg_dsn, "pool_min": 1, "pool_max": 6},
        # Central's signing key (protocol v1.1) also signs HTTP challenges, so it is set with or without a broker.
        "mqtt": {"signing_key_file": write_signing_key(tmp_path / "signing"), **(
            {"enabled": False} if broker is None else {"host": broker.host, "port": broker.port,
                                                       "reconnect_min_s": 0.5, "reconnect_max_s": 2.0})},
        "auth": {"jwt_secret": secrets.token_urlsafe(48), "password_bcrypt_cost": 4},
        "mailer": {"kind": "dev", "dev_dir": str(tmp_path / "mail")},
        "log": {"access_log": False},
        # Tests log in and call from one address at machine speed: the per-worker buckets (central/http/ratelimit.py)
        # are tested on their own (tests/central/test_http_hardening.py), off elsewhere.
        "http": {"rate_limit": {"enabled": False}},
        # The ledger's state and JSON-RPC port stay private to this test.
        "ledger": {"data_dir": str(tmp_path / "ledger"), "keys_dir": str(tmp_path / "keys"), "rpc_port": 0},
        "archive": {"directory": str(tmp_path / "archive")},
    }
    for name, table in sections.items():
        raw.setdefault(name, {}).update(table)
    return from_mapping(raw)


@asynccontextmanager
async def running_app(
    config: CentralConfig, subsystems: Sequence[Subsystem]
) -> AsyncIterator[TestClient[Any, Any]]:
    """The app with ``subsystems``, served on a free port; with MQTT enabled, entered once connected to the broker."""
    app = create_app(config, subsystems=subsystems)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        if config.mqtt.enabled:
            await app[MQTT].wait_connected(10)
        yield client
    finally:
        await client.close()


async def login(central: TestClient[Any, Any], config: CentralConfig, email: str, role: Role) -> dict[str, str]:
    """A verified user made with the ``create-user`` CLI path; returns the Authorization header of its login."""
    await create_user(config, email, role, PASSWORD)
    resp = await central.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['access_token']}"}


def ledger_of(app: web.Application) -> LedgerRuntime:
    """The running app's ledger (its ``Ledger`` port, platform setup, config and JSON-RPC URL)."""
    return require(app[SERVICES].ledger)


def setup_of(app: web.Application) -> LedgerSetup:
    """The running app's platform setup (the app was started with ``ledger.create_keys``)."""
    setup = ledger_of(app).setup
    assert setup is not None, "ledger not initialised"
    return setup
