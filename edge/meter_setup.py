"""Meter access for the daemon and the CLI, through ``edge.meters`` (maps, ``[[bus]]``/``[[meter]]`` parsing,
reader factory, one-shot read, scan)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass

from edge.config import EdgeConfig
from edge.daemon import MeterInfo, MeterList, MeterSource
from edge.errors import ConfigError, MeterError
from edge.meters.config import BusConfig, BusKind, MeterConfig, check_models
from edge.meters.factory import open_readers, read_once, scan
from edge.meters.frame_counters import FrameCounterStore
from edge.meters.maps import MeterMap, MeterProtocol, default_maps_dir, load_maps
from gtxconfig import Document

SERIAL_MAX = 32  # protocol §1 Reading record: the serial travels in every signed record


@dataclass(frozen=True, slots=True)
class MeterPlan:
    buses: tuple[BusConfig, ...]
    meters: tuple[MeterConfig, ...]
    maps: Mapping[str, MeterMap]


def plan(cfg: EdgeConfig) -> MeterPlan:
    """Load the meter maps and check the config's meters against them (errors name the line)."""
    maps = load_maps(cfg.maps_dir or default_maps_dir())
    buses, meters = cfg.buses, cfg.meters
    check_models(cfg.document or Document.from_mapping(str(cfg.source), {}, ConfigError), meters, buses, maps)
    for m in meters:
        if len(m.serial) > SERIAL_MAX:
            raise ConfigError(f"{cfg.source}: meter {m.serial!r}: serial longer than {SERIAL_MAX} characters")
    return MeterPlan(buses, meters, maps)


def _address(bus: BusConfig, meter: MeterConfig) -> str:
    if bus.kind.protocol is MeterProtocol.P1:
        return bus.address
    if bus.kind.protocol.value == "modbus":
        return f"{bus.address} unit {meter.unit_id}"
    return f"{bus.address} server {meter.server_address}"


def describe(p: MeterPlan) -> list[MeterInfo]:
    by_name = {b.name: b for b in p.buses}
    out = []
    for m in p.meters:
        bus = by_name[m.bus]
        model = p.maps[m.model]
        skew = m.max_clock_skew_s if model.protocol is MeterProtocol.P1 else 0
        out.append(MeterInfo(m.serial, str(bus.kind), _address(bus, m), model.model, m.poll_interval_s, skew))
    return out


def meter_source(cfg: EdgeConfig) -> MeterSource:
    """Validate now (so ``run`` fails at start with a clear error), open the buses when the daemon starts."""
    p = plan(cfg)
    infos = describe(p)

    @contextlib.asynccontextmanager
    async def source() -> AsyncIterator[MeterList]:
        counters = _counters(cfg, p.meters)
        try:
            async with open_readers(p.buses, p.meters, p.maps, counters=counters) as readers:
                yield [(info, readers[info.serial]) for info in infos]
        finally:
            if counters is not None:
                counters.close()

    return source


def _counters(cfg: EdgeConfig, meters: Sequence[MeterConfig]) -> FrameCounterStore | None:
    """The invocation-counter store in the state directory, when a meter has keys (our counters; a pushing
    meter's last one)."""
    return FrameCounterStore.in_state_dir(cfg.state_dir) if any(m.keys is not None for m in meters) else None


