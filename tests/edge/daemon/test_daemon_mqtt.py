"""The daemon in-process against a real Mosquitto and a real pymodbus server (the edge.meters simulator)."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from pathlib import Path

import pytest

from edge.cli import main
from edge.config import load_config
from edge.daemon import Daemon
from edge.meter_setup import meter_source
from edge.simulator.modbus import ModbusSimulator
from protocol.record import decode_reading
from protocol.status import OFFLINE_STATUS, DeviceStatus
from tests.edge.daemon.central_peer import CentralPeer
from tests.edge.daemon.daemon_config import PASSWORD, config_text, meters_toml, sim_meters
from tests.edge.daemon.in_process import until
from tests.services import free_port


def _get(port: int, path: str, password: str | None = PASSWORD) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if password is not None:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"x:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        body = e.read()
        e.close()
        return e.code, body




async def test_daemon_reads_signs_publishes_answers_challenge_and_shows_status(  # type: ignore[no-untyped-def]
    tmp_path: Path, broker, capsys: pytest.CaptureFixture[str]
) -> None:
    sim_port = free_port()
    src = tmp_path / "edge.toml"
    src.write_text(
        config_text(tmp_path / "state", mqtt_port=broker.port)
        + meters_toml(sim_port, ["SDM-A", "SDM-B", "SDM-DOWN"])
    )
    cfg = load_config(src)
    meters = sim_meters(2)  # unit 3 ("SDM-DOWN") does not exist on the bus
    daemon = Daemon(cfg, meter_source(cfg))
    stop = asyncio.Event()
    with CentralPeer(broker.host, broker.port) as central:
        async with ModbusSimulator.tcp(meters, port=sim_port):  # type: ignore[arg-type]
            task = asyncio.create_task(daemon.run(stop))
            await asyncio.wait_for(daemon.ready.wait(), 10)
            assert daemon.board is not None
            device_id = daemon.board.device_id
            await until(lambda: len(central.records) >= 6, 15, "six readings at central")
            assert daemon.board.pairing_code is not None
            central.challenge(device_id, daemon.board.pairing_code)
            await until(lambda: central.challenge_replies, 5, "challenge reply")
            await until(lambda: daemon.board is not None and daemon.board.verified, 5, "verified after acks")
            assert daemon.web_port is not None
            status, body = await asyncio.to_thread(_get, daemon.web_port, "/api/status")
            assert status == 200
            snap = json.loads(body)
            unauth, _ = await asyncio.to_thread(_get, daemon.web_port, "/api/status", "wrong-password")
            assert unauth == 401
            # The retained status (protocol/status.py) carries the gateway's health for central's fleet view.
            await until(lambda: "meters_down" in DeviceStatus.from_json(central.status.get(device_id, b"")).alarms,
                         10, "a status naming the meters_down alarm")
            health = DeviceStatus.from_json(central.status[device_id])
            assert health.online is True
            assert health.outbox_depth is not None
            assert health.last_seq is not None
            assert health.meters_down == 1
            assert "meters_down" in health.alarms
            assert "pairing" not in central.status[device_id].decode()
            # the technician's CLI asks the running daemon (exit 1: the dead meter raises an alarm)
            src.write_text(src.read_text().replace("port = 0", f"port = {daemon.web_port}"))
            assert await asyncio.to_thread(main, ["--config", str(src), "status"]) == 1
            cli_out = capsys.readouterr().out
            stop.set()
            await asyncio.wait_for(task, 15)
            # the retained offline status travels through the broker to the peer's own network thread: wait for it
            await until(lambda: central.status.get(device_id) == OFFLINE_STATUS, 5, "offline status")
    assert central.challenge_replies == [(device_id, True)]
    assert central.errors == []
    assert central.conflicts == []
    n = central.check_chain()  # every record was decoded with signature verification on arrival
    serials = {decode_reading(r).meter_serial for r in central.records.values()}
    assert serials == {"SDM-A", "SDM-B"}  # the dead meter produced no reading
    for raw in central.records.values():
        rec = decode_reading(raw)
        assert rec.device_id == device_id
        assert rec.import_wh >= 1_000_000
    assert snap["device_id"] == device_id
    assert snap["verified"] is True
    assert snap["mqtt"]["state"] == "connected"
    by_serial = {m["serial"]: m for m in snap["meters"]}
    assert by_serial["SDM-A"]["up"] is True
    assert by_serial["SDM-A"]["last"]["import_wh"] >= 1_000_000
    assert by_serial["SDM-DOWN"]["up"] is False
    assert by_serial["SDM-DOWN"]["last_error"]
    assert by_serial["SDM-DOWN"]["address"] == f"127.0.0.1:{sim_port} unit 3"
    # clean shutdown: final status offline (retained), everything acked was deleted
    assert central.status[device_id] == OFFLINE_STATUS
    assert n >= 6
    assert f"device   {device_id}" in cli_out
    assert "SDM-DOWN" in cli_out
    assert "ALARM    meters not answering: SDM-DOWN" in cli_out
