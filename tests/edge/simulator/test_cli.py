"""``python -m edge.simulator`` runs N meters as a separate process; the edge reads them like real ones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.meters.config import BusConfig, BusKind, MeterConfig
from edge.meters.factory import open_readers, scan
from edge.meters.maps import default_maps_dir, load_maps
from tests.services import free_port

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def simulator(request: pytest.FixtureRequest) -> Iterator[dict[str, object]]:
    args: list[str] = request.param
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge.simulator", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        yield json.loads(line)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def test_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edge.simulator", "--help"], cwd=ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert "--count" in out.stdout
    assert "--pty" in out.stdout


PORT = free_port()
DLMS_PORT = free_port()


@pytest.mark.parametrize(
    "simulator",
    [["--port", str(PORT), "--count", "2", "--meter", "7:carlo-gavazzi-em24:consumer", "--speed", "600"]],
    indirect=True,
)
async def test_tcp_meters_from_the_cli(simulator: dict[str, object]) -> None:
    assert simulator["ready"] is True
    maps = load_maps(default_maps_dir())
    bus = BusConfig(name="sim", kind=BusKind.MODBUS_TCP, host="127.0.0.1", port=PORT, timeout_s=0.3)
    hits = await scan(bus, maps, [1, 2, 3, 7])
    assert [(h.address, h.map_ids) for h in hits] == [
        (1, ("eastron-sdm630",)), (2, ("eastron-sdm630",)), (7, ("carlo-gavazzi-em24",))
    ]
    meters = [MeterConfig(serial="A", bus="sim", model="eastron-sdm630", unit_id=1)]
    async with open_readers([bus], meters, maps) as readers:
        sample = await readers["A"].read()
    assert sample.import_wh >= 1_250_000


@pytest.mark.parametrize("simulator", [["--pty", "--count", "2"]], indirect=True)
async def test_rtu_on_a_pty_from_the_cli(simulator: dict[str, object]) -> None:
    endpoint = simulator["endpoint"]
    assert isinstance(endpoint, dict)
    maps = load_maps(default_maps_dir())
    bus = BusConfig(name="sim", kind=BusKind.MODBUS_RTU, device=endpoint["device"], timeout_s=0.5)
    meters = [MeterConfig(serial=f"S{u}", bus="sim", model="eastron-sdm630", unit_id=u) for u in (1, 2)]
    async with open_readers([bus], meters, maps) as readers:
        samples = [await r.read() for r in readers.values()]
    assert all(s.import_wh >= 1_250_000 for s in samples)


def test_bad_arguments_exit_2() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edge.simulator", "--port", "1", "--model", "nope", "--count", "1"], cwd=ROOT,
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False,
    )
    assert out.returncode == 2
    assert "unknown Modbus meter map 'nope'" in out.stderr


@pytest.mark.parametrize(
    "simulator", [["--port", str(PORT), "--count", "1", "--dlms-port", str(DLMS_PORT)]], indirect=True
)
async def test_dlms_meter_from_the_cli(simulator: dict[str, object]) -> None:
    assert simulator["dlms"] == {"kind": "dlms-tcp", "host": "127.0.0.1", "port": DLMS_PORT, "model": "dlms-generic"}
    maps = load_maps(default_maps_dir())
    bus = BusConfig(name="d", kind=BusKind.DLMS_TCP, host="127.0.0.1", port=DLMS_PORT, timeout_s=1.0)
    meters = [MeterConfig(serial="D", bus="d", model="dlms-generic")]
    async with open_readers([bus], meters, maps) as readers:
        sample = await readers["D"].read()
    assert sample.import_wh >= 1_250_000
