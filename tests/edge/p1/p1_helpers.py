"""Helpers for the P1 tests: a simulated meter of each variant, its map and its bus/meter config."""

from __future__ import annotations

from edge.meters.config import BusConfig, BusKind, MeterConfig
from edge.simulator.p1 import MAP_IDS, SimulatedP1Meter
from edge.simulator.profiles import Kind, ManualClock, Profile, SimulatedRegisters

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
#: variant -> the shipped map whose probe names the simulator's header
VARIANT_MAPS = MAP_IDS


def sim_meter(variant: str, clock: ManualClock, *, key: bytes | None = None, import_wh: int = 1_234_567,
              export_wh: int = 456_789) -> SimulatedP1Meter:
    state = SimulatedRegisters(Profile(Kind.PROSUMER, seed=3), clock.now - 3600, import_wh=import_wh,
                               export_wh=export_wh)
    if variant == "luxembourg-smarty" and key is None:
        key = KEY
    return SimulatedP1Meter(variant, state, clock, key=key)


def p1_bus(*, device: str | None = None, port: int | None = None) -> BusConfig:
    if device is not None:
        return BusConfig(name="p1", kind=BusKind.P1_SERIAL, device=device, baudrate=115_200)
    return BusConfig(name="p1", kind=BusKind.P1_TCP, host="127.0.0.1", port=port, timeout_s=2.0)


def p1_meter(variant: str, *, key: bytes = b"", stale_after_s: int = 3, serial: str = "P1-0001") -> MeterConfig:
    if variant == "luxembourg-smarty" and not key:
        key = KEY
    return MeterConfig(serial=serial, bus="p1", model=VARIANT_MAPS[variant], key=key, stale_after_s=stale_after_s)
