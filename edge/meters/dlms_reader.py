"""DLMS/COSEM meters as ``MeterReader``s: one association per poll over the TCP wrapper or HDLC, serialised per bus.

Every read opens the link (TCP connect, or SNRM on the shared serial line), associates (lowest level, LLS or
HLS-GMAC, with or without ciphered APDUs), reads value and scaler_unit of each mapped register, releases and closes.
Meters commonly drop idle associations, so nothing is held open between polls. The unit the meter reports must be
the unit the map names.

Ciphered meters draw invocation counters from a :class:`~edge.meters.frame_counters.FrameCounterStore`; when a
meter rejects ours, the counter is re-synchronised from the meter's frame-counter object (read as the public
client) and the session is tried once more. A failed key check is one clear error naming the meter and what
failed; there is no reading then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from fractions import Fraction
from typing import TypeVar

from edge.dlms.axdr import INTEGER_TAGS, Data, Tag
from edge.dlms.client import ClientSecurity, DlmsClient
from edge.dlms.errors import AssociationRejectedError, CounterRejectedError, DataAccessError, DlmsError
from edge.dlms.security import CipherError
from edge.dlms.transport import HdlcTransport, SerialLine, TcpWrapperTransport
from edge.errors import MeterError
from edge.meters.base import MeterSample
from edge.meters.config import BusConfig, BusKind, DlmsAuth, MeterConfig, ScanHit
from edge.meters.convert import build_sample, physical
from edge.meters.frame_counters import FrameCounterStore
from edge.meters.maps import DlmsPoint, Measurement, MeterMap, MeterProtocol

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], int]

# IEC 62056-6-2 unit enumeration for the units a map may name.
UNIT_CODES = {"Wh": 30, "W": 27, "V": 35, "A": 33, "Hz": 44, "VA": 28, "var": 29, "varh": 32, "%": 56, "": 255}


PUBLIC_CLIENT = 16
#: Invocation counters one session may use (AARQ, HLS pass 3, a GET per attribute, data blocks): reserved up front.
SESSION_COUNTERS = 64
FRAME_COUNTER = DlmsPoint((0, 0, 43, 1, 0, 255), 1)


class KeyCheckError(MeterError):
    """A ciphered meter's keys do not match ours (or it refused our authentication): no reading."""


