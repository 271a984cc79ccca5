"""The real edge daemon as a gateway of central, for the end-to-end tests through a broker: its ``edge.toml`` (one
simulated Modbus meter, fast retries, central's test key pinned), ``edge init`` with the pairing code the installer
reads off it, registration with its meter, and the wait until it has answered central's challenge."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from edge.keystore import read_seed
from protocol.signed import format_pairing_code, pairing_code
from tests.central.device import CENTRAL_KEY
from tests.edge.daemon.daemon_config import meters_toml
from tests.edge.daemon.daemon_proc import init_gateway

MODEL = "eastron-sdm630"


def edge_toml(tmp_path: Path, *, serial: str, mqtt_host: str, mqtt_port: int, sim_port: int, mqtt: str = "",
              tls_ca: Path | None = None) -> Path:
    """``tmp_path/edge.toml`` (state in ``tmp_path/edge-state``): the broker at ``mqtt_host:mqtt_port`` (``mqtt``:
    more lines of its ``[mqtt]`` section; ``tls_ca``: TLS, verifying the broker with this CA) and meter ``serial``, an
    SDM630 on the simulator at ``sim_port``."""
    tls = f'[mqtt.tls]\nca_file = "{tls_ca}"\n' if tls_ca is not None else ""
    path = tmp_path / "edge.toml"
    path.write_text(f"""
[device]
state_dir = "{tmp_path / "edge-state"}"
[central]
public_key = "{CENTRAL_KEY.device_id}"
[poll]
clock_check = "none"
[mqtt]
host = "{mqtt_host}"
port = {mqtt_port}
{mqtt}batch_size = 50
inflight_batches = 4
ack_timeout_s = 5
backlog_start_jitter_s = 0
reconnect_min_s = 0.1
reconnect_max_s = 1
{tls}[outbox]
min_free_mb = 0
retry_after_s = 0.5
dead_letter_after = 50
[status]
enabled = false
""" + meters_toml(sim_port, [serial], model=MODEL))
    return path


def init_and_pair(edge_cfg: Path) -> tuple[str, str]:
    """``edge init`` on ``edge_cfg``: the gateway's device id and the pairing code the installer reads off its status
    page (protocol §10: derived from its key seed)."""
    device_id = init_gateway(edge_cfg)
    return device_id, format_pairing_code(pairing_code(read_seed(edge_cfg.parent / "edge-state" / "device.key")))


async def register(central: TestClient[Any, Any], installer: dict[str, str], device_id: str, code: str, *,
                   site_label: str, serial: str, meter_key: str) -> None:
    """The installer registers the gateway with its one meter (a solar SDM630 on Modbus TCP)."""
    resp = await central.post("/api/v1/devices", headers=installer, json={
        "device_id": device_id, "pairing_code": code, "site_label": site_label, "meters": [
            {"serial": serial, "model": MODEL, "protocol": "modbus-tcp", "meter_key": meter_key,
             "source": "solar"}]})
    assert resp.status == 201, await resp.text()


async def wait_verified(central: TestClient[Any, Any], installer: dict[str, str], device_id: str, *, tries: int,
                        challenge_every: int | None = 1) -> str:
    """Ask for the gateway's status every 0.5 s, ``tries`` times at most, sending a new challenge every
    ``challenge_every`` tries (the first one included; None: never, central challenges it by itself), until it is
    verified; its last status."""
    status = ""
    for i in range(tries):
        if challenge_every is not None and i % challenge_every == 0:
            await central.post(f"/api/v1/devices/{device_id}/challenge", headers=installer)
        await asyncio.sleep(0.5)
        status = (await (await central.get(f"/api/v1/devices/{device_id}", headers=installer)).json())["status"]
        if status == "verified":
            break
    return status
