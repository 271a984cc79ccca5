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
import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import pytest

from central.db.migrations import MIGRATIONS_DIR, migrate_dsn

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_ADMIN_USER = os.environ.get("GTX_TEST_PG_USER", "postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(host: str, port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing answers on {host}:{port}")


@dataclass
class Broker:
    """A private Mosquitto process. ``stop()``/``start()`` simulate an outage on the same port."""

    port: int
    workdir: Path
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            "max_queued_messages 0\n"
            "max_inflight_messages 0\n"
            "log_dest none\n"
        )
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.host, self.port)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


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


def _private_db(template: str | None) -> Iterator[str]:
    name = f"gtx_t_{uuid.uuid4().hex[:16]}"
    _psql(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield pg_url(name)
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_dsn(pg_template: str) -> Iterator[str]:
    """A private database with every migration applied (a clone of the template), dropped afterwards."""
    yield from _private_db(pg_template)


@pytest.fixture
def empty_pg_dsn() -> Iterator[str]:
    """A private, empty database (no migrations), dropped afterwards (connections terminated first)."""
    yield from _private_db(None)