class DlmsBus:
    """A DLMS TCP endpoint or HDLC serial line: one session at a time, with retries and back-off."""

    def __init__(self, cfg: BusConfig, counters: FrameCounterStore | None = None) -> None:
        if cfg.kind.protocol is not MeterProtocol.DLMS:
            raise ValueError(f"bus {cfg.name} is not a DLMS bus")
        self.cfg = cfg
        self.counters = counters
        self._lock = asyncio.Lock()
        self._last = 0.0
        self._line: SerialLine | None = None
        if cfg.kind is BusKind.DLMS_HDLC:
            assert cfg.device is not None
            self._line = SerialLine(
                cfg.device, baudrate=cfg.baudrate, bytesize=cfg.bytesize, parity=cfg.parity, stopbits=cfg.stopbits
            )

    @property
    def name(self) -> str:
        return self.cfg.name

    def _transport(self, client_address: int, logical: int, physical: int) -> TcpWrapperTransport | HdlcTransport:
        if self._line is not None:
            return HdlcTransport(self._line, client_address, logical, physical, timeout=self.cfg.timeout_s)
        assert self.cfg.host is not None
        assert self.cfg.port is not None
        return TcpWrapperTransport(self.cfg.host, self.cfg.port, client_address, logical, timeout=self.cfg.timeout_s)

    def _security(self, meter: MeterConfig) -> ClientSecurity | None:
        if not meter.secured:
            return None
        if meter.keys is None:
            raise MeterError(f"meter {meter.serial}: no keys (keys_file)")
        if self.counters is None:
            raise MeterError(f"meter {meter.serial}: no frame-counter store for a ciphered meter")
        return ClientSecurity(keys=meter.keys, system_title=meter.system_title,
                              counters=self.counters.for_meter(meter.serial), policy=meter.security.policy,
                              hls_gmac=meter.auth is DlmsAuth.HLS_GMAC)

    async def session(
        self,
        meter: MeterConfig,
        work: Callable[[DlmsClient], Awaitable[T]],
        *,
        retries: int | None = None,
        frame_counter: DlmsPoint = FRAME_COUNTER,
    ) -> T:
        """Run ``work`` inside one association with ``meter``; retried with back-off on transport failures. A
        rejected invocation counter is re-synchronised from ``frame_counter`` and the session tried once more."""
        try:
            return await self._session(meter, work, retries)
        except CounterRejectedError:
            expected = await self._read_frame_counter(meter, frame_counter)
            assert self.counters is not None
            log.warning("meter %s rejected our invocation counter; re-synchronised to %d", meter.serial, expected)
            self.counters.for_meter(meter.serial).resync(expected)
            try:
                return await self._session(meter, work, retries)
            except CounterRejectedError:
                raise KeyCheckError(f"meter {meter.serial}: invocation counter still rejected after resync "
                                    f"to {expected}") from None

    async def _read_frame_counter(self, meter: MeterConfig, point: DlmsPoint) -> int:
        public = MeterConfig(serial=meter.serial, bus=meter.bus, model=meter.model, client_address=PUBLIC_CLIENT,
                             server_address=meter.server_address, physical_address=meter.physical_address)

        async def read(client: DlmsClient) -> int:
            value = await client.get(point.class_id, point.obis, 2)
            if value.tag not in INTEGER_TAGS or not isinstance(value.value, int) or value.value < 0:
                raise MeterError(f"frame counter {point.obis_text} is {value.tag.name}, not an unsigned number")
            return value.value

        try:
            return await self._session(public, read, None)
        except MeterError as e:
            raise KeyCheckError(f"meter {meter.serial}: rejected our invocation counter and its frame counter "
                                f"{point.obis_text} cannot be read: {e}") from None

    async def _session(
        self, meter: MeterConfig, work: Callable[[DlmsClient], Awaitable[T]], retries: int | None
    ) -> T:
        attempts = 1 + (self.cfg.retries if retries is None else retries)
        password = meter.password if meter.auth is DlmsAuth.LOW else None
        security = self._security(meter)
        if security is not None and self.counters is not None:
            # Reserve the session's counters (stored and fsynced) on a worker thread, not on the event loop.
            await asyncio.to_thread(self.counters.ensure, meter.serial, SESSION_COUNTERS * attempts)
        reason = "no attempt"
        async with self._lock:
            for attempt in range(attempts):
                if attempt:
                    await asyncio.sleep(self.cfg.backoff_s * 2 ** (attempt - 1))
                quiet = self._last + self.cfg.inter_request_delay_s - time.monotonic()
                if quiet > 0:
                    await asyncio.sleep(quiet)
                transport = self._transport(meter.client_address, meter.server_address, meter.physical_address)
                try:
                    await transport.open()
                    client = DlmsClient(transport, security)
                    try:
                        await client.associate(password)
                    except AssociationRejectedError as e:
                        if security is None:
                            raise
                        raise KeyCheckError(f"meter {meter.serial}: {e} -- check its keys_file (EK/AK), "
                                            f"auth and security settings") from None
                    except CipherError as e:
                        raise KeyCheckError(f"meter {meter.serial}: key check failed: {e}") from None
                    try:
                        return await work(client)
                    finally:
                        with contextlib.suppress(DlmsError):
                            await client.release()
                except CipherError as e:
                    raise KeyCheckError(f"meter {meter.serial}: key check failed: {e}") from None
                except (AssociationRejectedError, DataAccessError, CounterRejectedError):
                    raise  # the meter answered: asking again will not change its mind
                except DlmsError as exc:
                    reason = str(exc)
                    log.debug("bus %s attempt %d failed: %s", self.name, attempt + 1, reason)
                finally:
                    await transport.close()
                    self._last = time.monotonic()
        raise MeterError(f"bus {self.name}: DLMS meter did not answer after {attempts} attempt(s): {reason}")

    async def close(self) -> None:
        if self._line is not None:
            self._line.close()


def _number(d: Data, what: str) -> int | float:
    if d.tag in INTEGER_TAGS and isinstance(d.value, int):
        return d.value
    if d.tag in (Tag.FLOAT32, Tag.FLOAT64) and isinstance(d.value, float):
        return d.value
    raise MeterError(f"{what}: value is {d.tag.name}, not a number")


