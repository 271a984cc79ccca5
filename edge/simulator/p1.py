"""A simulated DSMR P1 meter: telegrams of several variants with a correct CRC16, plain or encrypted (DLMS suite 0,
AES-128-GCM as Luxembourg Smarty meters send them), pushed every ``period_s`` over TCP (like ser2net or a Wi-Fi
dongle) and/or a serial device (a pty pair in tests and the demo).

Faults for tests: :attr:`P1Simulator.paused` stops the stream; :meth:`P1Simulator.inject` makes the next telegram
carry a wrong CRC (``"crc"``) or stop half-way (``"truncate"``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge.p1.crc import crc16
from edge.p1.variants import SMARTY_AUTHENTICATION_KEY
from edge.simulator.profiles import SimulatedRegisters, TimeSource

_DSMR_TZ = ZoneInfo("Europe/Amsterdam")  # DSMR timestamps are local (CET/CEST) with an S/W flag

#: variant -> (header the simulator announces, encrypted)
HEADERS = {
    "dsmr2.2": "/ISk5\\2ME382-1003",
    "dsmr4": "/KFM5KAIFA-METER",
    "dsmr5": "/ISk5\\2M550E-1011",
    "belgium": "/FLU5\\253769484_A",
    "luxembourg-smarty": "/Lux5\\u2SAG00001234",
}
#: variant -> the shipped meter map whose probe names the simulator's header (firmware-config/meters)
MAP_IDS = {
    "dsmr2.2": "dsmr22-generic",
    "dsmr4": "kaifa-ma309-nl",
    "dsmr5": "iskraemeco-am550-nl",
    "belgium": "sagemcom-s211-be",
    "luxembourg-smarty": "sagemcom-t210-d-lu",
}
SYSTEM_TITLE = b"SAG" + bytes.fromhex("1005001234")


def kwh(wh: int, integer_digits: int = 6) -> str:
    """Exact Wh -> the telegram's fixed-point kWh text (``001234.567``)."""
    return f"{wh // 1000:0{integer_digits}d}.{wh % 1000:03d}"


def dsmr_time(unix_s: float) -> str:
    local = datetime.fromtimestamp(int(unix_s), tz=UTC).astimezone(_DSMR_TZ)
    return local.strftime("%y%m%d%H%M%S") + ("S" if local.dst() else "W")


@dataclass(frozen=True, slots=True)
class Registers:
    import_wh: int
    export_wh: int
    power_w: int  # positive = import
    voltage_dv: int = 2301  # 0.1 V

    @property
    def tariffs(self) -> tuple[int, int, int, int]:
        """Import and export split over tariffs 1 and 2, each monotonic, summing exactly to the totals."""
        i1, e1 = self.import_wh * 2 // 5, self.export_wh * 3 // 5
        return i1, self.import_wh - i1, e1, self.export_wh - e1


def telegram(variant: str, r: Registers, *, when_s: float, equipment: str = "E0044007654321617",
             header: str | None = None) -> bytes:
    """One plaintext telegram of ``variant`` (for luxembourg-smarty: the plaintext inside the encryption)."""
    i1, i2, e1, e2 = r.tariffs
    imp_kw, exp_kw = (max(r.power_w, 0), max(-r.power_w, 0))
    eq = equipment.encode().hex().upper()
    head = header or HEADERS[variant]
    if variant == "dsmr2.2":
        lines = [head, "", f"0-0:96.1.1({eq})", f"1-0:1.8.1({kwh(i1, 5)}*kWh)", f"1-0:1.8.2({kwh(i2, 5)}*kWh)",
                 f"1-0:2.8.1({kwh(e1, 5)}*kWh)", f"1-0:2.8.2({kwh(e2, 5)}*kWh)", "0-0:96.14.0(0001)",
                 f"1-0:1.7.0({imp_kw // 1000:04d}.{imp_kw % 1000 // 10:02d}*kW)",
                 f"1-0:2.7.0({exp_kw // 1000:04d}.{exp_kw % 1000 // 10:02d}*kW)", "0-0:17.0.0(999*A)",
                 "0-0:96.3.10(1)", "0-0:96.13.1()", "0-0:96.13.0()"]
        return ("\r\n".join(lines) + "\r\n!\r\n").encode()
    power = [f"1-0:1.7.0({kwh(imp_kw, 2)}*kW)", f"1-0:2.7.0({kwh(exp_kw, 2)}*kW)"]
    volts = f"1-0:32.7.0({r.voltage_dv // 10:03d}.{r.voltage_dv % 10}*V)"
    stamp = f"0-0:1.0.0({dsmr_time(when_s)})"
    if variant == "luxembourg-smarty":
        lines = [head, "", "1-3:0.2.8(42)", stamp, f"0-0:42.0.0({eq})",
                 f"1-0:1.8.0({kwh(r.import_wh)}*kWh)", f"1-0:2.8.0({kwh(r.export_wh)}*kWh)",
                 "1-0:3.8.0(000123.456*kvarh)", "1-0:4.8.0(000012.345*kvarh)", *power, volts,
                 "1-0:31.7.0(002*A)", "0-0:96.3.10(1)", "0-0:17.0.0(999.9*kVA)"]
    else:
        version = {"dsmr4": "1-3:0.2.8(42)", "dsmr5": "1-3:0.2.8(50)", "belgium": "0-0:96.1.4(50217)"}[variant]
        lines = [head, "", version, stamp, f"0-0:96.1.1({eq})",
                 f"1-0:1.8.1({kwh(i1)}*kWh)", f"1-0:1.8.2({kwh(i2)}*kWh)",
                 f"1-0:2.8.1({kwh(e1)}*kWh)", f"1-0:2.8.2({kwh(e2)}*kWh)", "0-0:96.14.0(0002)", *power,
                 "0-0:96.7.21(00004)", "0-0:96.7.9(00002)",
                 "1-0:99.97.0(1)(0-0:96.7.19)(101208152415W)(0000000240*s)", volts, "1-0:31.7.0(002*A)"]
    body = ("\r\n".join(lines) + "\r\n!").encode()
    return body + f"{crc16(body):04X}\r\n".encode()


