"""Issue 10, D3: a forged ack claiming a billion seqs, sent again and again on a running gateway's ack topic (real
Mosquitto, real ``python -m edge run``, simulated meters): the status page keeps answering, the gateway keeps
polling and committing, and nothing is deleted from its outbox.

Since the uplink applies an ack only to the batch actually in flight, the forged ack never reaches the outbox;
``test_outbox.py::test_apply_ack_refuses_a_huge_range_unread_and_deletes_nothing`` checks the outbox's own
bound directly (and keeps meaning something once central-signed acks drop unsigned ones even earlier)."""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from protocol import topics
from tests.edge.daemon.central_peer import CentralPeer, wait_until
from tests.edge.daemon.daemon_config import config_text, meters_toml
from tests.edge.daemon.daemon_proc import DaemonProcess, SimProcess, outbox_state
from tests.services import free_port

FORGED = json.dumps(
    {"v": 1, "first": 1, "last": 1_000_000_000, "accepted": 1_000_000_000, "duplicate": 0, "rejected": []}
).encode()
ROUNDS = 40


def _healthz(port: int) -> None:
    """The status page answers within 1 s (the timeout is the check; a hung gateway raises)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1.0) as resp:
        assert resp.status == 200


@pytest.mark.slow
def test_forged_huge_ack_flood_neither_hangs_the_gateway_nor_deletes_readings(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    sim_port, status_port = free_port(), free_port()
    config = tmp_path / "edge.toml"
    state = tmp_path / "state"
    config.write_text(
        config_text(state, mqtt_port=broker.port, status_port=status_port, extra='[logging]\nlevel = "warning"\n')
        + meters_toml(sim_port, ["FA-1", "FA-2"])
    )
    config.chmod(0o600)
    db = state / "outbox.sqlite"
    sim = SimProcess(sim_port, 2)
    attacker = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=f"attacker-{secrets.token_hex(4)}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    try:
        # central is present but never acks: every committed reading must stay in the outbox
        with (
            CentralPeer(broker.host, broker.port, ack=False) as central,
            DaemonProcess(config, tmp_path / "daemon.log") as daemon,
        ):
            daemon.start()
            wait_until(lambda: len(central.device_ids) == 1 and central.batches > 0, 30, "gateway publishing")
            (device_id,) = central.device_ids
            attacker.connect(broker.host, broker.port, keepalive=10)
            attacker.loop_start()
            _healthz(status_port)
            start_seq, _ = outbox_state(db)
            for _ in range(ROUNDS):
                for _ in range(5):
                    attacker.publish(topics.ack(device_id), FORGED, qos=1)
                _healthz(status_port)
                last_seq, unacked = outbox_state(db)
                assert unacked == last_seq  # nothing deleted: no genuine ack was ever sent
                time.sleep(0.1)
            # the gateway kept polling and committing during the flood
            wait_until(lambda: outbox_state(db)[0] >= start_seq + 4, 20, "new readings committed")
            _healthz(status_port)
            last_seq, unacked = outbox_state(db)
            assert unacked == last_seq
            assert daemon.proc is not None
            assert daemon.proc.poll() is None  # still running
            assert daemon.terminate() == 0
    finally:
        attacker.loop_stop()
        attacker.disconnect()
        sim.stop()
    assert outbox_state(db)[1] == outbox_state(db)[0]
