"""kill -9 at random moments while the daemon reads and publishes: nothing committed is lost, no seq is reused."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from tests.edge.daemon.central_peer import CentralPeer, wait_until
from tests.edge.daemon.daemon_config import DLMS_SERIAL, config_text, dlms_ciphered, meters_toml, p1_meter_toml
from tests.edge.daemon.daemon_proc import DaemonProcess, SimProcess, drain_and_stop, meters_seen, outbox_state
from tests.services import free_port

KILLS = 22


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_never_reuses_a_seq(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(20261129)
    sim_port, p1_port = free_port(), free_port()
    config = tmp_path / "edge.toml"
    state = tmp_path / "state"
    # Four Modbus meters, a P1 meter and a ciphered DLMS meter (HLS-GMAC, authenticated+encrypted APDUs, issue 13).
    dlms_toml, dlms_args = dlms_ciphered(tmp_path, free_port())
    config.write_text(
        config_text(state, mqtt_port=broker.port, extra='[logging]\nlevel = "warning"\n')
        + meters_toml(sim_port, ["CR-1", "CR-2", "CR-3", "CR-4"])
        + p1_meter_toml(p1_port, "CR-P1")
        + dlms_toml
    )
    sim = SimProcess(sim_port, 4, p1_port=p1_port, extra=dlms_args)  # and a P1 meter pushing telegrams
    db = state / "outbox.sqlite"
    try:
        with CentralPeer(broker.host, broker.port) as central, DaemonProcess(config, tmp_path / "daemon.log") as daemon:
            seen_progress = 0
            for i in range(KILLS):
                online = central.online_count
                daemon.start()
                if i % 4 == 0:  # somewhere in start-up: key/outbox opening, connecting, first tick
                    time.sleep(rng.uniform(0.05, 1.5))
                else:  # while reading, committing, publishing and applying acks
                    wait_until(lambda online=online: central.online_count > online, 20, "daemon connected")
                    time.sleep(rng.uniform(0.0, 1.5))
                daemon.kill()
                seen_progress = max(seen_progress, outbox_state(db)[0])
            assert seen_progress > KILLS  # it really read and committed between the kills
            # let the last run drain everything: stop the meters so no new readings come, then wait for acks
            online = central.online_count
            daemon.start()
            wait_until(lambda: central.online_count > online, 20, "daemon up and connected")
            time.sleep(1.0)
            last_seq, left = drain_and_stop(daemon, central, sim, db)
    finally:
        sim.stop()
    assert left == 0
    assert "CR-P1" in meters_seen(central)  # the P1 meter's readings went through the same guarantees
    assert central.conflicts == []  # no seq ever carried two different records
    assert central.errors == []  # every batch decoded and every signature verified
    n = central.check_chain()  # every seq 1..N, unbroken hash chain
    assert n == last_seq
    assert len(central.device_ids) == 1
    # The ciphered meter was read across the kills, and never saw an invocation counter twice: every counter was
    # stored before use, so no restart reused one (the meter would have rejected it).
    assert DLMS_SERIAL in meters_seen(central)
    stats = json.loads((tmp_path / "sim-stats.json").read_text())["ciphered"]
    assert stats["rejected"] == 0
    assert stats["reads"] > 0
