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
from protocol.record import decode_reading
from tests.central.app_env import login
from tests.central.edge_gateway import edge_toml, init_and_pair, register, wait_verified
from tests.edge.daemon.daemon_proc import DaemonProcess, SimProcess
from tests.services import free_port

SERIAL = "EDGE-E2E-0001"
METER_KEY = "utility-key-edge-e2e"


@pytest.mark.slow
async def test_edge_daemon_readings_reach_the_owner(
    central: TestClient[Any, Any], config: CentralConfig, broker: Any, tmp_path: Path
) -> None:
    sim_port = free_port()
    edge_cfg = edge_toml(tmp_path, serial=SERIAL, mqtt_host=broker.host, mqtt_port=broker.port, sim_port=sim_port)
    installer = await login(central, config, "installer@example.test", Role.INSTALLER)
    owner = await login(central, config, "owner@example.test", Role.PROSUMER)
    device_id, code = init_and_pair(edge_cfg)
    await register(central, installer, device_id, code, site_label="e2e", serial=SERIAL, meter_key=METER_KEY)

    sim = SimProcess(sim_port, 1)
    edge = DaemonProcess(edge_cfg, tmp_path / "edge.log")
    edge.start()
    try:
        # The challenge sent at registration found nobody listening; resend until the running gateway answers.
        status = await wait_verified(central, installer, device_id, tries=60)
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