async def read_register(client: DlmsClient, m: Measurement) -> Fraction:
    assert m.dlms is not None
    value, scaler, unit = await client.get_register(m.dlms.class_id, m.dlms.obis)
    expected = UNIT_CODES[m.unit]
    if unit != expected:
        raise MeterError(f"{m.dlms.obis_text} reports unit code {unit}, the map expects {m.unit!r} ({expected})")
    return physical(_number(value, m.dlms.obis_text), m, exponent=scaler)


class DlmsMeterReader:
    """A ``MeterReader`` for one DLMS/COSEM meter."""

    def __init__(self, cfg: MeterConfig, meter_map: MeterMap, bus: DlmsBus, *, clock: Clock) -> None:
        self._cfg, self._map, self._bus, self._clock = cfg, meter_map, bus, clock

    @property
    def serial(self) -> str:
        return self._cfg.serial

    async def read(self) -> MeterSample:
        timestamp_ms = self._clock()

        async def work(client: DlmsClient) -> dict[str, Fraction]:
            return {name: await read_register(client, m) for name, m in self._map.measurements.items()}

        try:
            fc = self._map.frame_counter or FRAME_COUNTER
            return build_sample(timestamp_ms, await self._bus.session(self._cfg, work, frame_counter=fc))
        except KeyCheckError:
            raise  # already one line naming the meter and what failed
        except MeterError as exc:
            raise MeterError(f"meter {self.serial} ({self._map.id}): {exc}") from exc

    async def close(self) -> None:
        """The bus is owned by the factory and closed there."""


async def _probe_map(client: DlmsClient, m: MeterMap, why: list[str]) -> bool:
    """True when every probe of ``m`` reads (and starts with its prefix); else the reason is appended to ``why``."""
    for p in m.probes:
        assert p.dlms is not None
        try:
            value = await client.get(p.dlms.class_id, p.dlms.obis, 2)
        except DataAccessError as e:
            why.append(f"{m.id}: {p.dlms.obis_text}: {e}")
            return False
        if p.prefix is not None:
            raw = value.value.encode() if isinstance(value.value, str) else value.value
            if not isinstance(raw, bytes) or not raw.startswith(p.prefix):
                why.append(f"{m.id}: {p.dlms.obis_text} is {raw!r}, expected it to start with "
                           f"{p.prefix.decode(errors='replace')!r}")
                return False
    return True


async def scan_dlms(bus: BusConfig, maps: Mapping[str, MeterMap], addresses: Iterable[int]) -> list[ScanHit]:
    """Probe DLMS addresses (TCP: server logical address; HDLC: physical address, logical 1) as the public client."""
    candidates = [m for m in maps.values() if m.protocol is MeterProtocol.DLMS]
    dbus = DlmsBus(bus)
    hits: list[ScanHit] = []
    try:
        for address in addresses:
            if bus.kind is BusKind.DLMS_TCP:
                meter = MeterConfig(serial="scan", bus=bus.name, model="", server_address=address)
            else:
                meter = MeterConfig(serial="scan", bus=bus.name, model="", server_address=1, physical_address=address)

            why: list[str] = []

            async def probe(client: DlmsClient, why: list[str] = why) -> list[MeterMap]:
                return [m for m in candidates if await _probe_map(client, m, why)]

            try:
                found = await dbus.session(meter, probe, retries=0)
            except AssociationRejectedError as e:
                hits.append(ScanHit(address, (), (), reason=f"answers, but refused the public client: {e} (a "
                                                            "ciphered meter? configure it with its keys and use read "
                                                            "--meter)"))
                continue
            except MeterError:
                continue
            if found:
                hits.append(ScanHit(address, tuple(m.id for m in found), tuple(m.model for m in found)))
            elif why:
                denied = any("read-write denied" in w or "scope of access" in w for w in why)
                hint = (" -- the public client may not read the probe objects: a ciphered meter? configure it with "
                        "its keys and use read --meter") if denied else ""
                hits.append(ScanHit(address, (), (), reason="answers, but no meter map matched: " + "; ".join(why)
                                    + hint))
    finally:
        await dbus.close()
    return hits
