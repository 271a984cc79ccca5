"""Pushed DLMS DATA-NOTIFICATIONs (customer interfaces that push every few seconds, e.g. Austrian meters): a small
TCP receiver for IEC 62056-47 wrapper frames, and the pure decoding of a ciphered notification into OBIS values.

The receiver keeps nothing but hands each APDU to a callback; the meter side (``edge.meters.dlms_push``) keeps the
latest notification per meter and the poller takes it at its tick, as for any push stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from edge.dlms.apdu import DATA_NOTIFICATION, parse_data_notification
from edge.dlms.axdr import Data, Tag
from edge.dlms.errors import DlmsDecodeError, DlmsError
from edge.dlms.security import GENERAL_GLO_CIPHERING, Keys, unwrap
from edge.dlms.wrapper import WrapperDecoder

log = logging.getLogger(__name__)

Obis = tuple[int, int, int, int, int, int]


@dataclass(frozen=True, slots=True)
class PushedValue:
    value: Data
    scaler: int | None
    unit: int | None


def sender_title(apdu: bytes) -> bytes | None:
    """The system title a general-glo-ciphering APDU names (None for anything else)."""
    if len(apdu) >= 10 and apdu[0] == GENERAL_GLO_CIPHERING and apdu[1] == 8:
        return bytes(apdu[2:10])
    return None


@dataclass(frozen=True, slots=True)
class PushNotification:
    counter: int | None  # the meter's invocation counter (None when pushed in clear)
    values: dict[Obis, PushedValue]


def open_notification(apdu: bytes, keys: Keys | None, system_title: bytes | None) -> PushNotification:
    """Decipher (when ciphered) and decode one pushed DATA-NOTIFICATION whose body lists OBIS values as
    ``octet-string(6) value [structure{scaler, unit}]`` (the "obis-value-scaler" layout)."""
    counter: int | None = None
    if apdu[:1] == bytes([GENERAL_GLO_CIPHERING]):
        if keys is None:
            raise DlmsError("ciphered notification but no keys")
        opened = unwrap(keys, system_title, apdu)
        apdu, counter = opened.apdu, opened.counter
    if apdu[:1] != bytes([DATA_NOTIFICATION]):
        raise DlmsDecodeError(f"not a DATA-NOTIFICATION (tag 0x{apdu[:1].hex()})")
    return PushNotification(counter, obis_values(parse_data_notification(apdu).body))


def _flatten(d: Data, out: list[Data], depth: int = 0) -> None:
    # A scaler_unit pair stays one item; any other structure is opened.
    if d.tag in (Tag.STRUCTURE, Tag.ARRAY) and isinstance(d.value, tuple) and depth < 4 and not _is_scaler_unit(d):
        for item in d.value:
            if isinstance(item, Data):
                _flatten(item, out, depth + 1)
        return
    out.append(d)


def _is_scaler_unit(d: Data) -> bool:
    return (d.tag is Tag.STRUCTURE and isinstance(d.value, tuple) and len(d.value) == 2
            and isinstance(d.value[0], Data) and d.value[0].tag is Tag.INTEGER
            and isinstance(d.value[1], Data) and d.value[1].tag is Tag.ENUM)


def obis_values(body: Data) -> dict[Obis, PushedValue]:
    """OBIS -> value (and scaler_unit when the meter sends it right after the value)."""
    items: list[Data] = []
    _flatten(body, items)
    out: dict[Obis, PushedValue] = {}
    i = 0
    while i < len(items):
        d = items[i]
        if d.tag is Tag.OCTET_STRING and isinstance(d.value, bytes) and len(d.value) == 6 and i + 1 < len(items):
            obis = (d.value[0], d.value[1], d.value[2], d.value[3], d.value[4], d.value[5])
            value = items[i + 1]
            scaler = unit = None
            i += 2
            if i < len(items) and _is_scaler_unit(items[i]):
                su = items[i].value
                assert isinstance(su, tuple)
                s, u = su[0], su[1]
                assert isinstance(s, Data)
                assert isinstance(u, Data)
                assert isinstance(s.value, int)
                assert isinstance(u.value, int)
                scaler, unit = s.value, u.value
                i += 1
            out[obis] = PushedValue(value, scaler, unit)
        else:
            i += 1
    return out


class PushReceiver:
    """Listens on ``host:port`` for wrapper-framed APDUs pushed by meters; calls ``on_apdu`` for each."""

    def __init__(self, host: str, port: int, on_apdu: Callable[[bytes], None]) -> None:
        self.host, self.port, self._on_apdu = host, port, on_apdu
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.errors = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        self._writers.add(writer)
        decoder = WrapperDecoder()
        try:
            while data := await reader.read(4096):
                try:
                    pdus = decoder.feed(data)
                except DlmsDecodeError:
                    self.errors += 1
                    decoder = WrapperDecoder()
                    continue
                for pdu in pdus:
                    self._on_apdu(pdu.apdu)
        except OSError:
            pass
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            if task is not None:
                self._tasks.discard(task)

    async def start(self) -> None:
        if self._server is None:
            try:
                self._server = await asyncio.start_server(self._handle, self.host, self.port)
            except OSError as e:
                raise DlmsError(f"cannot listen for DLMS pushes on {self.host}:{self.port}: {e}") from None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for w in list(self._writers):  # the handlers then see end of stream and finish by themselves
                w.close()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
