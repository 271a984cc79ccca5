"""Composition of meter access: builds one client per bus and a ``MeterReader`` per configured meter.

The daemon's composition root calls::

    cfg = load_config(Path("/etc/gridtokenx/edge.toml"))  # edge.config: cfg.buses, cfg.meters
    maps = load_maps(cfg.maps_dir)                       # edge.meters.maps
    async with open_readers(cfg.buses, cfg.meters, maps) as readers:   # dict[serial, MeterReader]
        sample = await readers["SDM630-0001234"].read()

and the CLI uses :func:`read_once` (``gridtokenx-edge read --meter SERIAL``) and :func:`scan`
(``gridtokenx-edge scan --port ...``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence

from edge.errors import ConfigError, MeterError
from edge.meters.base import MeterReader, MeterSample
from edge.meters.config import BusConfig, BusKind, MeterConfig, ScanHit
from edge.meters.dlms_push import DlmsPushBus, DlmsPushMeterReader
from edge.meters.dlms_reader import DlmsBus, DlmsMeterReader, scan_dlms
from edge.meters.frame_counters import FrameCounterStore
from edge.meters.maps import MeterMap, MeterProtocol
from edge.meters.modbus import Clock, ModbusBus, ModbusMeterReader, probe_check, wall_clock_ms
from edge.meters.p1_reader import P1MeterReader, scan_p1

__all__ = ["MeterSet", "ScanHit", "build_readers", "open_readers", "read_once", "scan"]


class MeterSet:
    """Readers keyed by meter serial plus the buses they share. Close it (or use :func:`open_readers`)."""

    def __init__(self) -> None:
        self.readers: dict[str, MeterReader] = {}
        self._modbus_buses: dict[str, ModbusBus] = {}
        self._dlms_buses: dict[str, DlmsBus] = {}
        self._push_buses: dict[str, DlmsPushBus] = {}

    async def start(self) -> None:
        """Start listening on push buses (pushes arrive between polls)."""
        for pbus in self._push_buses.values():
            await pbus.start()

    async def aclose(self) -> None:
        for reader in self.readers.values():
            await reader.close()
        for bus in self._modbus_buses.values():
            await bus.close()
        for dbus in self._dlms_buses.values():
            await dbus.close()
        for pbus in self._push_buses.values():
            await pbus.close()
        self._push_buses.clear()
        self.readers.clear()
        self._modbus_buses.clear()
        self._dlms_buses.clear()


def build_readers(
    buses: Sequence[BusConfig],
    meters: Sequence[MeterConfig],
    maps: Mapping[str, MeterMap],
    *,
    clock: Clock = wall_clock_ms,
    counters: FrameCounterStore | None = None,
) -> MeterSet:
    """Build (without connecting) one client per used bus and one reader per meter. Must run inside the loop.
    ``counters`` holds the invocation counters of ciphered DLMS meters (the gateway's state directory)."""
    by_name = {b.name: b for b in buses}
    result = MeterSet()
    for meter in meters:
        bus_cfg = by_name.get(meter.bus)
        meter_map = maps.get(meter.model)
        if bus_cfg is None or meter_map is None:
            raise ConfigError(f"meter {meter.serial}: unknown bus {meter.bus!r} or model {meter.model!r}")
        if meter_map.protocol is MeterProtocol.P1:
            p1 = P1MeterReader(meter, meter_map, bus_cfg, clock=clock)
            p1.start()  # P1 pushes: listen from now on, so the first tick finds a telegram
            result.readers[meter.serial] = p1
        elif meter_map.protocol is MeterProtocol.MODBUS:
            bus = result._modbus_buses.get(bus_cfg.name)
            if bus is None:
                bus = result._modbus_buses[bus_cfg.name] = ModbusBus(bus_cfg)
            result.readers[meter.serial] = ModbusMeterReader(meter, meter_map, bus, clock=clock)
        elif bus_cfg.kind is BusKind.DLMS_PUSH:
            pbus = result._push_buses.get(bus_cfg.name)
            if pbus is None:
                pbus = result._push_buses[bus_cfg.name] = DlmsPushBus(bus_cfg, counters)
            result.readers[meter.serial] = DlmsPushMeterReader(meter, meter_map, pbus, clock=clock)
        else:
            dbus = result._dlms_buses.get(bus_cfg.name)
            if dbus is None:
                dbus = result._dlms_buses[bus_cfg.name] = DlmsBus(bus_cfg, counters)
            result.readers[meter.serial] = DlmsMeterReader(meter, meter_map, dbus, clock=clock)
    return result


@contextlib.asynccontextmanager
async def open_readers(
    buses: Sequence[BusConfig],
    meters: Sequence[MeterConfig],
    maps: Mapping[str, MeterMap],
    *,
    clock: Clock = wall_clock_ms,
    counters: FrameCounterStore | None = None,
) -> AsyncIterator[dict[str, MeterReader]]:
    """``async with open_readers(...) as readers``: readers keyed by serial; every client is closed on exit."""
    meter_set = build_readers(buses, meters, maps, clock=clock, counters=counters)
    try:
        await meter_set.start()
        yield meter_set.readers
    finally:
        await meter_set.aclose()


async def read_once(
    bus: BusConfig, meter: MeterConfig, maps: Mapping[str, MeterMap], *, clock: Clock = wall_clock_ms,
    counters: FrameCounterStore | None = None, push_wait_s: float = 0.0,
) -> MeterSample:
    """One-shot read of one meter (for technicians). Raises MeterError when it does not answer. A pushing meter is
    listened to for up to ``push_wait_s`` seconds for its next notification."""
    async with open_readers([bus], [meter], maps, clock=clock, counters=counters) as readers:
        reader = readers[meter.serial]
        if bus.kind is BusKind.DLMS_PUSH and push_wait_s > 0:
            deadline = asyncio.get_running_loop().time() + push_wait_s
            while True:
                try:
                    return await reader.read()
                except MeterError:
                    if asyncio.get_running_loop().time() >= deadline:
                        raise
                    await asyncio.sleep(0.2)
        return await reader.read()


async def scan(
    bus: BusConfig, maps: Mapping[str, MeterMap], addresses: Iterable[int] = range(1, 248), *, listen_s: float = 11.0
) -> list[ScanHit]:
    """Probe each address on ``bus`` with every map's probes; name the models found.

    Modbus: ``addresses`` are unit ids, probed with each Modbus map's probe registers. DLMS: ``addresses`` are
    server logical addresses (dlms-tcp) or physical addresses (dlms-hdlc), probed as the public client with each
    DLMS map's probe OBIS codes. Silent addresses are left out; an address that answers but matches no map is
    listed without a model and with the reason (what it answered, or what it refused). Each probe is tried once (no
    retries) with the bus's timeout, so scanning all 247 ids of a silent RS-485 line takes 247 x timeout. P1: no
    addresses; the port is listened to (up to ``listen_s`` per serial setting) and the telegram's variant and model
    are named.
    """
    if bus.kind is BusKind.DLMS_PUSH:
        raise ConfigError(f"bus {bus.name}: a dlms-push bus is not scanned (its meters push); use read --meter")
    if bus.kind.protocol is MeterProtocol.P1:
        return await scan_p1(bus, maps, listen_s)
    if bus.kind.protocol is MeterProtocol.DLMS:
        return await scan_dlms(bus, maps, addresses)
    candidates = [m for m in maps.values() if m.protocol is MeterProtocol.MODBUS]
    hits: list[ScanHit] = []
    modbus_bus = ModbusBus(bus)
    try:
        for unit_id in addresses:
            found: list[MeterMap] = []
            why: list[str] = []
            for m in candidates:
                matched, reason = await probe_check(modbus_bus, unit_id, m.probes)
                if matched:
                    found.append(m)
                elif reason is not None:
                    why.append(f"{m.id}: {reason}")
            if found:
                hits.append(ScanHit(unit_id, tuple(m.id for m in found), tuple(m.model for m in found)))
            elif why:  # it answered, but no map's probes matched: say what it answered
                hits.append(ScanHit(unit_id, (), (), reason="answers, but no meter map matched: " + "; ".join(why)))
    finally:
        await modbus_bus.close()
    return hits
