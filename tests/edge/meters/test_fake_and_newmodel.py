"""The in-memory fake reader, and a new meter model added as a data file only (no code change)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.errors import MeterError
from edge.meters.base import MeterReader, MeterSample
from edge.meters.config import BusConfig, BusKind, MeterConfig
from edge.meters.factory import open_readers, scan
from edge.meters.fake import FakeMeterReader
from edge.meters.maps import load_maps
from edge.simulator.modbus import ModbusSimulator, SimulatedModbusMeter
from edge.simulator.profiles import Kind, ManualClock, Profile, SimulatedRegisters
from tests.edge.meters.meter_helpers import NOON
from tests.services import free_port

# A made-up model with a layout no shipped map uses: u64 Wh holding registers, little-endian i32 power in 0.1 W.
NEW_MODEL = """\
[meter]
id = "acme-x1"
model = "ACME X1 test meter"
protocol = "modbus"

[defaults]
function = "holding"
word_order = "little"

[[probe]]
address = 9000
type = "u16"
equals = [4242]

[measurements.energy_import]
address = 100
type = "u64"
unit = "Wh"

[measurements.energy_export]
address = 104
type = "u64"
unit = "Wh"

[measurements.power_active]
address = 200
type = "i32"
unit = "W"
scale = "0.1"

[[block]]
function = "holding"
start = 100
count = 8
"""


async def test_new_model_is_data_only(tmp_path: Path) -> None:
    (tmp_path / "acme-x1.toml").write_text(NEW_MODEL)
    maps = load_maps(tmp_path)
    clock = ManualClock(NOON)
    state = SimulatedRegisters(Profile(Kind.PROSUMER), NOON - 3600, import_wh=2**40)
    port = free_port()
    bus = BusConfig(name="gw", kind=BusKind.MODBUS_TCP, host="127.0.0.1", port=port, timeout_s=0.3)
    async with ModbusSimulator.tcp([SimulatedModbusMeter(9, maps["acme-x1"], state, clock)], port=port):
        assert [(h.address, h.map_ids) for h in await scan(bus, maps, [8, 9])] == [(9, ("acme-x1",))]
        meters = [MeterConfig(serial="X", bus="gw", model="acme-x1", unit_id=9)]
        async with open_readers([bus], meters, maps) as readers:
            s = await readers["X"].read()
    assert (s.import_wh, s.export_wh) == (state.import_wh, state.export_wh)
    assert s.import_wh >= 2**40
    assert s.export_wh > 0
    assert s.power_w is not None
    assert s.power_w < 0


async def test_fake_reader_script_and_failure() -> None:
    a = MeterSample(timestamp_ms=1, import_wh=10, export_wh=0, power_w=5)
    b = MeterSample(timestamp_ms=2, import_wh=11, export_wh=0, power_w=None)
    fake = FakeMeterReader("F", script=[a, MeterError("gone"), b])
    reader: MeterReader = fake
    assert await reader.read() == a
    with pytest.raises(MeterError):
        await reader.read()
    assert await reader.read() == b
    assert await reader.read() == b  # the last entry repeats
    fake.fail_with = "did not answer"
    with pytest.raises(MeterError):
        await reader.read()
    await reader.close()
    assert fake.closed


async def test_fake_reader_from_a_profile() -> None:
    clock = ManualClock(NOON)
    fake = FakeMeterReader("P", state=SimulatedRegisters(Profile(Kind.CONSUMER), NOON), time_source=clock)
    first = await fake.read()
    clock.advance(3600)
    second = await fake.read()
    assert second.import_wh > first.import_wh
    assert second.timestamp_ms - first.timestamp_ms == 3_600_000