def read_command(cfg: EdgeConfig, serial: str) -> int:
    """``gridtokenx-edge read --meter SERIAL``: one read, printed for a technician. Nothing is signed or stored."""
    p = plan(cfg)
    meter = next((m for m in p.meters if m.serial == serial), None)
    if meter is None:
        known = ", ".join(m.serial for m in p.meters) or "none"
        raise ConfigError(f"{cfg.source}: no [[meter]] with serial {serial!r} (configured: {known})")
    bus = next(b for b in p.buses if b.name == meter.bus)
    info = next(i for i in describe(p) if i.serial == serial)
    print(f"meter   {serial}  model {info.model}  at {info.address} ({info.protocol})")
    counters = _counters(cfg, [meter])
    try:
        sample = asyncio.run(read_once(bus, meter, p.maps, counters=counters, push_wait_s=bus.timeout_s))
    except MeterError as e:
        print(f"NO ANSWER: {e}")
        return 1
    finally:
        if counters is not None:
            counters.close()
    print(f"import  {sample.import_wh} Wh")
    print(f"export  {sample.export_wh} Wh")
    print(f"power   {'n/a' if sample.power_w is None else f'{sample.power_w} W'}")
    if sample.meter_time_ms is not None:
        offset_s = (sample.meter_time_ms - sample.timestamp_ms) / 1000
        print(f"clock   meter {sample.meter_time_ms} ms, {offset_s:+.0f} s against the gateway")
    for k, v in sorted(sample.extra.items()):
        print(f"{k:<7} {v:g}")
    return 0


def _ids(text: str) -> list[int]:
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            out.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ConfigError(f"--ids {text!r}: expected e.g. 1-247 or 1,2,5") from None
    if not out or min(out) < 0 or max(out) > 247:
        raise ConfigError(f"--ids {text!r}: unit ids are 0..247")
    return out


def _bus_for(port: str, kind: str | None, buses: Sequence[BusConfig]) -> BusConfig:
    named = next((b for b in buses if b.name == port), None)
    if named is not None:
        return named
    if ":" in port and not port.startswith("/"):
        host, _, tcp_port = port.rpartition(":")
        try:
            return BusConfig(name="scan", kind=BusKind(kind or "modbus-tcp"), host=host, port=int(tcp_port))
        except ValueError:
            raise ConfigError(f"--port {port!r} / --kind {kind!r}: not a usable TCP bus") from None
    try:
        bus_kind = BusKind(kind or "modbus-rtu")
        return BusConfig(name="scan", kind=bus_kind, device=port,
                         baudrate=115_200 if bus_kind is BusKind.P1_SERIAL else 9600)
    except ValueError:
        raise ConfigError(f"--kind {kind!r}: one of {', '.join(k.value for k in BusKind)}") from None


def scan_command(cfg: EdgeConfig, port: str, kind: str | None, ids: str, listen_s: float = 11.0) -> int:
    """``gridtokenx-edge scan --port …``: probe unit ids with each map's probe registers; name the models found.
    On a P1 port: listen for a telegram, name its variant (and serial settings) and the model."""
    maps = load_maps(cfg.maps_dir or default_maps_dir())
    buses = cfg.buses
    bus = _bus_for(port, kind, buses)
    if bus.kind.protocol is MeterProtocol.P1:
        print(f"listening on {bus.address} ({bus.kind}) for a P1 telegram …")
        try:
            found = asyncio.run(scan(bus, maps, listen_s=listen_s))
        except MeterError as e:
            print(f"NO P1 STREAM: {e}")
            return 1
        if not found:
            print("no P1 telegram heard (check the cable, that the port is enabled, and the serial settings)")
            return 1
        hit = found[0]
        print(hit.detail)
        if not hit.models:
            print("no meter map names it: its header matches no map of this variant (add a map, or use a generic one)")
            return 1
        print(f"model   {', '.join(hit.models)}  (map {', '.join(hit.map_ids)})")
        return 0
    addresses = _ids(ids)
    print(f"scanning {bus.address} ({bus.kind}) unit ids {addresses[0]}..{addresses[-1]} …")
    hits = asyncio.run(scan(bus, maps, addresses))
    named = [h for h in hits if h.map_ids]
    for h in hits:
        if h.map_ids:
            print(f"unit {h.address:>3}: {', '.join(h.models)}  (map {', '.join(h.map_ids)})")
        else:
            print(f"unit {h.address:>3}: not named -- {h.reason}")
    print(f"{len(named)} meter(s) found" + (f", {len(hits) - len(named)} unit(s) answered but not named"
                                            if len(hits) > len(named) else ""))
    return 0 if named else 1
