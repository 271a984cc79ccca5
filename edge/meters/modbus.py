"""Modbus TCP / RTU adapter: one pymodbus async client per bus, serialised, with retries and back-off.

pymodbus errors never leave this module: they become ``MeterError``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from fractions import Fraction

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from edge.errors import MeterError
from edge.meters.base import MeterSample
from edge.meters.config import BusConfig, BusKind, MeterConfig
from edge.meters.convert import build_sample, decode_words, physical
from edge.meters.maps import Block, Function, MeterMap, ModbusPoint, Probe

log = logging.getLogger(__name__)

Clock = Callable[[], int]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class ModbusBus:
    """One physical bus (an RS-485 line or a TCP gateway): one client, one request at a time.

    Requests from all meters on the bus go through :meth:`read_registers`, which holds the bus lock for the whole
    request including retries, keeps ``inter_request_delay_s`` of silence between requests and retries failed
    requests with exponential back-off. Exception responses from the device (illegal address, ...) are not retried.
    """

    def __init__(self, cfg: BusConfig, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if cfg.kind.protocol.value != "modbus":
            raise ValueError(f"bus {cfg.name} is not a Modbus bus")
        self.cfg = cfg
        self._sleep = sleep
        self._lock = asyncio.Lock()
        self._last_request = 0.0
        #: Units whose last attempt got no answer: they get one attempt, not 1 + retries, until they answer again,
        #: so a dead meter holds a shared bus (RS-485 is silent for a missing unit) for one timeout per tick and
        #: does not starve the meters that answer.
        self._silent: set[int] = set()
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if cfg.kind is BusKind.MODBUS_RTU:
            assert cfg.device is not None
            self._client = AsyncModbusSerialClient(
                cfg.device,
                framer=FramerType.RTU,
                baudrate=cfg.baudrate,
                bytesize=cfg.bytesize,
                parity=cfg.parity,
                stopbits=cfg.stopbits,
                timeout=cfg.timeout_s,
                retries=0,
                reconnect_delay=0,
            )
        else:
            assert cfg.host is not None
            assert cfg.port is not None
            framer = FramerType.RTU if cfg.kind is BusKind.MODBUS_RTU_OVER_TCP else FramerType.SOCKET
            self._client = AsyncModbusTcpClient(
                cfg.host, port=cfg.port, framer=framer, timeout=cfg.timeout_s, retries=0, reconnect_delay=0
            )

    @property
    def name(self) -> str:
        return self.cfg.name

    async def _once(self, unit_id: int, function: Function, address: int, count: int) -> list[int]:
        if not self._client.connected:
            ok = await self._client.connect()
            if not ok:
                raise MeterError(f"bus {self.name}: cannot connect to {self.cfg.address}")
        if function is Function.HOLDING:
            rr = await self._client.read_holding_registers(address, count=count, device_id=unit_id)
        else:
            rr = await self._client.read_input_registers(address, count=count, device_id=unit_id)
        if rr.isError():
            code = getattr(rr, "exception_code", None)
            request = f"{function.value} {address}+{count}"
            raise _DeviceRefusedError(f"unit {unit_id} refused {request} (exception code {code})")
        registers = list(rr.registers)
        if len(registers) < count:
            raise MeterError(f"unit {unit_id}: short answer ({len(registers)} of {count} registers)")
        return registers[:count]

    async def read_registers(
        self, unit_id: int, function: Function, address: int, count: int, *, retries: int | None = None
    ) -> list[int]:
        attempts = 1 + (self.cfg.retries if retries is None else retries)
        if unit_id in self._silent:
            attempts = 1
        reason = "no attempt"
        async with self._lock:
            for attempt in range(attempts):
                if attempt:
                    await self._sleep(self.cfg.backoff_s * 2 ** (attempt - 1))
                quiet = self._last_request + self.cfg.inter_request_delay_s - time.monotonic()
                if quiet > 0:
                    await self._sleep(quiet)
                try:
                    registers = await self._once(unit_id, function, address, count)
                except _DeviceRefusedError as exc:
                    self._silent.discard(unit_id)
                    raise ModbusRefusedError(f"bus {self.name}: {exc}") from None
                except (ModbusException, OSError, TimeoutError, MeterError) as exc:
                    self._silent.add(unit_id)
                    reason = str(exc) or type(exc).__name__
                    log.debug("bus %s unit %s attempt %d failed: %s", self.name, unit_id, attempt + 1, reason)
                else:
                    self._silent.discard(unit_id)
                    return registers
                finally:
                    self._last_request = time.monotonic()
        raise MeterError(f"bus {self.name}: unit {unit_id} did not answer after {attempts} attempt(s): {reason}")

    async def close(self) -> None:
        self._client.close()
        # Let the transport finish closing so no socket/fd is left for the GC (filterwarnings=error in tests).
        await asyncio.sleep(0)


class _DeviceRefusedError(Exception):
    """The device answered with a Modbus exception response."""


class ModbusRefusedError(MeterError):
    """The device answered, with a Modbus exception response (it is there, but refused the request)."""


def _plan(points: list[ModbusPoint], blocks: tuple[Block, ...]) -> list[tuple[Function, int, int]]:
    """Reads needed for ``points``: every block containing one of them, plus single reads for the rest."""
    reads = [(b.function, b.start, b.count) for b in blocks if any(b.contains(p) for p in points)]
    for p in points:
        if not any(b.contains(p) for b in blocks):
            key = (p.function, p.address, p.count)
            if key not in reads:
                reads.append(key)
    return reads


class RegisterImage:
    """Registers fetched in one poll, addressed by (function, address)."""

    def __init__(self) -> None:
        self._regs: dict[tuple[Function, int], int] = {}

    def put(self, function: Function, start: int, words: list[int]) -> None:
        for i, w in enumerate(words):
            self._regs[(function, start + i)] = w

    def get(self, p: ModbusPoint) -> list[int]:
        try:
            return [self._regs[(p.function, p.address + i)] for i in range(p.count)]
        except KeyError:
            raise MeterError(f"register {p.function.value} {p.address} was not read") from None


async def read_points(bus: ModbusBus, unit_id: int, meter_map: MeterMap) -> Mapping[str, Fraction]:
    """Read every measurement of ``meter_map`` and return exact base-unit values."""
    points: list[ModbusPoint] = []
    for m in meter_map.measurements.values():
        assert m.modbus is not None
        points.append(m.modbus)
        if m.scale_register is not None:
            points.append(m.scale_register)
    image = RegisterImage()
    for function, start, count in _plan(points, meter_map.blocks):
        image.put(function, start, await bus.read_registers(unit_id, function, start, count))
    values: dict[str, Fraction] = {}
    for name, m in meter_map.measurements.items():
        assert m.modbus is not None
        raw = decode_words(image.get(m.modbus), m.modbus.type, m.modbus.word_order)
        exponent = 0
        if m.scale_register is not None:
            sr = m.scale_register
            exponent = int(decode_words(image.get(sr), sr.type, sr.word_order))
            if exponent == -0x8000:  # SunSpec "not implemented"
                raise MeterError(f"{name}: scale factor not implemented by the device")
        values[name] = physical(raw, m, exponent)
    return values


async def probe_check(bus: ModbusBus, unit_id: int, probes: tuple[Probe, ...]) -> tuple[bool, str | None]:
    """(matched, why not): ``why not`` says what the unit answered when it answered but did not match, and is None
    when it stayed silent."""
    for probe in probes:
        assert probe.modbus is not None
        p = probe.modbus
        where = f"{p.function.value} register 0x{p.address:04X}"
        try:
            words = await bus.read_registers(unit_id, p.function, p.address, p.count, retries=0)
        except ModbusRefusedError as e:
            return False, f"{where} refused ({str(e).split(': ', 1)[-1]})"
        except MeterError:
            return False, None
        value = decode_words(words, p.type, p.word_order)
        if value not in probe.equals:
            shown = f"0x{value:04X}" if isinstance(value, int) else repr(value)
            expected = " or ".join(f"0x{v:04X}" for v in sorted(probe.equals))
            return False, f"{where} reads {shown}, expected {expected}"
    return True, None


class ModbusMeterReader:
    """A ``MeterReader`` for one Modbus meter on a shared :class:`ModbusBus`."""

    def __init__(
        self, cfg: MeterConfig, meter_map: MeterMap, bus: ModbusBus, *, clock: Clock = wall_clock_ms
    ) -> None:
        self._cfg, self._map, self._bus, self._clock = cfg, meter_map, bus, clock

    @property
    def serial(self) -> str:
        return self._cfg.serial

    @property
    def meter_map(self) -> MeterMap:
        return self._map

    async def read(self) -> MeterSample:
        timestamp_ms = self._clock()
        try:
            values = await read_points(self._bus, self._cfg.unit_id, self._map)
            return build_sample(timestamp_ms, values)
        except MeterError as exc:
            raise MeterError(f"meter {self.serial} ({self._map.id}): {exc}") from None

    async def close(self) -> None:
        """The bus is owned by the factory and closed there."""
