"""Simulated Modbus meters served by a real pymodbus server (TCP, or RTU on a serial device such as a pty).

A simulated meter speaks exactly the register map of a model file (``firmware-config/meters/*.toml``): probe
registers hold the model's identification values, measurement registers are encoded with the map's type, word
order, scale and unit, so what the edge reads back goes through the same code path as a real meter. Values are
computed when a request arrives, from a :class:`~edge.simulator.profiles.SimulatedRegisters` and an injectable
time source.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from fractions import Fraction
from types import TracebackType

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from edge.meters.convert import encode_words
from edge.meters.maps import DataType, Function, MeterMap, MeterProtocol, Quantity
from edge.simulator.profiles import SimulatedRegisters, TimeSource

_RANGES = {
    DataType.U16: (0, 0xFFFF),
    DataType.I16: (-0x8000, 0x7FFF),
    DataType.U32: (0, 0xFFFF_FFFF),
    DataType.I32: (-0x8000_0000, 0x7FFF_FFFF),
    DataType.U64: (0, 2**64 - 1),
}


def _exponent(quantity: Quantity) -> int:
    # SunSpec-style scale factors the simulator announces: whole Wh/W, hundredths for V, A, Hz.
    return 0 if quantity in (Quantity.ENERGY, Quantity.POWER) else -2


def encode_registers(meter_map: MeterMap, values: dict[str, float]) -> dict[tuple[Function, int], int]:
    """Register image of ``meter_map`` holding ``values`` (base units). Energy is truncated, never rounded up."""
    if meter_map.protocol is not MeterProtocol.MODBUS:
        raise ValueError(f"{meter_map.id} is not a Modbus map")
    regs: dict[tuple[Function, int], int] = {}

    def put(function: Function, address: int, words: Sequence[int]) -> None:
        for i, w in enumerate(words):
            regs[(function, address + i)] = w

    for probe in meter_map.probes:
        assert probe.modbus is not None
        p = probe.modbus
        put(p.function, p.address, encode_words(min(probe.equals), p.type, p.word_order))
    for name, m in meter_map.measurements.items():
        assert m.modbus is not None
        p = m.modbus
        value = values.get(name, 0.0)
        exponent = 0
        if m.scale_register is not None:
            exponent = _exponent(m.quantity)
            sr = m.scale_register
            put(sr.function, sr.address, encode_words(exponent, sr.type, sr.word_order))
        divisor = float(m.scale * m.unit_factor * Fraction(10) ** exponent)
        raw = value / divisor
        if p.type.is_float:
            put(p.function, p.address, encode_words(raw, p.type, p.word_order))
            continue
        number = math.floor(raw) if m.quantity is Quantity.ENERGY else round(raw)
        lo, hi = _RANGES[p.type]
        put(p.function, p.address, encode_words(min(max(number, lo), hi), p.type, p.word_order))
    return regs


class SimulatedModbusMeter:
    """One simulated meter: a unit id, a register map, a profile state and a time source."""

    def __init__(self, unit_id: int, meter_map: MeterMap, state: SimulatedRegisters, time_source: TimeSource) -> None:
        self.unit_id = unit_id
        self.meter_map = meter_map
        self.state = state
        self.time_source = time_source
        #: When False the meter stays silent (the client times out), like a meter with a cut bus line.
        self.online = True
        self.requests = 0

    def image(self) -> dict[tuple[Function, int], int]:
        return encode_registers(self.meter_map, self.state.snapshot(self.time_source()))

    def _layout(self, function: Function) -> list[SimData]:
        addresses = sorted({a for (f, a) in self.image() if f is function})
        if not addresses:
            return [SimData(address=0, values=0, datatype=SimType.REGISTERS)]
        span = addresses[-1] - addresses[0] + 1
        return [SimData(address=addresses[0], count=span, values=0, datatype=SimType.REGISTERS)]

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self.requests += 1
        if not self.online:
            raise NoSuchIdException(f"unit {self.unit_id} offline")  # server set to stay silent for these
        if set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION  # a meter is read-only for the edge
        function = Function.HOLDING if function_code == 3 else Function.INPUT
        image = self.image()
        for i in range(count):
            registers[address - start_address + i] = image.get((function, address + i), 0)
        return None

    def device(self) -> SimDevice:
        bits = [SimData(address=0, values=False, datatype=SimType.BITS)]
        return SimDevice(
            id=self.unit_id,
            simdata=(bits, list(bits), self._layout(Function.HOLDING), self._layout(Function.INPUT)),
            action=self._action,
        )


async def _silent(*_request: object) -> ExcCodes | None:
    raise NoSuchIdException("no such unit on this bus")


class ModbusSimulator:
    """A pymodbus server carrying several simulated meters (several unit ids on one TCP port or one serial line).

    Use as ``async with ModbusSimulator.tcp(meters, port=...)`` or ``ModbusSimulator.rtu(meters, device=...)``.
    """

    def __init__(self, meters: Sequence[SimulatedModbusMeter], *, host: str = "127.0.0.1", port: int | None = None,
                 device: str | None = None, baudrate: int = 9600) -> None:
        if (port is None) == (device is None):
            raise ValueError("give either a TCP port or a serial device")
        self.meters = list(meters)
        self.host, self.port, self.device, self.baudrate = host, port, device, baudrate
        self._server: ModbusTcpServer | ModbusSerialServer | None = None

    @classmethod
    def tcp(cls, meters: Sequence[SimulatedModbusMeter], *, port: int, host: str = "127.0.0.1") -> ModbusSimulator:
        return cls(meters, host=host, port=port)

    @classmethod
    def rtu(cls, meters: Sequence[SimulatedModbusMeter], *, device: str, baudrate: int = 9600) -> ModbusSimulator:
        return cls(meters, device=device, baudrate=baudrate)

    async def start(self) -> None:
        devices = [m.device() for m in self.meters]
        # pymodbus' SimCore answers unknown unit ids with an exception response (KeyError inside); a real bus is
        # silent. A catch-all device (id 0 = "every id not defined") that raises NoSuchIdException makes it so; its
        # data spans every address, or SimCore would answer "illegal data address" before calling the action.
        bits = [SimData(address=0, values=False, datatype=SimType.BITS)]
        every = [SimData(address=0, count=0x10000, values=0, datatype=SimType.REGISTERS)]
        devices.append(SimDevice(id=0, simdata=(bits, list(bits), every, list(every)), action=_silent))
        if self.port is not None:
            self._server = ModbusTcpServer(
                devices, address=(self.host, self.port), framer=FramerType.SOCKET, ignore_missing_devices=True
            )
        else:
            assert self.device is not None
            self._server = ModbusSerialServer(
                devices,
                port=self.device,
                framer=FramerType.RTU,
                baudrate=self.baudrate,
                reconnect_delay=0,
                ignore_missing_devices=True,
            )
        await self._server.serve_forever(background=True)

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
            await asyncio.sleep(0)

    async def __aenter__(self) -> ModbusSimulator:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
