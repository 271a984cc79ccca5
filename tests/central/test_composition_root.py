"""The composition root wires every subsystem: a package under ``central/`` with routes or background work that is
missing from ``central.app.SUBSYSTEMS`` fails here, and ``bootstrap`` builds every ``Services`` field."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import uuid
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

import central
import central.wiring
from central.app import SUBSYSTEMS, TOKENS, create_app
from central.bootstrap import Adapters, bootstrap
from central.errors import Unavailable
from central.http.auth import TokenCodec
from central.http.context import SERVICES
from central.http.roles import Role
from central.http.routes import RouteTable
from central.identity.mailer import build_mailer
from central.services import Services
from central.wiring import Subsystem, certificates, market, minting, readings, wallets
from tests.central.app_env import make_config, running_app

CENTRAL = Path(central.__file__).parent


def _wiring_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(central.wiring.__path__))


def test_every_wiring_module_is_listed_in_the_root() -> None:
    listed = {s.name for s in SUBSYSTEMS}
    for name in _wiring_modules():
        module = importlib.import_module(f"central.wiring.{name}")
        assert isinstance(module.SUBSYSTEM, Subsystem), name
        assert module.SUBSYSTEM in SUBSYSTEMS, f"central.wiring.{name} is not in central.app.SUBSYSTEMS"
    assert len(listed) == len(SUBSYSTEMS)


def test_every_route_table_is_wired() -> None:
    """Each module-level RouteTable of a subsystem package is served by the app (``http.system``'s by the root)."""
    wired = {id(table) for s in SUBSYSTEMS for table in s.routes}
    missing = []
    for info in pkgutil.walk_packages([str(CENTRAL)], prefix="central."):
        if info.name.startswith(("central.http", "central.wiring", "central.app")):
            continue
        module = importlib.import_module(info.name)
        tables = [v for k, v in vars(module).items() if isinstance(v, RouteTable) and not k.startswith("_")]
        missing += [info.name for t in tables if id(t) not in wired and getattr(t, "routes", None)]
    assert sorted(set(missing)) == []


def test_every_subsystem_package_has_a_services_field_and_a_wiring() -> None:
    fields = {f.name for f in dataclasses.fields(Services)}
    platform = {"http", "db", "observability", "wiring", "chain"}  # shared layers, not subsystems
    packages = {p.name for p in CENTRAL.iterdir() if (p / "__init__.py").exists() and p.name not in platform}
    assert packages <= fields, packages - fields
    assert packages == set(_wiring_modules())


class _FakePool:
    """Construction only: bootstrap must not touch the database."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"bootstrap used the pool ({name})")


def test_bootstrap_builds_every_field(tmp_path: Path) -> None:
    config = make_config("postgresql://nobody@127.0.0.1:1/none", tmp_path)
    services = bootstrap(config, Adapters(
        pool=_FakePool(),  # type: ignore[arg-type]
        mqtt=None, ledger=None, mailer=build_mailer(config.mailer), signer=None, tokens=TokenCodec(config.auth),
    ))
    for f in dataclasses.fields(Services):
        assert getattr(services, f.name) is not None or f.name in {"mqtt", "signer"}, f.name
    # Without a ledger the chain-backed services are decided once, here, as Unavailable values.
    assert isinstance(services.market.market, Unavailable)
    assert isinstance(services.certificates, Unavailable)
    assert isinstance(services.wallets.chain, Unavailable)
    assert isinstance(services.minting.outbox, Unavailable)
    assert isinstance(services.ingest, Unavailable)  # no MQTT


def test_app_serves_the_routes_of_every_wired_subsystem(tmp_path: Path) -> None:
    app = create_app(make_config("postgresql://nobody@127.0.0.1:1/none", tmp_path))
    served = {(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None}
    for subsystem in SUBSYSTEMS:
        for table in subsystem.routes:
            for route in table.routes:
                assert (route.method, route.path) in served, (subsystem.name, route.path)


async def test_without_a_ledger_the_chain_backed_routes_answer_503_in_one_place(pg_dsn: str, tmp_path: Path) -> None:
    """No ledger wired: bootstrap leaves market, certificates, the wallet chain and the mint outbox Unavailable, and
    the error middleware answers each with 503 and the code it always had."""
    wired = (market.SUBSYSTEM, certificates.SUBSYSTEM, minting.SUBSYSTEM, wallets.SUBSYSTEM)
    client = TestClient(TestServer(create_app(make_config(pg_dsn, tmp_path), subsystems=wired)))
    await client.start_server()
    try:
        admin = {"Authorization": f"Bearer {client.app[TOKENS].issue(uuid.uuid4(), Role.ADMIN)[0]}"}
        expected = [
            ("GET", "/api/v1/market/book", None, "unavailable"),
            ("GET", "/api/v1/certificates", admin, "ledger_unavailable"),
            ("GET", "/api/v1/admin/mints/problems", admin, "ledger_unavailable"),
        ]
        for method, path, headers, code in expected:
            r = await client.request(method, path, headers=headers)
            assert r.status == 503, (path, await r.text())
            assert (await r.json())["error"]["code"] == code, path
    finally:
        await client.close()


async def test_bulk_reads_have_a_pool_of_their_own_with_generic_plans(pg_dsn: str, tmp_path: Path) -> None:
    """central/db/pool.py: the readings API's statements run on the primary's bulk pool (generic plans), everything
    else on the main pool (plans chosen per call, the session reset on every release)."""
    async with running_app(make_config(pg_dsn, tmp_path), (readings.SUBSYSTEM,)) as client:
        services = client.app[SERVICES]
        reads = services.readings.reads
        assert reads.replica is None
        assert reads.primary is not services.pool
        assert await reads.bulk() is reads.primary
        assert await reads.primary.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
        assert await services.pool.fetchval("SHOW plan_cache_mode") == "auto"
        assert reads.primary.get_max_size() == make_config(pg_dsn, tmp_path).database.bulk_pool_max
