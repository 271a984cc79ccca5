"""Test helper: a PostgreSQL streaming-replication standby of the 127.0.0.1:5432 cluster (``pg_basebackup -R``) in a
temporary directory, on a free port, started with ``pg_ctl`` (as the ``postgres`` OS user when run as root) and
stopped by its postmaster's PID. Needs ``host replication all 127.0.0.1/32 trust`` in the primary's pg_hba.conf
(``.ci/services.sh`` adds it)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.services import free_port

BIN = Path(sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]) if Path("/usr/lib/postgresql").exists() else None


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextlib.contextmanager
def standby() -> Iterator[int]:
    """A hot standby replaying the primary, for the block; yields its port."""
    assert BIN is not None, "PostgreSQL server binaries not found under /usr/lib/postgresql"
    top = Path(tempfile.mkdtemp(prefix="gtx-standby-"))
    data, port = top / "data", free_port()
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(top, pw.pw_uid, pw.pw_gid)
    pid: int | None = None
    try:
        for attempt in range(3):  # other tests create and drop databases meanwhile: a backup may need a retry
            shutil.rmtree(data, ignore_errors=True)
            done = subprocess.run(
                _as_postgres([str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", "5432", "-U", "postgres",
                              "-D", str(data), "-R", "-X", "stream", "-c", "fast"]),
                check=False, capture_output=True, timeout=300, cwd=top)
            if done.returncode == 0:
                break
            assert attempt < 2, done.stderr.decode(errors="replace")[-2000:]
        (data / "postgresql.conf").write_text(
            f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{top}'\n"
            "hot_standby = on\nfsync = off\nshared_buffers = 16MB\nhot_standby_feedback = on\n" + _primary_limits())
        (data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        (data / "pg_ident.conf").write_text("")
        if os.geteuid() == 0:
            for f in ("postgresql.conf", "pg_hba.conf", "pg_ident.conf"):
                os.chown(data / f, pw.pw_uid, pw.pw_gid)
        started = subprocess.run(
            _as_postgres([str(BIN / "pg_ctl"), "-D", str(data), "-l", str(top / "log"), "-w", "-t", "60", "start"]),
            check=False, capture_output=True, timeout=90, cwd=top)
        if (data / "postmaster.pid").exists():
            pid = int((data / "postmaster.pid").read_text().split()[0])
        log = (top / "log").read_text(errors="replace") if (top / "log").exists() else ""
        assert started.returncode == 0, (started.stderr.decode(errors="replace"), log[-2000:])
        yield port
    finally:
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)  # fast shutdown
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.1)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(top, ignore_errors=True)


def _primary_limits() -> str:
    """The settings a standby must not set lower than its primary (else recovery refuses to start)."""
    names = ("max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions",
             "max_locks_per_transaction")
    out = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-Atc",
                          "SELECT name || ' = ' || setting FROM pg_settings WHERE name = ANY('{" + ",".join(names)
                          + "}')"], check=True, capture_output=True, text=True, timeout=30).stdout
    return out.strip() + "\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
