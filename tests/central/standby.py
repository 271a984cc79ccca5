"""Test helper: a PostgreSQL streaming-replication standby of the 127.0.0.1:5432 cluster (``pg_basebackup -R``) in a
temporary directory, on a free port, started with ``pg_ctl`` (as the ``postgres`` OS user when run as root) and
stopped by its postmaster's PID. It streams through its own replication slot, so the primary keeps the WAL it has not
received yet however much WAL the rest of the suite writes meanwhile; the slot is dropped afterwards (and slots left
by a test process that no longer runs are dropped before a new one is made). Needs ``host replication all
127.0.0.1/32 trust`` in the primary's pg_hba.conf (``.ci/services.sh`` adds it)."""

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
    slot = f"gtx_standby_{os.getpid()}_{port}"
    _drop_orphan_slots()
    try:
        for attempt in range(3):  # other tests create and drop databases meanwhile: a backup may need a retry
            shutil.rmtree(data, ignore_errors=True)
            done = subprocess.run(
                _as_postgres([str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", "5432", "-U", "postgres",
                              "-D", str(data), "-R", "-X", "stream", "-c", "fast", "-C", "-S", slot]),
                check=False, capture_output=True, timeout=300, cwd=top)
            if done.returncode == 0:
                break
            _psql(f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{slot}'")
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
        _until_streaming(port)
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
        _drop_slots(f"slot_name = '{slot}'")
        shutil.rmtree(top, ignore_errors=True)


def _psql(sql: str, port: int = 5432) -> str:
    return subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres", "-Atc", sql],
                          check=True, capture_output=True, text=True, timeout=30).stdout


def _until_streaming(port: int) -> None:
    """Wait until the standby's WAL receiver streams (before that it cannot tell how far behind it is)."""
    deadline = time.monotonic() + 60
    while _psql("SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'", port).strip() != "1":
        assert time.monotonic() < deadline, "the standby did not start streaming from the primary"
        time.sleep(0.1)


def _drop_slots(where: str) -> None:
    """Drop the inactive slots matching ``where`` (a slot still held by its walsender for a moment is retried)."""
    deadline = time.monotonic() + 30
    while _psql(f"SELECT count(*) FROM pg_replication_slots WHERE {where}").strip() != "0":
        _psql(f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE {where} AND NOT active")
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)


def _drop_orphan_slots() -> None:
    """Slots of this helper whose test process is gone (killed before its cleanup ran): they would hold WAL forever."""
    names = _psql("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'gtx\\_standby\\_%'").split()
    for name in names:
        if not _alive(int(name.split("_")[2])):
            _drop_slots(f"slot_name = '{name}'")


def _primary_limits() -> str:
    """The settings a standby must not set lower than its primary (else recovery refuses to start)."""
    names = ("max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions",
             "max_locks_per_transaction")
    out = _psql("SELECT name || ' = ' || setting FROM pg_settings WHERE name = ANY('{" + ",".join(names) + "}')")
    return out.strip() + "\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
