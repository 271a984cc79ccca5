"""Modbus TCP against a real pymodbus server: several unit ids behind one gateway, every shipped model."""

from __future__ import annotations

import asyncio

import pytest

from edge.errors import MeterError
from edge.meters.config import BusConfig, BusKind, MeterConfig
from edge.meters.factory import open_readers, read_once, scan
from edge.meters.maps import MeterMap
from edge.simulator.modbus import ModbusSimulator, SimulatedModbusMeter
from edge.simulator.profiles import ManualClock
from tests.edge.meters.meter_helpers import MODELS
from tests.services import free_port


def tcp_bus(port: int, **kw: float) -> BusConfig:
    return BusConfig(name="gw", kind=BusKind.MODBUS_TCP, host="127.0.0.1", port=port, **kw)  # type: ignore[arg-type]


def meter_cfgs() -> list[MeterConfig]:
    return [MeterConfig(serial=f"M{u}", bus="gw", model=m, unit_id=u) for u, m in enumerate(MODELS, start=1)]


async def test_reads_every_model_as_integer_wh(
    sims: list[SimulatedModbusMeter], maps: dict[str, MeterMap], clock: ManualClock
) -> None:
    port = free_port()
    async with ModbusSimulator.tcp(sims, port=port), open_readers(
        [tcp_bus(port)], meter_cfgs(), maps, clock=lambda: int(clock.now * 1000)
    ) as readers:
        samples = {serial: await r.read() for serial, r in readers.items()}
        for unit, sim in enumerate(sims, start=1):
            s = samples[f"M{unit}"]
            assert type(s.import_wh) is int
            assert type(s.export_wh) is int
            assert s.timestamp_ms == int(clock.now * 1000)
            # Within the register resolution of the model (EM24: 0.1 kWh, f32 kWh: ~0.1 Wh at these values).
            tolerance = 100 if sim.meter_map.id == "carlo-gavazzi-em24" else 1
            assert abs(s.import_wh - sim.state.import_wh) <= tolerance
            assert abs(s.export_wh - sim.state.export_wh) <= tolerance
            assert s.power_w is not None
            if unit % 2:  # prosumer at noon exports
                assert s.power_w < -1000
            else:
                assert s.power_w > 0
            assert 220 < s.extra["voltage_l1"] < 240
        # Time moves on: registers grow, never shrink.
        clock.advance(3600)
        later = {serial: await r.read() for serial, r in readers.items()}
        for serial, before in samples.items():
            assert later[serial].import_wh >= before.import_wh
            assert later[serial].export_wh >= before.export_wh
        assert later["M1"].export_wh > samples["M1"].export_wh  # prosumer exported in the noon hour


async def test_concurrent_reads_share_one_gateway(sims: list[SimulatedModbusMeter], maps: dict[str, MeterMap]) -> None:
    port = free_port()
    async with ModbusSimulator.tcp(sims, port=port), open_readers([tcp_bus(port)], meter_cfgs(), maps) as readers:
        results = await asyncio.gather(*(r.read() for r in readers.values() for _ in range(3)))
    assert len(results) == 12
    assert all(r.import_wh > 0 for r in results)


async def test_scan_names_the_models(sims: list[SimulatedModbusMeter], maps: dict[str, MeterMap]) -> None:
    port = free_port()
    async with ModbusSimulator.tcp(sims, port=port):
        hits = await scan(tcp_bus(port, timeout_s=0.3), maps, range(1, 7))
    assert [(h.address, h.map_ids) for h in hits] == [(u, (m,)) for u, m in enumerate(MODELS, start=1)]
    assert hits[0].models == (maps["eastron-sdm630"].model,)


async def test_silent_meter_raises_after_retries(sims: list[SimulatedModbusMeter], maps: dict[str, MeterMap]) -> None:
    port = free_port()
    sims[0].online = False
    bus = tcp_bus(port, timeout_s=0.2, retries=2, backoff_s=0.01)
    async with ModbusSimulator.tcp(sims, port=port), open_readers([bus], meter_cfgs(), maps) as readers:
        with pytest.raises(MeterError, match=r"M1 .*did not answer after 3 attempt"):
            await readers["M1"].read()
        assert sims[0].requests == 3
        # Still silent: one attempt per read now, so a dead meter holds the shared bus for one timeout, not three.
        with pytest.raises(MeterError, match=r"M1 .*did not answer after 1 attempt"):
            await readers["M1"].read()
        assert sims[0].requests == 4
        # The other meters on the same gateway are unaffected, and the meter comes back when it answers again.
        assert (await readers["M2"].read()).import_wh > 0
        sims[0].online = True
        assert (await readers["M1"].read()).import_wh > 0
        # Answering again restores its retries.
        sims[0].online = False
        before = sims[0].requests
        with pytest.raises(MeterError, match=r"M1 .*did not answer after 3 attempt"):
            await readers["M1"].read()
        assert sims[0].requests == before + 3


async def test_nothing_listening_is_a_meter_error(maps: dict[str, MeterMap]) -> None:
    bus = tcp_bus(free_port(), timeout_s=0.2, retries=1, backoff_s=0.01)
    with pytest.raises(MeterError, match="cannot connect"):
        await read_once(bus, meter_cfgs()[0], maps)


async def test_reconnects_after_gateway_restart(sims: list[SimulatedModbusMeter], maps: dict[str, MeterMap]) -> None:
    port = free_port()
    bus = tcp_bus(port, timeout_s=0.3, retries=1, backoff_s=0.01)
    async with open_readers([bus], meter_cfgs(), maps) as readers:
        async with ModbusSimulator.tcp(sims, port=port):
            first = await readers["M2"].read()
        with pytest.raises(MeterError):
            await readers["M2"].read()  # gateway down: an error, never a made-up reading
        async with ModbusSimulator.tcp(sims, port=port):
            again = await readers["M2"].read()
    assert again.import_wh >= first.import_wh


async def test_scan_says_why_a_unit_that_answers_is_not_named(
    sims: list[SimulatedModbusMeter], maps: dict[str, MeterMap]
) -> None:
    # Only the SDM630 map is known: the EM24 (unit 2) refuses its probe register, the SDM120 (unit 4) answers it
    # with another meter code; unit 9 is silent and not listed.
    only = {"eastron-sdm630": maps["eastron-sdm630"]}
    port = free_port()
    async with ModbusSimulator.tcp(sims, port=port):
        hits = await scan(tcp_bus(port, timeout_s=0.3), only, [1, 2, 4, 9])
    assert [(h.address, h.map_ids) for h in hits] == [(1, ("eastron-sdm630",)), (2, ()), (4, ())]
    assert hits[1].reason.startswith("answers, but no meter map matched: eastron-sdm630: holding register 0xFC02 "
                                     "refused (unit 2 refused holding 64514+1 (exception code 2")
    assert hits[2].reason == (
        "answers, but no meter map matched: eastron-sdm630: holding register 0xFC02 reads 0x0020, expected 0x0070"
    )
