"""The edge daemon (``python -m edge run``) and the meter simulator (``python -m edge.simulator``) as real processes
for the crash, outage and end-to-end tests: started, SIGKILLed or stopped gracefully by their PIDs, and the
daemon's SQLite outbox read beside it."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import sqlite_utils

from protocol.record import decode_reading
from tests.edge.daemon.central_peer import CentralPeer, wait_until

REPO = Path(__file__).resolve().parents[3]
#: The child processes import this checkout (not an installed copy), wherever pytest was started.
CHILD_ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def outbox_state(db: Path) -> tuple[int, int]:
    """(last committed seq, un-acked rows), read beside the running daemon (WAL allows it)."""
    if not db.exists():
        return 0, 0
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        view = sqlite_utils.Database(conn)
        if "meta" not in view.table_names():
            return 0, 0
        last = view.table("meta").get("last_seq")["value"]
        return int(last), view.table("outbox").count + view.table("pending").count
    finally:
        conn.close()


def init_gateway(cfg: Path) -> str:
    """``python -m edge init`` on ``cfg``; the device id it prints."""
    out = subprocess.run([sys.executable, "-m", "edge", "--config", str(cfg), "init"], cwd=REPO, capture_output=True,
                         check=True, env=CHILD_ENV).stdout.decode()
    found = re.search(r"device id: (\S+)", out)
    assert found, out
    return found.group(1)


class SimProcess:
    """``python -m edge.simulator`` in its own process (survives the daemon being killed), stopped by PID."""

    def __init__(self, port: int, count: int, *, p1_port: int | None = None, extra: tuple[str, ...] = ()) -> None:
        p1 = [] if p1_port is None else ["--p1-port", str(p1_port), "--p1-period", "0.5"]  # one DSMR 5 P1 meter
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge.simulator", "--port", str(port), "--count", str(count), "--speed", "60", *p1,
             *extra],
            cwd=REPO,
            env=CHILD_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert b'"ready": true' in line, line

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class DaemonProcess:
    """One daemon process at a time on ``config``, its output appended to ``log``; a context manager that kills
    whatever is still running on exit."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge", "--config", str(self.config), "run"],
                cwd=REPO,
                env=CHILD_ENV,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        """SIGKILL: the daemon gets no chance to tidy up."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def terminate(self) -> int:
        """SIGTERM, as systemd stops it; returns the exit code."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGTERM)
        code = self.proc.wait(15)
        self.proc = None
        return code

    def stop(self) -> None:
        """SIGTERM if still running, SIGKILL if it does not exit within 15 s (no check of the exit code)."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.proc = None

    def __enter__(self) -> DaemonProcess:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.kill()


def meters_seen(central: CentralPeer) -> set[str]:
    """The meter serials of every record central received."""
    return {decode_reading(raw).meter_serial for raw in central.records.values()}


def drain_and_stop(daemon: DaemonProcess, central: CentralPeer, sim: SimProcess, db: Path) -> tuple[int, int]:
    """Stop the meters so no new readings come, wait until every committed reading reached central and was acked,
    stop the daemon gracefully (it must exit 0); returns ``outbox_state`` after the stop."""
    sim.stop()
    # A P1 meter goes on giving its newest telegram until that is stale (``stale_after_s = 3`` here): readings may be
    # committed for a few seconds after the simulator stopped. Wait until none was for longer than that.
    quiet_s, last, since = 4.0, outbox_state(db)[0], time.monotonic()

    def drained() -> bool:
        nonlocal last, since
        seq, depth = outbox_state(db)
        if seq != last:
            last, since = seq, time.monotonic()
        return time.monotonic() - since > quiet_s and depth == 0 and len(central.seqs()) >= seq

    wait_until(drained, 30, f"outbox drained and no reading committed for {quiet_s:g} s")
    assert daemon.terminate() == 0
    return outbox_state(db)
