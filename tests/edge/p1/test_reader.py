"""P1 meters through the real reader: over a pty pair (serial) and over TCP (ser2net, Wi-Fi dongles), for each
variant, with CRC failures, truncated telegrams, a stream that stops, and encrypted telegrams with right and wrong
keys. The simulator pushes a telegram every 50 ms."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from edge.errors import MeterError
from edge.meters.config import BusConfig, MeterConfig
from edge.meters.factory import open_readers, read_once, scan
from edge.meters.maps import MeterMap
from edge.meters.p1_reader import P1MeterReader
from edge.simulator.p1 import P1Simulator, SimulatedP1Meter
from edge.simulator.profiles import ManualClock
from edge.simulator.ptypair import PtyPair
from tests.edge.p1.p1_helpers import KEY, VARIANT_MAPS, p1_bus, p1_meter, sim_meter

PERIOD = 0.05


@contextlib.asynccontextmanager
async def p1_link(transport: str, meter: SimulatedP1Meter) -> AsyncIterator[tuple[P1Simulator, BusConfig]]:
    async with P1Simulator(meter, period_s=PERIOD) as sim:
        if transport == "tcp":
            yield sim, p1_bus(port=await sim.serve_tcp())
        else:
            async with PtyPair() as pair:
                sim.serve_serial(pair.a)
                yield sim, p1_bus(device=pair.b)
                await sim.close()


async def wait_for(pred: object, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while not pred():  # type: ignore[operator]  # noqa: ASYNC110 - the reader's counters have no event
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("transport", ["pty", "tcp"])
@pytest.mark.parametrize("variant", sorted(VARIANT_MAPS))
async def test_each_variant_over_pty_and_tcp(
    maps: dict[str, MeterMap], clock: ManualClock, transport: str, variant: str
) -> None:
    meter = sim_meter(variant, clock)
    async with p1_link(transport, meter) as (_sim, bus):
        sample = await read_once(bus, p1_meter(variant), maps)
    assert sample.import_wh == meter.state.import_wh
    assert sample.export_wh == meter.state.export_wh
    assert sample.power_w == meter.registers().power_w or variant == "dsmr2.2"  # 2.2 writes power in 10 W
    assert (sample.meter_time_ms is None) == (variant == "dsmr2.2")  # DSMR 2.2 telegrams carry no timestamp


@contextlib.asynccontextmanager
async def _reader(maps: dict[str, MeterMap], bus: BusConfig, cfg: MeterConfig) -> AsyncIterator[P1MeterReader]:
    """A started reader of ``cfg`` on ``bus``, closed on exit."""
    reader = P1MeterReader(cfg, maps[cfg.model], bus, clock=lambda: int(asyncio.get_running_loop().time() * 1000))
    reader.start()
    try:
        yield reader
    finally:
        await reader.close()


@pytest.mark.parametrize("transport", ["pty", "tcp"])
async def test_crc_failure_is_dropped_counted_and_never_read(
    maps: dict[str, MeterMap], clock: ManualClock, transport: str
) -> None:
    meter = sim_meter("dsmr5", clock)
    async with p1_link(transport, meter) as (sim, bus), _reader(maps, bus, p1_meter("dsmr5")) as reader:
        first = await reader.read()
        sim.paused = True
        await asyncio.sleep(PERIOD * 3)
        clock.advance(600)  # the registers move on: a telegram that got through would show it
        sim.inject("crc")
        # exactly the one bad telegram: pausing after the crc error was counted let a good one through on a loaded
        # machine (the stream runs every 50 ms)
        sim.on_frame = lambda _frame: setattr(sim, "paused", True)
        sim.paused = False
        await wait_for(lambda: reader.counters.crc_errors == 1)
        sim.on_frame = None
        again = await reader.read()
        assert (again.import_wh, again.export_wh) == (first.import_wh, first.export_wh)  # the bad one is dropped
        assert again.extra["p1_crc_errors"] == 1
        sim.paused = False
        await wait_for(lambda: reader.counters.telegrams > 5)
        assert (await reader.read()).import_wh == meter.state.import_wh


@pytest.mark.parametrize("transport", ["pty", "tcp"])
async def test_only_bad_telegrams_make_the_meter_down_with_the_reason(
    maps: dict[str, MeterMap], clock: ManualClock, transport: str
) -> None:
    meter = sim_meter("dsmr4", clock)
    async with p1_link(transport, meter) as (sim, bus):
        sim.paused = True
        for _ in range(3):
            sim.inject("crc")
        sim.inject("truncate")
        for _ in range(200):  # and only bad ones after it (a truncated telegram shows when the next one starts)
            sim.inject("crc")
        sim.paused = False
        async with _reader(maps, bus, p1_meter("dsmr4", stale_after_s=2)) as reader:
            await wait_for(lambda: reader.counters.crc_errors >= 4 and reader.counters.truncated >= 1)
            with pytest.raises(MeterError, match=r"no complete P1 telegram yet .*CRC mismatch"):
                await reader.read()
            assert reader.latest is None


@pytest.mark.parametrize("transport", ["pty", "tcp"])
async def test_stream_that_stops_makes_the_meter_down(
    maps: dict[str, MeterMap], clock: ManualClock, transport: str
) -> None:
    meter = sim_meter("belgium", clock)
    async with (
        p1_link(transport, meter) as (sim, bus),
        _reader(maps, bus, p1_meter("belgium", stale_after_s=2)) as reader,
    ):
        await reader.read()
        sim.paused = True
        if transport == "tcp":
            sim.disconnect_clients()
        await asyncio.sleep(2.3)
        with pytest.raises(MeterError, match=r"no complete P1 telegram for 2 s") as err:
            await reader.read()
        if transport == "tcp":
            assert "127.0.0.1" in str(err.value)  # the reason: the connection ended
        sim.paused = False
        await wait_for(lambda: reader.counters.telegrams > 20)
        assert (await reader.read()).import_wh == meter.state.import_wh  # it comes back by itself


@pytest.mark.parametrize("transport", ["pty", "tcp"])
async def test_encrypted_smarty_wrong_key_gives_one_clear_line_and_no_reading(
    maps: dict[str, MeterMap], clock: ManualClock, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    meter = sim_meter("luxembourg-smarty", clock, key=KEY)
    wrong = bytes(reversed(KEY))
    async with (
        p1_link(transport, meter) as (_sim, bus),
        _reader(maps, bus, p1_meter("luxembourg-smarty", key=wrong, stale_after_s=2)) as reader,
    ):
        with caplog.at_level(logging.WARNING, logger="edge.meters.p1_reader"), pytest.raises(
            MeterError, match=r"P1-0001: no complete P1 telegram yet .*cannot decrypt"
        ):
            await reader.read()
        assert reader.counters.decrypt_errors >= 3
        assert reader.latest is None
    lines = [r for r in caplog.records if "decrypt" in r.getMessage()]
    assert lines
    assert getattr(lines[0], "meter", None) == "P1-0001"
    assert all(KEY.hex() not in r.getMessage() and wrong.hex() not in r.getMessage() for r in caplog.records)
    assert len(lines) < reader.counters.decrypt_errors or reader.counters.decrypt_errors <= 2  # 1st, 2nd, 4th ...


async def test_scan_names_variant_and_model_over_pty_and_tcp(maps: dict[str, MeterMap], clock: ManualClock) -> None:
    for transport, variant in (("pty", "dsmr5"), ("tcp", "belgium"), ("pty", "luxembourg-smarty"), ("tcp", "dsmr4")):
        async with p1_link(transport, sim_meter(variant, clock)) as (_sim, bus):
            hits = await scan(bus, maps, listen_s=2.0)
        assert [h.map_ids for h in hits] == [(VARIANT_MAPS[variant],)], (transport, variant)
        assert variant.split("-")[0] in hits[0].detail or "encrypted" in hits[0].detail


async def test_several_p1_meters_in_one_meter_set(maps: dict[str, MeterMap], clock: ManualClock) -> None:
    meters = [sim_meter(v, clock) for v in ("dsmr5", "luxembourg-smarty")]
    async with p1_link("tcp", meters[0]) as (_a, bus_a), p1_link("pty", meters[1]) as (_b, bus_b):
        buses = [BusConfig(**{**_fields(bus_a), "name": "a"}), BusConfig(**{**_fields(bus_b), "name": "b"})]
        cfgs = [MeterConfig(serial="A-1", bus="a", model=VARIANT_MAPS["dsmr5"]),
                MeterConfig(serial="B-1", bus="b", model=VARIANT_MAPS["luxembourg-smarty"], key=KEY)]
        async with open_readers(buses, cfgs, maps) as readers:
            got = {s: await r.read() for s, r in readers.items()}
    assert got["A-1"].import_wh == meters[0].state.import_wh
    assert got["B-1"].export_wh == meters[1].state.export_wh


def _fields(bus: BusConfig) -> dict[str, object]:
    return {f: getattr(bus, f) for f in bus.__slots__}  # type: ignore[attr-defined]
