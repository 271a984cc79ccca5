"""DSMR P1 meters as ``MeterReader``s: the meter pushes a telegram every 1–10 s; a task per meter keeps reading its
port (serial via pyserial, or TCP: ser2net and Wi-Fi P1 dongles) and keeps the newest complete, checked telegram;
``read`` (the poller's tick) converts that one. Nothing is invented: a telegram that fails its CRC or cannot be
decrypted is dropped and counted; a stream that stops makes ``read`` fail with the reason (the meter shows DOWN).

OS and pyserial errors become ``MeterError`` or a ``last_problem`` text here; keys never reach a log or a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import serial

from edge.errors import MeterError
from edge.meters.base import MeterSample
from edge.meters.config import BusConfig, BusKind, MeterConfig, ScanHit
from edge.meters.convert import build_sample
from edge.meters.maps import MeterMap, MeterProtocol, Probe
from edge.p1.errors import CrcError, DecryptError, P1Error, TruncatedError
from edge.p1.framing import CipherFramer, PlainFramer, Truncated
from edge.p1.telegram import (
    P1Register,
    P1Values,
    TelegramDecoder,
    check_crc,
    crc_digits,
    decrypt,
    needs_crc_check,
)
from edge.p1.variants import VARIANTS, Variant

log = logging.getLogger(__name__)
Clock = Callable[[], int]
RECONNECT_MIN_S = 0.5
RECONNECT_MAX_S = 10.0
#: a D0 (IEC 62056-21) data line with the billing period after the code, as EasyMeter Q3D writes them
_D0_LINE = re.compile(r"^\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3}\*\d{1,3}\(", re.MULTILINE)


def registers(meter_map: MeterMap) -> list[P1Register]:
    out = []
    for name, m in meter_map.measurements.items():
        assert m.p1 is not None
        out.append(P1Register(name, m.p1.plus, m.p1.minus, m.unit))
    return out


def _power_of_two(n: int) -> bool:
    return n & (n - 1) == 0


@dataclass(slots=True)
class P1Counters:
    telegrams: int = 0
    crc_errors: int = 0
    truncated: int = 0
    decrypt_errors: int = 0


class P1MeterReader:
    """A ``MeterReader`` for one meter on one P1 port (serial device or TCP endpoint)."""

    def __init__(self, cfg: MeterConfig, meter_map: MeterMap, bus: BusConfig, *, clock: Clock) -> None:
        if meter_map.p1_variant is None or bus.kind.protocol is not MeterProtocol.P1:
            raise ValueError(f"meter {cfg.serial}: not a P1 meter on a P1 bus")
        self._cfg, self._map, self._bus, self._clock = cfg, meter_map, bus, clock
        self.variant: Variant = VARIANTS[meter_map.p1_variant]
        self._decoder = TelegramDecoder(self.variant, registers(meter_map))
        self._auth_key = cfg.auth_key or self.variant.fixed_auth_key or b""
        self._framer: PlainFramer | CipherFramer = CipherFramer() if self.variant.encrypted else PlainFramer()
        self.counters = P1Counters()
        self.latest: bytes | None = None  # plaintext, CRC checked
        self.latest_ms: int | None = None  # gateway clock when it arrived
        self.last_problem: str | None = None
        self.connected = False
        self._fresh = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._decoded: tuple[bytes, P1Values] | None = None

    @property
    def serial(self) -> str:
        return self._cfg.serial

    @property
    def where(self) -> str:
        return str(self._bus.device) if self._bus.kind is BusKind.P1_SERIAL else f"{self._bus.host}:{self._bus.port}"

    def start(self) -> None:
        """Start listening (inside the running loop); ``read`` starts it too if nobody did."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"p1 {self.serial}")

    # ---- the stream ---------------------------------------------------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Bytes from the port: cut into telegrams, each checked (decryption, CRC) before it becomes the latest."""
        for item in self._framer.feed(data):
            if isinstance(item, Truncated):
                self._problem("truncated", f"telegram truncated: {item.reason}")
            else:
                self._accept(item)

    def _accept(self, frame: bytes) -> None:
        try:
            plain = decrypt(frame, self._cfg.key, self._auth_key) if self.variant.encrypted else frame
            if needs_crc_check(self.variant, plain):
                check_crc(plain)
        except DecryptError as exc:
            self._problem("decrypt_errors", f"cannot decrypt the telegram: {exc}; check key_file")
            return
        except CrcError as exc:
            self._problem("crc_errors", f"telegram dropped: {exc}")
            return
        except TruncatedError as exc:
            self._problem("truncated", f"telegram truncated: {exc}")
            return
        self.counters.telegrams += 1
        self.latest, self.latest_ms = plain, self._clock()
        self.last_problem = None
        self._fresh.set()

    def _problem(self, counter: str, message: str) -> None:
        n = getattr(self.counters, counter) + 1
        setattr(self.counters, counter, n)
        self.last_problem = message
        if _power_of_two(n):  # 1st, 2nd, 4th, 8th ...: a broken line cannot fill the log
            log.warning("P1 %s", message, extra={"meter": self.serial, "count": n, "kind": counter})

    async def _run(self) -> None:
        delay = RECONNECT_MIN_S
        while True:
            before = self.counters.telegrams
            try:
                if self._bus.kind is BusKind.P1_SERIAL:
                    await self._serve_serial()
                else:
                    await self._serve_tcp()
                reason = "the stream ended"
            except (OSError, serial.SerialException, TimeoutError) as exc:
                reason = str(exc) or type(exc).__name__
            if self.connected or self.last_problem is None:
                log.warning("P1 port lost", extra={"meter": self.serial, "where": self.where, "error": reason})
            self.connected = False
            self.last_problem = f"{self.where}: {reason}"
            delay = RECONNECT_MIN_S if self.counters.telegrams > before else min(delay * 2, RECONNECT_MAX_S)
            await asyncio.sleep(delay)

    async def _serve_tcp(self) -> None:
        assert self._bus.host is not None
        assert self._bus.port is not None
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self._bus.host, self._bus.port), self._bus.timeout_s
        )
        self.connected = True
        self._framer = type(self._framer)()
        try:
            while data := await reader.read(4096):
                self.feed(data)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _serve_serial(self) -> None:
        assert self._bus.device is not None
        port = serial.Serial(
            self._bus.device, baudrate=self._bus.baudrate, bytesize=self._bus.bytesize, parity=self._bus.parity,
            stopbits=self._bus.stopbits, timeout=0,
        )
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            try:
                data = port.read(port.in_waiting or 1)
            except (serial.SerialException, OSError) as exc:
                if not lost.done():
                    lost.set_exception(OSError(f"read failed: {exc}"))
                return
            self.feed(data)

        self.connected = True
        self._framer = type(self._framer)()
        loop.add_reader(port.fileno(), readable)
        try:
            await lost
        finally:
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(port.fileno())
            port.close()

    # ---- the poller's side --------------------------------------------------------------------------------------

    async def read(self) -> MeterSample:
        """The newest complete telegram as a sample; MeterError (with the reason) when there is none fresh."""
        self.start()
        if self.latest is None:
            self._fresh.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._fresh.wait(), self._cfg.stale_after_s)
        telegram, received = self.latest, self.latest_ms
        if telegram is None or received is None:
            raise MeterError(f"meter {self.serial}: no complete P1 telegram yet ({self._reason()})")
        age_ms = self._clock() - received
        if age_ms > self._cfg.stale_after_s * 1000:
            raise MeterError(f"meter {self.serial}: no complete P1 telegram for {age_ms // 1000} s ({self._reason()})")
        try:
            values = self._decode(telegram)
            sample = build_sample(received, values.values)
        except P1Error as exc:
            raise MeterError(f"meter {self.serial} ({self._map.id}): {exc}") from exc
        except MeterError as exc:
            raise MeterError(f"meter {self.serial} ({self._map.id}): {exc}") from exc
        c = self.counters
        extra = {**sample.extra, "p1_crc_errors": float(c.crc_errors), "p1_truncated": float(c.truncated),
                 "p1_decrypt_errors": float(c.decrypt_errors)}
        return MeterSample(sample.timestamp_ms, sample.import_wh, sample.export_wh, sample.power_w, extra,
                           meter_time_ms=values.meter_time_ms)

    def _decode(self, telegram: bytes) -> P1Values:
        if self._decoded is not None and self._decoded[0] is telegram:
            return self._decoded[1]
        values = self._decoder.decode(telegram)
        self._decoded = (telegram, values)
        return values

    def _reason(self) -> str:
        if self.last_problem:
            return self.last_problem
        return f"{self.where} open, no data" if self.connected else f"{self.where} not open yet"

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


