"""Broker outage: nothing is lost, the backlog drains oldest first, rate-limited, and live readings keep flowing."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.edge.daemon.central_peer import CentralPeer, wait_until
from tests.edge.daemon.daemon_config import DLMS_SERIAL, config_text, dlms_ciphered, meters_toml, p1_meter_toml
from tests.edge.daemon.daemon_proc import DaemonProcess, SimProcess, drain_and_stop, meters_seen, outbox_state
from tests.services import free_port


@pytest.mark.slow
def test_broker_outage_loses_nothing_and_live_readings_are_not_starved(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    sim_port, p1_port = free_port(), free_port()
    config = tmp_path / "edge.toml"
    state = tmp_path / "state"
    db = state / "outbox.sqlite"
    text = (
        config_text(state, mqtt_port=broker.port, extra='[logging]\nlevel = "info"\n')
        .replace("batch_size = 50", "batch_size = 2")
        .replace("backlog_rate = 2000", "backlog_rate = 3")
    )
    dlms_toml, dlms_args = dlms_ciphered(tmp_path, free_port())  # plus a ciphered DLMS meter (issue 13)
    config.write_text(text + meters_toml(sim_port, ["OU-1", "OU-2", "OU-3", "OU-4"]) + p1_meter_toml(p1_port, "OU-P1")
                      + dlms_toml)
    sim = SimProcess(sim_port, 4, p1_port=p1_port, extra=dlms_args)  # and a P1 meter pushing telegrams
    try:
        with CentralPeer(broker.host, broker.port) as central, DaemonProcess(config, tmp_path / "daemon.log") as daemon:
            daemon.start()
            wait_until(lambda: len(central.seqs()) >= 8, 20, "first readings")
            broker.stop()
            outage_start = time.monotonic()
            time.sleep(6)
            backlog_last, backlog_depth = outbox_state(db)
            assert backlog_depth >= 16  # readings kept coming in and were kept during the outage
            broker.start()
            restart = time.monotonic()
            wait_until(lambda: set(range(1, backlog_last + 9)) <= set(central.seqs()), 40, "backlog and live readings")
            last_seq, left = drain_and_stop(daemon, central, sim, db)
    finally:
        sim.stop()
    assert left == 0
    assert "OU-P1" in meters_seen(central)  # the P1 meter's readings went through the same guarantees
    assert central.conflicts == []
    assert central.errors == []
    assert central.check_chain() == last_seq  # nothing lost, nothing duplicated with different content
    after = [(t, s) for t, s in central.arrivals if t > restart]
    backlog = [(t, s) for t, s in after if s <= backlog_last]
    live = [(t, s) for t, s in after if s > backlog_last]
    assert len(backlog) >= backlog_depth - 8  # most of the outage's readings came after the restart
    assert [s for _, s in backlog] == sorted(s for _, s in backlog)  # oldest first
    # live readings arrived while the (rate-limited) backlog was still draining: not starved behind it
    assert min(t for t, _ in live) < max(t for t, _ in backlog)
    assert outage_start < restart
    assert DLMS_SERIAL in meters_seen(central)
    assert json.loads((tmp_path / "sim-stats.json").read_text())["ciphered"]["rejected"] == 0
