"""kill -9 at random moments while the daemon reads and publishes: nothing committed is lost, no seq is reused."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlite_utils

from tests.conftest import free_port
from tests.edge.daemon.central_peer import CentralPeer, wait_until
from tests.edge.daemon.conftest import SimProcess, config_text, meters_toml

KILLS = 22


def start_daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "edge", "--config", str(config), "run"], stdout=out, stderr=subprocess.STDOUT
        )


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


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_never_reuses_a_seq(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(20261129)
    sim_port = free_port()
    config = tmp_path / "edge.toml"
    state = tmp_path / "state"
    config.write_text(
        config_text(state, mqtt_port=broker.port, extra='[logging]\nlevel = "warning"\n')
        + meters_toml(sim_port, ["CR-1", "CR-2", "CR-3", "CR-4"])
    )
    log = tmp_path / "daemon.log"
    sim = SimProcess(sim_port, 4)
    proc: subprocess.Popen[bytes] | None = None
    try:
        with CentralPeer(broker.host, broker.port) as central:
            seen_progress = 0
            for i in range(KILLS):
                online = central.online_count
                proc = start_daemon(config, log)
                if i % 4 == 0:  # somewhere in start-up: key/outbox opening, connecting, first tick
                    time.sleep(rng.uniform(0.05, 1.5))
                else:  # while reading, committing, publishing and applying acks
                    wait_until(lambda online=online: central.online_count > online, 20, "daemon connected")
                    time.sleep(rng.uniform(0.0, 1.5))
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
                proc = None
                seen_progress = max(seen_progress, outbox_state(state / "outbox.sqlite")[0])
            assert seen_progress > KILLS  # it really read and committed between the kills
            # let the last run drain everything: stop the meters so no new readings come, then wait for acks
            online = central.online_count
            proc = start_daemon(config, log)
            wait_until(lambda: central.online_count > online, 20, "daemon up and connected")
            time.sleep(1.0)
            sim.stop()
            db = state / "outbox.sqlite"
            wait_until(lambda: outbox_state(db)[1] == 0 and len(central.seqs()) >= outbox_state(db)[0], 20,
                       "outbox drained")
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(15) == 0
            proc = None
            last_seq, left = outbox_state(db)
    finally:
        if proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        sim.stop()
    assert left == 0
    assert central.conflicts == []  # no seq ever carried two different records
    assert central.errors == []  # every batch decoded and every signature verified
    n = central.check_chain()  # every seq 1..N, unbroken hash chain
    assert n == last_seq
    assert len(central.device_ids) == 1