# ---- scan ---------------------------------------------------------------------------------------------------------

#: serial settings tried by ``scan`` on a P1 port: those of the variants, 115200 8N1 (DSMR 5) first, then 115200 7E1
#: (DSMR 4) and 9600 7E1 (DSMR 2.2)
SCAN_SETTINGS = tuple(sorted(
    dict.fromkeys((v.baudrate, v.bytesize, v.parity) for v in VARIANTS.values()),
    key=lambda s: (-s[0], -s[1]),
))


def detect_variant(telegram: bytes) -> str:
    """The plain variant a telegram looks like (by its version lines, its registers and whether it has a CRC: a
    damaged one is still told by its content, and then refused by the map's decoder for its CRC)."""
    text = telegram.decode("ascii", "replace")
    if crc_digits(telegram) is None:
        return "q3d" if _D0_LINE.search(text) else "dsmr2.2"
    if "0-0:96.1.4(" in text:
        return "belgium"
    if "1-0:1.8.3(" in text:  # E.ON Hungary: four tariffs (its 0-0:42.0.0 would pass for Luxembourg's)
        return "hungary"
    if "0-0:42.0.0(" in text:
        return "luxembourg"
    return "dsmr5" if "1-3:0.2.8(5" in text else "dsmr4"


def _matches(probe: Probe, header: str | None, title: str | None) -> bool:
    if probe.header is not None:
        return header is not None and header.lower().startswith(probe.header.lower())
    return probe.system_title is not None and title is not None and title.startswith(probe.system_title)


