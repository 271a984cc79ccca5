"""Meters that push (ciphered) DLMS DATA-NOTIFICATIONs to a ``dlms-push`` bus: the latest notification per meter is
kept, and the poller takes it at its tick (one signed reading per meter per tick, stamped with the tick's time).

A meter is named by the system title it sends. A notification that fails its key check is dropped and remembered
as the meter's error (one line: meter, what failed); a notification whose invocation counter is not above the last
one is a replay and dropped. The counter of the notification a reading was taken from is stored (fsynced) in the
gateway's frame-counter store before the reading is returned, so a notification recorded earlier and sent again after
a restart is still a replay. No push within the bus's ``timeout_ms`` makes the meter DOWN with that reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from edge.dlms.axdr import INTEGER_TAGS, Tag
from edge.dlms.errors import DlmsError
from edge.dlms.push import Obis, PushedValue, PushReceiver, open_notification, sender_title
from edge.dlms.security import CipherError
from edge.errors import MeterError
from edge.meters.base import MeterSample
from edge.meters.config import BusConfig, BusKind, MeterConfig
from edge.meters.convert import build_sample, physical
from edge.meters.dlms_reader import UNIT_CODES, Clock, KeyCheckError
from edge.meters.frame_counters import FrameCounterError, FrameCounterStore
from edge.meters.maps import MeterMap

log = logging.getLogger(__name__)


@dataclass
class _Latest:
    values: Mapping[Obis, PushedValue] | None = None
    received: float = 0.0  # monotonic
    counter: int = -1
    saved: int = -1  # the counter durably stored (a notification at or below it is a replay, also after a restart)
    error: str | None = None
    error_at: float = 0.0
    received_count: int = 0
    dropped: int = 0


class DlmsPushBus:
    """One listening port; meters are told apart by their system title."""

    def __init__(self, cfg: BusConfig, counters: FrameCounterStore | None = None) -> None:
        if cfg.kind is not BusKind.DLMS_PUSH:
            raise ValueError(f"bus {cfg.name} is not a dlms-push bus")
        assert cfg.host is not None
        assert cfg.port is not None
        self.cfg, self._counters = cfg, counters
        self._meters: dict[bytes, MeterConfig] = {}
        self._latest: dict[str, _Latest] = {}
        self.unknown = 0
        self._receiver = PushReceiver(cfg.host, cfg.port, self.on_apdu)

    @property
    def name(self) -> str:
        return self.cfg.name

    def add(self, meter: MeterConfig) -> None:
        assert meter.meter_system_title is not None
        self._meters[meter.meter_system_title] = meter
        latest = self._latest[meter.serial] = _Latest()
        if self._counters is not None and meter.keys is not None:
            latest.counter = latest.saved = self._counters.peer_counter(meter.serial, meter.keys.key_id)

    async def taken(self, meter: MeterConfig, latest: _Latest) -> None:
        """Store the counter of the notification a reading is taken from (on a worker thread: it fsyncs)."""
        counter = latest.counter
        if self._counters is None or meter.keys is None or counter <= latest.saved:
            return
        try:
            await asyncio.to_thread(self._counters.save_peer_counter, meter.serial, meter.keys.key_id, counter)
        except FrameCounterError as e:
            raise MeterError(f"meter {meter.serial}: {e}") from None
        latest.saved = max(latest.saved, counter)

    def on_apdu(self, apdu: bytes) -> None:
        title = sender_title(apdu)
        meter = self._meters.get(title) if title is not None else None
        if meter is None:
            self.unknown += 1
            log.debug("bus %s: push from an unknown system title", self.name)
            return
        latest = self._latest[meter.serial]
        try:
            note = open_notification(apdu, meter.keys, meter.meter_system_title)
        except CipherError as e:
            latest.dropped += 1
            latest.error, latest.error_at = f"meter {meter.serial}: key check failed on a pushed notification: {e}", \
                time.monotonic()
            return
        except DlmsError as e:
            latest.dropped += 1
            latest.error, latest.error_at = f"meter {meter.serial}: bad pushed notification: {e}", time.monotonic()
            return
        if note.counter is not None:
            if note.counter <= latest.counter:
                latest.dropped += 1
                latest.error = f"meter {meter.serial}: pushed notification replayed (counter {note.counter})"
                latest.error_at = time.monotonic()
                return
            latest.counter = note.counter
        latest.values, latest.received, latest.error = note.values, time.monotonic(), None
        latest.received_count += 1

    def latest(self, serial: str) -> _Latest:
        return self._latest[serial]

    async def start(self) -> None:
        await self._receiver.start()

    async def close(self) -> None:
        await self._receiver.close()


class DlmsPushMeterReader:
    """A ``MeterReader`` for a pushing meter: the latest notification, converted by the meter's map."""

    def __init__(self, cfg: MeterConfig, meter_map: MeterMap, bus: DlmsPushBus, *, clock: Clock) -> None:
        self._cfg, self._map, self._bus, self._clock = cfg, meter_map, bus, clock
        bus.add(cfg)

    @property
    def serial(self) -> str:
        return self._cfg.serial

    async def read(self) -> MeterSample:
        await self._bus.start()
        latest = self._bus.latest(self.serial)
        now = time.monotonic()
        max_age = self._bus.cfg.timeout_s
        if latest.values is None or now - latest.received > max_age:
            if latest.error is not None and now - latest.error_at <= max_age:
                raise KeyCheckError(latest.error)
            since = "ever" if latest.values is None else f"{now - latest.received:.0f} s"
            raise MeterError(f"meter {self.serial} ({self._map.id}): no push received for {since} "
                             f"(bus {self._bus.name}, limit {max_age:g} s)")
        values: dict[str, Fraction] = {}
        for name, m in self._map.measurements.items():
            assert m.dlms is not None
            pushed = latest.values.get(m.dlms.obis)
            if pushed is None:
                raise MeterError(f"meter {self.serial}: push without {m.dlms.obis_text} ({name})")
            if pushed.unit is not None and pushed.unit != UNIT_CODES[m.unit]:
                raise MeterError(f"meter {self.serial}: {m.dlms.obis_text} pushed with unit code {pushed.unit}, "
                                 f"the map expects {m.unit!r}")
            v = pushed.value
            if not (v.tag in INTEGER_TAGS or v.tag in (Tag.FLOAT32, Tag.FLOAT64)) or isinstance(v.value, bool) \
                    or not isinstance(v.value, int | float):
                raise MeterError(f"meter {self.serial}: {m.dlms.obis_text} pushed as {v.tag.name}, not a number")
            values[name] = physical(v.value, m, exponent=pushed.scaler or 0)
        sample = build_sample(self._clock(), values)
        await self._bus.taken(self._cfg, latest)
        return sample

    async def close(self) -> None:
        """The bus is owned by the factory and closed there."""
