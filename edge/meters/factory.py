"""Composition of meter access: builds one client per bus and a ``MeterReader`` per configured meter.

The daemon's composition root calls::

    maps = load_maps(cfg_maps_dir)                      # edge.meters.maps
    doc = TomlDoc.load("/etc/gridtokenx/edge.toml")      # edge.meters.tomldoc
    buses = parse_buses(doc); meters = parse_meters(doc, buses, maps)   # edge.meters.config
    async with open_readers(buses, meters, maps) as readers:            # dict[serial, MeterReader]
        sample = await readers["SDM630-0001234"].read()

and the CLI uses :func:`read_once` (``gridtokenx-edge read --meter SERIAL``) and :func:`scan`
(``gridtokenx-edge scan --port ...``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass

from edge.errors import ConfigError
from edge.meters.base import MeterReader, MeterSample
from edge.meters.config import BusConfig, MeterConfig
from edge.meters.maps import MeterMap, Protocol
from edge.meters.modbus import Clock, ModbusBus, ModbusMeterReader, probe_matches, wall_clock_ms


@dataclass(frozen=True, slots=True)
class ScanHit:
    """A device that answered a scan: its address on the bus and the model maps whose probes all matched."""

    address: int
    map_ids: tuple[str, ...]
    models: tuple[str, ...]


class MeterSet:
    """Readers keyed by meter serial plus the buses they share. Close it (or use :func:`open_readers`)."""

    def __init__(self) -> None:
        self.readers: dict[str, MeterReader] = {}
        self._modbus_buses: dict[str, ModbusBus] = {}
        self._closers: list[MeterReader] = []

    async def aclose(self) -> None:
        for reader in self._closers:
            await reader.close()
        for bus in self._modbus_buses.values():
            await bus.close()
        self.readers.clear()
        self._closers.clear()
        self._modbus_buses.clear()


def build_readers(
    buses: Sequence[BusConfig],
    meters: Sequence[MeterConfig],
    maps: Mapping[str, MeterMap],
    *,
    clock: Clock = wall_clock_ms,
) -> MeterSet:
    """Build (without connecting) one client per used bus and one reader per meter. Must run inside the loop."""
    by_name = {b.name: b for b in buses}
    result = MeterSet()
    for meter in meters:
        bus_cfg = by_name.get(meter.bus)
        meter_map = maps.get(meter.model)
        if bus_cfg is None or meter_map is None:
            raise ConfigError(f"meter {meter.serial}: unknown bus {meter.bus!r} or model {meter.model!r}")
        if meter_map.protocol is Protocol.MODBUS:
            bus = result._modbus_buses.get(bus_cfg.name)
            if bus is None:
                bus = result._modbus_buses[bus_cfg.name] = ModbusBus(bus_cfg)
            result.readers[meter.serial] = ModbusMeterReader(meter, meter_map, bus, clock=clock)
        else:
            raise ConfigError(f"meter {meter.serial}: DLMS meters are not supported by this build yet")
    return result


@contextlib.asynccontextmanager
async def open_readers(
    buses: Sequence[BusConfig],
    meters: Sequence[MeterConfig],
    maps: Mapping[str, MeterMap],
    *,
    clock: Clock = wall_clock_ms,
) -> AsyncIterator[dict[str, MeterReader]]:
    """``async with open_readers(...) as readers``: readers keyed by serial; every client is closed on exit."""
    meter_set = build_readers(buses, meters, maps, clock=clock)
    try:
        yield meter_set.readers
    finally:
        await meter_set.aclose()


async def read_once(
    bus: BusConfig, meter: MeterConfig, maps: Mapping[str, MeterMap], *, clock: Clock = wall_clock_ms
) -> MeterSample:
    """One-shot read of one meter (for technicians). Raises MeterError when it does not answer."""
    async with open_readers([bus], [meter], maps, clock=clock) as readers:
        return await readers[meter.serial].read()


async def scan(bus: BusConfig, maps: Mapping[str, MeterMap], addresses: Iterable[int] = range(1, 248)) -> list[ScanHit]:
    """Probe each Modbus unit id on ``bus`` with every map's probe registers; name the models found.

    Unit ids that stay silent or refuse every probe are left out. Each probe request is tried once (no retries),
    with the bus's timeout; scanning all 247 ids of a silent RS-485 line takes 247 x timeout.
    """
    if bus.kind.protocol is not Protocol.MODBUS:
        raise ConfigError(f"bus {bus.name}: scanning {bus.kind.value} is not supported by this build yet")
    candidates = [m for m in maps.values() if m.protocol is Protocol.MODBUS]
    hits: list[ScanHit] = []
    modbus_bus = ModbusBus(bus)
    try:
        for unit_id in addresses:
            found = [m for m in candidates if await probe_matches(modbus_bus, unit_id, m.probes)]
            if found:
                hits.append(ScanHit(unit_id, tuple(m.id for m in found), tuple(m.model for m in found)))
    finally:
        await modbus_bus.close()
    return hits