def encrypt(plain: bytes, key: bytes, frame_counter: int, *, system_title: bytes = SYSTEM_TITLE,
            auth_key: bytes = SMARTY_AUTHENTICATION_KEY) -> bytes:
    """A general-glo-ciphering APDU (suite 0, authenticated and encrypted), as a Smarty meter sends it."""
    sc = 0x30
    iv = system_title + frame_counter.to_bytes(4, "big")
    sealed = AESGCM(key).encrypt(iv, plain, bytes([sc]) + auth_key)  # ciphertext + 16-byte tag
    body = bytes([sc]) + frame_counter.to_bytes(4, "big") + sealed[:-16] + sealed[-16:-4]  # 12-byte tag
    return bytes([0xDB, len(system_title)]) + system_title + b"\x82" + len(body).to_bytes(2, "big") + body


@dataclass
class SimulatedP1Meter:
    """One meter: its variant, registers driven by a household profile, and (encrypted variants) its key."""

    variant: str
    state: SimulatedRegisters
    clock: TimeSource
    key: bytes | None = field(default=None, repr=False)
    #: seconds the meter's own clock is off from real time (the clock alarm in tests)
    clock_offset_s: float = 0.0
    header: str | None = None
    frame_counter: int = 1

    def registers(self) -> Registers:
        snap = self.state.snapshot(self.clock())
        return Registers(self.state.import_wh, self.state.export_wh, round(snap["power_active"]),
                         round(snap["voltage_l1"] * 10))

    def frame(self) -> bytes:
        plain = telegram(self.variant, self.registers(), when_s=time.time() + self.clock_offset_s,
                         header=self.header)
        if self.key is None:
            return plain
        self.frame_counter += 1
        return encrypt(plain, self.key, self.frame_counter)


class P1Simulator:
    """Pushes one meter's telegrams every ``period_s`` to every TCP client and to a serial device."""

    def __init__(self, meter: SimulatedP1Meter, *, period_s: float = 1.0) -> None:
        self.meter = meter
        self.period_s = period_s
        self.paused = False
        self.sent = 0
        self._faults: list[str] = []
        self._writers: list[asyncio.StreamWriter] = []
        self._fd: int | None = None
        self._server: asyncio.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None
        self.on_frame: Callable[[bytes], None] | None = None

    def inject(self, fault: str) -> None:
        if fault not in ("crc", "truncate"):
            raise ValueError(f"unknown fault {fault!r}")
        self._faults.append(fault)

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        async def client(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._writers.append(writer)

        self._server = await asyncio.start_server(client, host, port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self._start()
        return self.port

    def serve_serial(self, device: str) -> None:
        fd = os.open(device, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        with contextlib.suppress(OSError):
            tty.setraw(fd)
        self._fd = fd
        self._start()

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._push(), name="p1 simulator")

    def _next(self) -> bytes:
        data = self.meter.frame()
        fault = self._faults.pop(0) if self._faults else None
        if fault == "crc":
            at = data.find(b"1-0:1.8.")  # change a digit of a register: the CRC no longer matches
            at = data.find(b"(", at) + 1
            data = data[:at] + (b"9" if data[at : at + 1] != b"9" else b"8") + data[at + 1 :]
        elif fault == "truncate":
            data = data[: len(data) // 2]
        return data

    async def _push(self) -> None:
        while True:
            if not self.paused:
                data = self._next()
                self.sent += 1
                if self.on_frame is not None:
                    self.on_frame(data)
                for w in list(self._writers):
                    if w.is_closing():
                        self._writers.remove(w)
                        continue
                    w.write(data)
                if self._fd is not None:
                    with contextlib.suppress(BlockingIOError, OSError):
                        os.write(self._fd, data)
            await asyncio.sleep(self.period_s)

    def disconnect_clients(self) -> None:
        for w in self._writers:
            w.close()
        self._writers.clear()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.disconnect_clients()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    async def __aenter__(self) -> P1Simulator:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
