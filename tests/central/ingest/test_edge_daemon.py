"""The real edge daemon (``python -m edge``) reading a simulated Modbus meter (``python -m edge.simulator``), signing
and publishing through a private Mosquitto into central (identity + ingest + readings): the gateway pins central's
key, is registered with its pairing code and provisioned over the central-signed MQTT challenge, the owner claims the
meter, and verified readings arrive and verify independently."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from central.app import POOL
from central.config import CentralConfig
from central.http import Role
from edge.keystore import read_seed
from protocol.record import decode_reading
from protocol.signed import format_pairing_code, pairing_code
from tests.central.app_env import login
from tests.central.device import CENTRAL_KEY
from tests.edge.daemon.daemon_proc import DaemonProcess, SimProcess, init_gateway
from tests.services import free_port

SERIAL = "EDGE-E2E-0001"
METER_KEY = "utility-key-edge-e2e"


@pytest.mark.slow
async def test_edge_daemon_readings_reach_the_owner(
    central: TestClient[Any, Any], config: CentralConfig, broker: Any, tmp_path: Path
) -> None:
    sim_port = free_port()
    edge_cfg = tmp_path / "edge.toml"
    edge_cfg.write_text(f"""
[device]
state_dir = "{tmp_path / "edge-state"}"
[central]
public_key = "{CENTRAL_KEY.device_id}"
[poll]
clock_check = "none"
[mqtt]
host = "{broker.host}"
port = {broker.port}
batch_size = 50
inflight_batches = 4
ack_timeout_s = 5
backlog_start_jitter_s = 0
reconnect_min_s = 0.1
reconnect_max_s = 1
[outbox]
min_free_mb = 0
retry_after_s = 0.5
dead_letter_after = 50
[status]
enabled = false
[[bus]]
name = "sim"
kind = "modbus-tcp"
host = "127.0.0.1"
port = {sim_port}
timeout_ms = 500
[[meter]]
serial = "{SERIAL}"
bus = "sim"
model = "eastron-sdm630"
unit_id = 1
poll_interval_s = 1
""")
    installer = await login(central, config, "installer@example.test", Role.INSTALLER)
    owner = await login(central, config, "owner@example.test", Role.PROSUMER)
    device_id = init_gateway(edge_cfg)
    # The code the installer reads off the gateway's status page (protocol §10): derived from its key seed.
    code = format_pairing_code(pairing_code(read_seed(tmp_path / "edge-state" / "device.key")))
    resp = await central.post("/api/v1/devices", headers=installer, json={
        "device_id": device_id, "pairing_code": code, "site_label": "e2e", "meters": [
            {"serial": SERIAL, "model": "eastron-sdm630", "protocol": "modbus-tcp", "meter_key": METER_KEY,
             "source": "solar"}]})
    assert resp.status == 201, await resp.text()

    sim = SimProcess(sim_port, 1)
    edge = DaemonProcess(edge_cfg, tmp_path / "edge.log")
    edge.start()
    try:
        # The challenge sent at registration found nobody listening; resend until the running gateway answers.
        status = ""
        for _ in range(60):
            await central.post(f"/api/v1/devices/{device_id}/challenge", headers=installer)
            await asyncio.sleep(0.5)
            status = (await (await central.get(f"/api/v1/devices/{device_id}", headers=installer)).json())["status"]
            if status == "verified":
                break
        assert status == "verified", (tmp_path / "edge.log").read_text()[-3000:]
        resp = await central.post("/api/v1/meters/claim", headers=owner,
                                  json={"serial": SERIAL, "meter_key": METER_KEY})
        assert resp.status == 200, await resp.text()
        meter_id = (await resp.json())["id"]

        readings: list[dict[str, Any]] = []
        for _ in range(80):
            await asyncio.sleep(0.25)
            page = await (await central.get(f"/api/v1/meters/{meter_id}/readings", headers=owner,
                                            params={"limit": "100"})).json()
            readings = page["readings"]
            if len(readings) >= 3:
                break
        assert len(readings) >= 3, (tmp_path / "edge.log").read_text()[-3000:]
    finally:
        edge.stop()
        sim.stop()

    pool = central.app[POOL]
    rows = await pool.fetch("SELECT seq, raw, record_hash, prev_hash FROM readings WHERE device_id = $1 ORDER BY seq",
                            device_id)
    by_seq = {r["seq"]: r for r in rows}
    for r in rows:
        rec = decode_reading(bytes(r["raw"]))  # verifies the signature with the protocol library
        assert rec.device_id == device_id
        assert rec.meter_serial == SERIAL
        assert rec.hash() == bytes(r["record_hash"])
        if r["seq"] - 1 in by_seq:
            assert bytes(r["prev_hash"]) == bytes(by_seq[r["seq"] - 1]["record_hash"])
    imports = [decode_reading(bytes(r["raw"])).import_wh for r in rows]
    assert imports == sorted(imports)
