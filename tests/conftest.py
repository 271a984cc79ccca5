"""Shared fixtures: private real services for each test that needs them.

- ``broker`` / ``broker_factory``: a real Mosquitto on a free 127.0.0.1 port, started from the Debian binary with a
  temporary config and stopped by its PID afterwards. Private brokers keep concurrent test runs from seeing each
  other's traffic and let outage tests stop and restart "the" broker.
- ``pg_dsn``: a fresh PostgreSQL database on 127.0.0.1:5432 for one test, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

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


@pytest.fixture
def pg_dsn() -> Iterator[str]:
    """A fresh, empty database for one test (dropped afterwards, connections terminated first)."""
    name = f"gtx_t_{uuid.uuid4().hex[:16]}"
    _psql(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://{PG_ADMIN_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
