"""Polls each meter on wall-clock-aligned ticks and commits every successful read to the outbox.

A meter that fails produces no reading (never a made-up one) and is shown as down until it answers again.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable

from edge.errors import ClockBehindError, MeterError, RegisterJumpError
from edge.meters.base import MeterReader, MeterSample
from edge.outbox import JUMP_CONFIRMATIONS, Outbox, OutboxError, RecordSigner
from edge.status import MeterStatus, StatusBoard
from protocol.errors import ProtocolError
from protocol.record import Flags

log = logging.getLogger(__name__)


#: 2020-01-01 UTC: a gateway clock before it was never set (central rejects readings from before registration).
CLOCK_FLOOR_MS = 1_577_836_800_000


def next_tick(now_s: float, interval_s: int, after: float | None = None) -> float:
    """The next multiple of ``interval_s`` (UTC epoch seconds) strictly after ``now_s`` and after ``after``."""
    t = (math.floor(now_s / interval_s) + 1) * interval_s
    if after is not None and t <= after:
        t = (math.floor(after / interval_s) + 1) * interval_s
    return float(t)


class Poller:
    def __init__(
        self,
        *,
        outbox: Outbox,
        signer: RecordSigner,
        board: StatusBoard,
        on_record: Callable[[], None],
        clock_synced: Callable[[], bool],
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._outbox = outbox
        self._signer = signer
        self._board = board
        self._on_record = on_record
        self._clock_synced = clock_synced
        self._wall = wall
        self.stored = 0
        self._clock_unset_logged = False

    async def poll(self, reader: MeterReader, state: MeterStatus, timeout_s: float) -> int | None:
        """One read; on success the reading is committed (signed, or pending resync). Returns its seq."""
        now_ms = int(self._wall() * 1000)
        if self._clock_unset(state, now_ms):
            return None
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the result when the read completes as
            # the task is cancelled, swallowing the cancellation (the meter task then never stopped)
            async with asyncio.timeout(timeout_s):
                sample = await reader.read()
        except MeterError as e:
            state.record_error(str(e), now_ms)
            if state.consecutive_failures in (1, 10) or state.consecutive_failures % 60 == 0:
                log.warning("meter read failed", extra={"meter": state.serial, "error": str(e),
                                                         "consecutive": state.consecutive_failures})
            return None
        except TimeoutError:
            state.record_error(f"no answer within {timeout_s:.0f} s", now_ms)
            log.warning("meter read timed out", extra={"meter": state.serial})
            return None
        synced = self._clock_synced()
        self._board.clock_synced = synced
        flags = 0 if synced else int(Flags.CLOCK_UNSYNCED)
        stored, seq = await self._store(state, sample, flags, now_ms)
        if not stored:
            return None
        self._board.alarm("outbox_write", None)
        for alarm in ("clock_behind", "register_jump"):
            if self._board.alarm(f"{alarm}:{state.serial}", None):
                log.info("alarm cleared", extra={"alarm": alarm, "meter": state.serial})
        if state.consecutive_failures:
            log.info("meter answers again", extra={"meter": state.serial})
        state.record_ok(sample, now_ms)
        self._check_meter_clock(sample, state)
        self.stored += 1
        self._on_record()
        return seq

    async def _store(
        self, state: MeterStatus, sample: MeterSample, flags: int, now_ms: int
    ) -> tuple[bool, int | None]:
        """Commit the reading: (True, its seq, or None while it waits unsigned for resync), or (False, None) when it
        was not stored (the reason recorded)."""
        try:
            # on the outbox thread: the commit's fsync never blocks the event loop (issue 10, D3)
            seq = await self._outbox.call(self._outbox.append, state.serial, sample, flags, self._signer)
        except ProtocolError as e:  # e.g. a negative register: not a reading we can sign; nothing was stored
            state.record_error(f"invalid reading rejected: {e}", now_ms)
            log.warning("meter returned a value that cannot be signed", extra={"meter": state.serial, "error": str(e)})
            return False, None
        except ClockBehindError as e:
            self._clock_behind(e, state, now_ms)
            return False, None
        except RegisterJumpError as e:
            state.record_error(f"implausible reading not signed: {e}", now_ms)
            message = (f"meter {state.serial}: {e} — a garbled read (swapped register words, a wrong meter map?); "
                       f"not signed. {JUMP_CONFIRMATIONS} such readings in a row that agree with each other are taken "
                       "as a new meter's registers (flagged METER_REPLACED: no energy is counted for the step)")
            if self._board.alarm(f"register_jump:{state.serial}", message):
                log.warning("ALARM %s", message, extra={"alarm": "register_jump", "meter": state.serial})
            return False, None
        except OutboxError as e:
            state.record_error(f"reading not stored: {e}", now_ms)
            self._board.alarm("outbox_write", f"cannot store readings: {e}")
            log.error("reading could not be stored", extra={"meter": state.serial, "error": str(e)})  # noqa: TRY400
            return False, None
        return True, seq

    def _clock_unset(self, state: MeterStatus, now_ms: int) -> bool:
        """A gateway clock never set (no RTC, no network yet): central rejects such a reading for good, so none is
        taken; the registers are cumulative, the first reading after NTP set the clock carries the energy."""
        if now_ms >= CLOCK_FLOOR_MS:
            if self._board.alarm("clock_unset", None):
                self._clock_unset_logged = False
                log.info("alarm cleared", extra={"alarm": "clock_unset"})
            return False
        shown = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now_ms / 1000))
        state.record_error("gateway clock not set: no reading", now_ms)
        message = (f"gateway clock is not set ({shown} UTC): no readings are taken until it is; check the "
                   "gateway's network and time sync (NTP)")
        if self._board.alarm("clock_unset", message) and not self._clock_unset_logged:
            self._clock_unset_logged = True
            log.warning("ALARM %s", message, extra={"alarm": "clock_unset"})
        return True

    def _clock_behind(self, e: ClockBehindError, state: MeterStatus, now_ms: int) -> None:
        """The clock went back behind the meter's last reading: no reading (central would reject it for good)."""
        last = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(e.last_ms / 1000))
        message = (f"gateway clock is behind meter {state.serial}'s last reading ({last} UTC): no readings from "
                   "it until the clock passes that time (central rejects readings that go back in time); check "
                   "the gateway's time sync (NTP) and its RTC")
        state.record_error(f"clock {(e.last_ms - e.given_ms) // 1000} s behind this meter's last reading", now_ms)
        if self._board.alarm(f"clock_behind:{state.serial}", message):
            log.warning("ALARM %s", message, extra={"alarm": "clock_behind", "meter": state.serial})

    def _check_meter_clock(self, sample: MeterSample, state: MeterStatus) -> None:
        """Meters that send their own clock (P1): an alarm while it and the gateway's differ by more than the bound."""
        if sample.meter_time_ms is None:
            return
        offset = state.clock_offset_ms = sample.meter_time_ms - sample.timestamp_ms
        bound = state.max_clock_skew_s
        message = None
        if bound and abs(offset) > bound * 1000:
            way = "ahead of" if offset > 0 else "behind"
            message = (f"meter {state.serial}: its clock is {abs(offset) // 1000} s {way} the gateway's (bound "
                       f"{bound} s): check the gateway's time sync (NTP), else report the meter's clock to the grid "
                       "operator")
        if self._board.alarm(f"meter_clock:{state.serial}", message):
            if message:
                log.warning("ALARM %s", message, extra={"alarm": "meter_clock", "meter": state.serial})
            else:
                log.info("alarm cleared", extra={"alarm": "meter_clock", "meter": state.serial})

    async def run_meter(self, reader: MeterReader, state: MeterStatus) -> None:
        interval = state.interval_s
        last: float | None = None
        while True:
            now = self._wall()
            if last is not None and now < last - interval:
                log.warning("clock stepped back; re-aligning poll ticks", extra={"meter": state.serial})
                last = None
            tick = next_tick(now, interval, last)
            await asyncio.sleep(max(0.0, tick - now))
            # the clock may have been stepped while we slept; never read twice for one tick
            if self._wall() < tick - 0.5:
                continue
            last = tick
            try:
                await self.poll(reader, state, timeout_s=max(1.0, min(30.0, interval * 0.8)))
            except Exception as e:  # a meter's task must never die: log, count, try again at the next tick
                state.record_error(f"internal error: {e!r}", int(self._wall() * 1000))
                log.exception("unexpected error while polling", extra={"meter": state.serial})
