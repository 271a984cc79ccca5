"""Shared fixtures: private real services for each test that needs them.

- ``broker`` / ``broker_factory``: a real Mosquitto on a free 127.0.0.1 port, started from the Debian binary with a
  temporary config and stopped by its PID afterwards. Private brokers keep concurrent test runs from seeing each
  other's traffic and let outage tests stop and restart "the" broker.
- ``pg_dsn``: a private PostgreSQL database on 127.0.0.1:5432 for one test with every migration applied, cloned
  (``CREATE DATABASE … TEMPLATE``) from a template migrated once per migration set, dropped afterwards.
- ``empty_pg_dsn``: a private, empty database for the tests of the migration runner itself (and of schemas applied by
  hand), dropped afterwards.

The template is named ``gtx_tpl_<hash of the migration files>``: a changed, added or removed migration gives a new
template; concurrent runs and pytest-xdist workers build it once, under a PostgreSQL advisory lock, under a temporary
name renamed when complete, so nobody ever clones a half-migrated template.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import asyncpg
import pytest
from hypothesis import settings

from central.db.migrations import MIGRATIONS_DIR, migrate_dsn
from tests.services import Broker, free_port

# Tests never assert on wall-clock time, Hypothesis's per-example deadline included: on a loaded machine (two cores,
# eight workers) a 200 ms deadline fails examples that took 17 ms a moment later ("unreliable test timings").
settings.register_profile("gridtokenx", deadline=None)
settings.load_profile("gridtokenx")

# -- How `make test` spreads the suite over the cores (pytest-xdist `--dist loadgroup --no-loadscope-reorder`) --------
#
# Every test of a file runs in one worker (as with `--dist loadfile`), so module-level state stays together: each
# file is one xdist group, named after the file. A file marked ``pytest.mark.spread`` (its tests share nothing) is not
# grouped: its tests may run on different workers at the same time. Files with a slow test are handed out first, so the
# long ones start at once instead of being left for the end on one core; the many short files fill the gaps.


def _has_slow(item: pytest.Item) -> bool:
    return item.get_closest_marker("slow") is not None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's worker turns the xdist_group marks into scopes
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    slow_files = {item.path for item in items if _has_slow(item)}
    for item in items:
        if item.get_closest_marker("spread") is None and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))
    items.sort(key=lambda item: item.path not in slow_files)  # stable: collection order within each part


PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_ADMIN_USER = os.environ.get("GTX_TEST_PG_USER", "postgres")


@pytest.fixture
def broker_factory() -> Iterator[type[Broker] | object]:
    started: list[Broker] = []
    dirs: list[tempfile.TemporaryDirectory[str]] = []

    def make() -> Broker:
        d = tempfile.TemporaryDirectory(prefix="gtx-mqtt-")
        dirs.append(d)
        b = Broker(port=free_port(), workdir=Path(d.name))
        b.start()
        started.append(b)
        return b

    yield make
    for b in started:
        b.stop()
    for d in dirs:
        d.cleanup()


@pytest.fixture
def broker(broker_factory: object) -> Broker:
    return broker_factory()  # type: ignore[operator,no-any-return]


def _psql(sql: str, db: str = "postgres") -> None:
    subprocess.run(
        ["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", PG_ADMIN_USER, "-d", db, "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        capture_output=True,
    )


def pg_url(db: str) -> str:
    return f"postgresql://{PG_ADMIN_USER}@{PG_HOST}:{PG_PORT}/{db}"


#: Advisory-lock key held while a template is built (any constant; only the test runs take it).
_TEMPLATE_LOCK = 0x67747874706C  # "gtxtpl"


def template_name() -> str:
    """``gtx_tpl_`` + a hash of every migration file's name and content."""
    h = hashlib.sha256()
    for f in sorted(MIGRATIONS_DIR.glob("*.sql")):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return f"gtx_tpl_{h.hexdigest()[:16]}"


async def _ensure_template(name: str) -> None:
    admin = await asyncpg.connect(pg_url("postgres"))
    exists = "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)"
    try:
        if await admin.fetchval(exists, name):
            return
        await admin.execute("SELECT pg_advisory_lock($1)", _TEMPLATE_LOCK)
        try:
            if await admin.fetchval(exists, name):
                return  # another run or worker built it while we waited
            # Builds happen only under this lock: a half-built one left now is from a run that was killed.
            for row in await admin.fetch("SELECT datname FROM pg_database WHERE datname LIKE 'gtx\\_tplb\\_%'"):
                await admin.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
            building = f"gtx_tplb_{uuid.uuid4().hex[:16]}"
            await admin.execute(f'CREATE DATABASE "{building}"')
            try:
                await migrate_dsn(pg_url(building))
                await admin.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
            except BaseException:
                await admin.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
                raise
        finally:
            await admin.execute("SELECT pg_advisory_unlock($1)", _TEMPLATE_LOCK)
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def pg_template() -> str:
    """The name of the migrated template database (built on first use; kept for the next run)."""
    name = template_name()
    # In a thread: a session fixture may be set up while an event loop runs.
    with ThreadPoolExecutor(1) as ex:
        ex.submit(asyncio.run, _ensure_template(name)).result()
    return name


class _Databases:
    """This process's private test databases: a clone of the template is made ahead, while the previous test runs (a
    clone costs a WAL-logged copy), and every database is dropped behind, in background threads, while the next tests
    run (a drop costs a checkpoint; concurrent drops share one). ``close()`` at the end of the session waits for every
    drop and drops the spare clone: nothing is left behind."""

    def __init__(self) -> None:
        self._maker = ThreadPoolExecutor(1, thread_name_prefix="gtx-db-clone")
        self._dropper = ThreadPoolExecutor(4, thread_name_prefix="gtx-db-drop")
        self._drops: list[Future[None]] = []
        self._spare: Future[str] | None = None

    def _create(self, template: str | None) -> str:
        name = f"gtx_t_{uuid.uuid4().hex[:16]}"
        _psql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
        return name

    def clone(self, template: str) -> str:
        spare = self._spare or self._maker.submit(self._create, template)
        self._spare = self._maker.submit(self._create, template)
        return spare.result()

    def empty(self) -> str:
        return self._create(None)

    def drop(self, name: str) -> None:
        self._drops.append(self._dropper.submit(_psql, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def close(self) -> None:
        if self._spare is not None:
            self.drop(self._spare.result())
        self._maker.shutdown()
        self._dropper.shutdown()
        for drop in self._drops:
            drop.result()  # a failed drop fails the session


@pytest.fixture(scope="session")
def _databases() -> Iterator[_Databases]:
    dbs = _Databases()
    try:
        yield dbs
    finally:
        dbs.close()


@pytest.fixture
def pg_dsn(pg_template: str, _databases: _Databases) -> Iterator[str]:
    """A private database with every migration applied (a clone of the template), dropped afterwards."""
    name = _databases.clone(pg_template)
    try:
        yield pg_url(name)
    finally:
        _databases.drop(name)


@pytest.fixture
def empty_pg_dsn(_databases: _Databases) -> Iterator[str]:
    """A private, empty database (no migrations), dropped afterwards (connections terminated first)."""
    name = _databases.empty()
    try:
        yield pg_url(name)
    finally:
        _databases.drop(name)
