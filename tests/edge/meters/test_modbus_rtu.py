"""Modbus RTU on a pty pair against a real pymodbus serial server: several unit ids on one RS-485 line."""

from __future__ import annotations

import asyncio

import pytest

from edge.errors import MeterError
from edge.meters.config import BusConfig, BusKind, MeterConfig
from edge.meters.factory import open_readers, scan
from edge.meters.maps import MeterMap
from edge.simulator.modbus import ModbusSimulator, SimulatedModbusMeter
from edge.simulator.ptypair import PtyPair
from tests.edge.meters.meter_helpers import MODELS


def rtu_bus(device: str, **kw: float) -> BusConfig:
    params = {"timeout_s": 0.5, **kw}
    return BusConfig(name="rs485", kind=BusKind.MODBUS_RTU, device=device, **params)  # type: ignore[arg-type]


def meter_cfgs() -> list[MeterConfig]:
    return [MeterConfig(serial=f"M{u}", bus="rs485", model=m, unit_id=u) for u, m in enumerate(MODELS, start=1)]


async def test_rtu_bus_with_four_unit_ids(sims: list[SimulatedModbusMeter], maps: dict[str, MeterMap]) -> None:
    async with PtyPair() as pair, ModbusSimulator.rtu(sims, device=pair.a), open_readers(
        [rtu_bus(pair.b)], meter_cfgs(), maps
    ) as readers:
        # All four meters polled at once: the bus lock must serialise them or RTU frames would collide.
        samples = await asyncio.gather(*(r.read() for r in readers.values()))
    for sim, s in zip(sims, samples, strict=True):
        tolerance = 100 if sim.meter_map.id == "carlo-gavazzi-em24" else 1
        assert abs(s.import_wh - sim.state.import_wh) <= tolerance
        assert abs(s.export_wh - sim.state.export_wh) <= tolerance


async def test_rtu_scan_and_silent_unit(sims: list[SimulatedModbusMeter], maps: dict[str, MeterMap]) -> None:
    async with PtyPair() as pair, ModbusSimulator.rtu(sims, device=pair.a):
        hits = await scan(rtu_bus(pair.b, timeout_s=0.2), maps, range(1, 6))
        assert [(h.address, h.map_ids) for h in hits] == [(u, (m,)) for u, m in enumerate(MODELS, start=1)]
        sims[1].online = False
        bus = rtu_bus(pair.b, timeout_s=0.2, retries=1, backoff_s=0.01)
        async with open_readers([bus], meter_cfgs(), maps) as readers:
            with pytest.raises(MeterError, match="M2"):
                await readers["M2"].read()
            # The line still works for the others after a timeout.
            assert (await readers["M3"].read()).import_wh > 0