def name_stream(data: bytes, maps: Mapping[str, MeterMap]) -> ScanHit | None:
    """What a captured P1 stream is: its variant and the maps whose probes match (None: no telegram in it)."""
    p1_maps = [m for m in maps.values() if m.protocol is MeterProtocol.P1 and m.p1_variant is not None]
    plain = [i for i in PlainFramer().feed(data) if isinstance(i, bytes)]
    if plain:
        telegram = plain[-1]
        header = telegram.split(b"\r\n", 1)[0].decode("ascii", "replace")
        variant = detect_variant(telegram)
        named = [m for m in p1_maps if m.p1_variant == variant and all(_matches(p, header, None) for p in m.probes)]
        found, refused = [], []
        for m in named:  # a map is named only if it reads the telegram (registers present, units right)
            try:
                TelegramDecoder(VARIANTS[variant], registers(m)).decode(telegram)
            except P1Error as exc:
                refused.append(f"map {m.id} does not read it: {exc}")
            else:
                found.append(m)
        detail = f"P1 {variant} telegram, header {header}"
        if not found and refused:
            detail += "; " + "; ".join(refused)
    else:
        frames = [i for i in CipherFramer().feed(data) if isinstance(i, bytes)]
        if not frames:
            return None
        title = frames[-1][2:10].decode("ascii", "replace")
        found = [m for m in p1_maps if VARIANTS[m.p1_variant].encrypted  # type: ignore[index]
                 and all(_matches(p, None, title[:3]) for p in m.probes)]
        detail = f"encrypted P1 telegram (general-glo-ciphering), system title {frames[-1][2:10].hex()}"
    # the most specific map first: a generic map (header "/") only when nothing names the model
    specific = [m for m in found if any((p.header or p.system_title or "") not in ("", "/") for p in m.probes)]
    chosen = specific or found
    return ScanHit(0, tuple(m.id for m in chosen), tuple(m.model for m in chosen), detail)


async def _capture_serial(bus: BusConfig, settings: tuple[int, int, str], listen_s: float) -> bytes:
    assert bus.device is not None
    baud, bytesize, parity = settings
    try:
        port = serial.Serial(bus.device, baudrate=baud, bytesize=bytesize, parity=parity, stopbits=1, timeout=0)
    except (serial.SerialException, OSError) as exc:
        raise MeterError(f"cannot open {bus.device}: {exc}") from None
    chunks: list[bytes] = []
    deadline = time.monotonic() + listen_s
    try:
        while time.monotonic() < deadline:
            data = port.read(port.in_waiting or 1)
            if data:
                chunks.append(data)
                if b"!" in data and b"/" in b"".join(chunks):
                    joined = b"".join(chunks)
                    if any(isinstance(i, bytes) for i in PlainFramer().feed(joined)):
                        break
            else:
                await asyncio.sleep(0.05)
    except (serial.SerialException, OSError) as exc:
        raise MeterError(f"read from {bus.device} failed: {exc}") from None
    finally:
        port.close()
    return b"".join(chunks)


async def _capture_tcp(bus: BusConfig, listen_s: float) -> bytes:
    assert bus.host is not None
    assert bus.port is not None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(bus.host, bus.port), bus.timeout_s)
    except (OSError, TimeoutError) as exc:
        raise MeterError(f"cannot connect to {bus.host}:{bus.port}: {exc or 'timeout'}") from None
    chunks: list[bytes] = []
    try:
        async with asyncio.timeout(listen_s):
            while data := await reader.read(4096):
                chunks.append(data)
                frames = [i for i in PlainFramer().feed(b"".join(chunks)) if isinstance(i, bytes)]
                frames += [i for i in CipherFramer().feed(b"".join(chunks)) if isinstance(i, bytes)]
                if frames:
                    break
    except TimeoutError:
        pass
    except OSError as exc:
        raise MeterError(f"read from {bus.host}:{bus.port} failed: {exc}") from None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return b"".join(chunks)


async def scan_p1(bus: BusConfig, maps: Mapping[str, MeterMap], listen_s: float = 11.0) -> list[ScanHit]:
    """Listen on a P1 port for a telegram and name its variant and model. A serial port is tried at the bus's own
    settings first, then at each of :data:`SCAN_SETTINGS`; each try listens up to ``listen_s`` (DSMR 4 meters send
    every 10 s)."""
    if bus.kind is BusKind.P1_TCP:
        hit = name_stream(await _capture_tcp(bus, listen_s), maps)
        return [hit] if hit else []
    tried = [(bus.baudrate, bus.bytesize, bus.parity)]
    tried += [s for s in SCAN_SETTINGS if s not in tried]
    for settings in tried:
        hit = name_stream(await _capture_serial(bus, settings, listen_s), maps)
        if hit is not None:
            baud, bytesize, parity = settings
            return [ScanHit(hit.address, hit.map_ids, hit.models, f"{hit.detail} at {baud} {bytesize}{parity}1")]
    return []
