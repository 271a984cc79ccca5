from __future__ import annotations

import asyncio
import contextlib
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.meters.base import MeterSample
from edge.meters.fake import FakeMeterReader
from edge.outbox import MAX_POWER_W, Outbox
from edge.poller import Poller, next_tick
from edge.signing import ProtocolSigner
from edge.status import LinkState, MeterStatus, StatusBoard
from protocol.record import Flags, decode_reading


@given(now=st.floats(0, 4e9), interval=st.integers(1, 3600))
def test_ticks_are_wall_clock_aligned_and_in_the_future(now: float, interval: int) -> None:
    t = next_tick(now, interval)
    assert t % interval == 0
    assert now < t <= now + interval
    assert next_tick(now, interval, after=t) > t  # never the same tick twice


def _poller(outbox: Outbox, signer: ProtocolSigner, synced: bool = True) -> tuple[Poller, StatusBoard, list[int]]:
    board = StatusBoard(device_id="d", version="t", started_ms=0, link=LinkState("x"))
    woken: list[int] = []
    p = Poller(outbox=outbox, signer=signer, board=board, on_record=lambda: woken.append(1),
               clock_synced=lambda: synced, wall=lambda: 1_700_000_000.0)
    return p, board, woken


async def test_failed_meter_gives_no_reading_and_is_shown_down(outbox: Outbox, signer: ProtocolSigner) -> None:
    p, _, woken = _poller(outbox, signer)
    meter = FakeMeterReader("M-1")
    state = MeterStatus("M-1", "modbus-tcp", "h:502 unit 1", "SDM630", 60)
    assert await p.poll(meter, state, 1.0) == 1
    meter.fail_with = "no response from unit 1"
    assert await p.poll(meter, state, 1.0) is None
    assert state.up is False
    assert state.last_error == "no response from unit 1"
    assert outbox.stats().depth == 1  # nothing made up for the failed read
    meter.fail_with = None
    assert await p.poll(meter, state, 1.0) == 2
    assert state.up is True
    assert state.to_dict()["success_rate"] == round(2 / 3, 4)
    assert len(woken) == 2


async def test_slow_meter_times_out(outbox: Outbox, signer: ProtocolSigner) -> None:
    class Slow(FakeMeterReader):
        async def read(self):  # type: ignore[no-untyped-def]
            await asyncio.sleep(5)
            return await super().read()

    p, _, _ = _poller(outbox, signer)
    state = MeterStatus("S", "modbus-rtu", "/dev/x", "m", 60)
    assert await p.poll(Slow("S"), state, 0.05) is None
    assert "no answer" in (state.last_error or "")


async def test_unsynced_clock_flags_the_reading(outbox: Outbox, signer: ProtocolSigner) -> None:
    p, board, _ = _poller(outbox, signer, synced=False)
    state = MeterStatus("M", "modbus-tcp", "a", "m", 60)
    await p.poll(FakeMeterReader("M"), state, 1.0)
    ((_, raw),) = outbox.fetch(0, None, 10)
    assert decode_reading(raw).flags == Flags.CLOCK_UNSYNCED
    assert board.clock_synced is False


async def test_run_meter_polls_on_aligned_ticks_and_survives_clock_step_back(
    outbox: Outbox, signer: ProtocolSigner
) -> None:
    now = [1_700_000_000.95]
    board = StatusBoard(device_id="d", version="t", started_ms=0, link=LinkState("x"))
    p = Poller(outbox=outbox, signer=signer, board=board, on_record=lambda: None, clock_synced=lambda: True,
               wall=lambda: now[0])
    state = MeterStatus("M", "modbus-tcp", "a", "m", 1)
    meter = FakeMeterReader("M")
    task = asyncio.create_task(p.run_meter(meter, state))
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if meter.reads:
                break
        assert meter.reads == 1  # the tick at ...001.0 came after ~0.05 s, not a whole interval
        now[0] -= 3600  # NTP stepped the clock back an hour: polling goes on at the next aligned tick
        for _ in range(200):
            await asyncio.sleep(0.01)
            now[0] += 0.01
            if meter.reads >= 2:
                break
        assert meter.reads >= 2
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_read_that_completes_as_the_task_is_cancelled_still_cancels_it(
    outbox: Outbox, signer: ProtocolSigner
) -> None:
    """Python 3.11's asyncio.wait_for returned the result when the read and the cancellation came together, so the
    meter task went on polling and a shutdown waited for it forever (a CI run hung in the test above)."""
    answer: asyncio.Future[MeterSample] = asyncio.get_running_loop().create_future()

    class Held(FakeMeterReader):
        async def read(self) -> MeterSample:
            return await answer

    p, _, _ = _poller(outbox, signer)
    task = asyncio.create_task(p.poll(Held("H"), MeterStatus("H", "modbus-tcp", "a", "m", 60), 5.0))
    await asyncio.sleep(0.01)  # the poll now waits for the read
    answer.set_result(MeterSample(1_700_000_000_000, 10, 0, None))
    task.cancel()  # in the same step: the read is done when the cancellation arrives
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_unsignable_value_is_an_error_not_a_crash(outbox: Outbox, signer: ProtocolSigner) -> None:
    class Broken(FakeMeterReader):
        async def read(self) -> MeterSample:
            return MeterSample(1, -5, 0, None)

    p, _, _ = _poller(outbox, signer)
    state = MeterStatus("B", "modbus-tcp", "a", "m", 60)
    assert await p.poll(Broken("B"), state, 1.0) is None
    assert "invalid reading" in (state.last_error or "")
    assert outbox.stats().depth == 0
    assert outbox.append("B", MeterSample(2, 1, 1, None), 0, signer) == 1  # the seq was not consumed


async def test_the_commit_runs_on_the_outbox_thread_not_the_event_loop(outbox: Outbox, signer: ProtocolSigner) -> None:
    """SQLite work and its fsync must not block the event loop (issue 10, D3)."""
    p, _, _ = _poller(outbox, signer)
    threads: set[str] = set()
    outbox._conn.set_trace_callback(lambda _sql: threads.add(threading.current_thread().name))
    try:
        assert await p.poll(FakeMeterReader("M-1"), MeterStatus("M-1", "modbus-tcp", "h", "SDM630", 60), 1.0) == 1
    finally:
        outbox._conn.set_trace_callback(None)
    assert threads
    assert threading.current_thread().name not in threads
    assert all(name.startswith("outbox") for name in threads)


async def test_a_clock_stepped_back_signs_no_reading_central_would_reject(
    outbox: Outbox, signer: ProtocolSigner
) -> None:
    """The gateway clock jumps back an hour (DST misconfiguration, an RTC correction). Central rejects, for good
    (``bad_timestamp``), a reading older than the same meter's previous one; such readings used to be signed and sent
    for that whole hour, each one a dead letter. Now the tick gives no reading (the registers are cumulative: the
    next reading carries the energy), an alarm says why, and readings resume once the clock passes the last one —
    also after a restart in between (the last time is kept in the outbox)."""
    p, board, _ = _poller(outbox, signer)
    state = MeterStatus("M", "modbus-tcp", "a", "m", 60)
    meter = FakeMeterReader("M", clock_ms=1_700_000_000_000)
    assert await p.poll(meter, state, 1.0) == 1
    meter.clock_ms -= 3_600_000  # the clock stepped back an hour
    assert await p.poll(meter, state, 1.0) is None
    assert outbox.stats().depth == 1
    assert "behind" in (state.last_error or "")
    assert "clock_behind:M" in board.alarms
    assert "outbox_write" not in board.alarms
    reopened = Outbox.open(outbox.path, new_device=False)
    try:
        assert await Poller(outbox=reopened, signer=signer, board=board, on_record=lambda: None,
                            clock_synced=lambda: True).poll(meter, state, 1.0) is None  # after a restart too
    finally:
        reopened.close()
    meter.clock_ms += 3_600_000  # caught up: readings resume, in time order
    assert await p.poll(meter, state, 1.0) == 2
    assert "clock_behind:M" not in board.alarms
    times = [decode_reading(raw).timestamp_ms for _, raw in outbox.fetch(0, None, 10)]
    assert times == sorted(times)
    other = FakeMeterReader("N", clock_ms=1_600_000_000_000)  # another meter's own history is its own
    assert await p.poll(other, MeterStatus("N", "modbus-tcp", "a", "m", 60), 1.0) == 3
    # a clock once set years ahead (central refused those readings as from the future) and then corrected does not
    # stop the meter for years: a step back of more than a day forgets the last time
    meter.clock_ms += 10 * 365 * 86_400_000
    assert await p.poll(meter, state, 1.0) == 4
    meter.clock_ms -= 10 * 365 * 86_400_000
    assert await p.poll(meter, state, 1.0) == 5


async def test_a_garbled_register_is_not_signed_and_does_not_stop_the_meter(
    outbox: Outbox, signer: ProtocolSigner
) -> None:
    """One garbled read (swapped Modbus words, a wrong map) used to be signed: central accepts any rise, so the window
    minted it, and every correct reading after it was lower and refused for good (``register_decrease``). Now a rise
    beyond what 2 MW can deliver in the time since the last reading is not signed, an alarm says why, and the next
    correct reading is signed; a real step (a meter swapped under the same serial) is taken after three readings that
    agree with each other, also across a restart."""
    p, board, _ = _poller(outbox, signer)
    state = MeterStatus("M", "modbus-tcp", "a", "m", 60)
    meter = FakeMeterReader("M", clock_ms=1_700_000_000_000)  # reads 1 s apart
    assert await p.poll(meter, state, 1.0) == 1
    good = meter.import_wh
    meter.import_wh = 10**15  # one garbled read
    assert await p.poll(meter, state, 1.0) is None
    assert "register_jump:M" in board.alarms
    assert "implausible" in (state.last_error or "")
    meter.import_wh = good  # the next read is right again
    assert await p.poll(meter, state, 1.0) == 2
    assert "register_jump:M" not in board.alarms
    assert [decode_reading(raw).import_wh for _, raw in outbox.fetch(0, None, 10)] == [good, good + 10]
    # within the bound: 2 MW for one second is 555 Wh, plus 1 kWh of register resolution
    meter.import_step = 1_555
    assert await p.poll(meter, state, 1.0) == 3
    meter.import_step = 10
    # a real step: refused twice, taken the third time (the count is kept across a restart)
    meter.import_wh += 50_000_000
    assert await p.poll(meter, state, 1.0) is None
    reopened = Outbox.open(outbox.path, new_device=False)
    try:
        again = Poller(outbox=reopened, signer=signer, board=board, on_record=lambda: None, clock_synced=lambda: True)
        assert await again.poll(meter, state, 1.0) is None
        assert await again.poll(meter, state, 1.0) == 4
    finally:
        reopened.close()
    # ... signed as a new meter's registers, so central counts no energy for the step
    flags = [decode_reading(raw).flags for _, raw in outbox.fetch(0, None, 10)]
    assert flags == [0, 0, 0, int(Flags.METER_REPLACED)]


async def test_a_register_that_fell_is_not_signed_until_a_new_meter_is_confirmed(
    outbox: Outbox, signer: ProtocolSigner
) -> None:
    """A register that fell used to be signed: central refused it for good (``register_decrease``), and every
    reading after it too, so a meter swapped under the same serial (its registers restarted at 0) never counted
    again. Now a fall is not signed (alarm), and three agreeing readings are signed as a new meter's
    (METER_REPLACED), which central accepts and accounts from."""
    p, board, _ = _poller(outbox, signer)
    state = MeterStatus("M", "modbus-tcp", "a", "m", 60)
    meter = FakeMeterReader("M", clock_ms=1_700_000_000_000)
    meter.import_wh = 5_000_000
    assert await p.poll(meter, state, 1.0) == 1
    meter.import_wh = 0  # a new meter behind the same serial
    assert await p.poll(meter, state, 1.0) is None
    assert "fell" in board.alarms["register_jump:M"]
    assert await p.poll(meter, state, 1.0) is None
    assert await p.poll(meter, state, 1.0) == 2
    assert "register_jump:M" not in board.alarms
    assert await p.poll(meter, state, 1.0) == 3
    records = [decode_reading(raw) for _, raw in outbox.fetch(0, None, 10)]
    assert [(r.import_wh, r.flags) for r in records] == [
        (5_000_010, 0), (30, int(Flags.METER_REPLACED)), (40, 0)
    ]


async def test_the_register_rise_bound_is_the_gateways_setting(tmp_path: Path, signer: ProtocolSigner) -> None:
    """``[poll] max_power_w``: a gateway on a larger connection (or with a simulator running faster than real time)
    signs a rise the 2 MW default refuses."""
    meter = FakeMeterReader("M", clock_ms=1_700_000_000_000)  # reads 1 s apart
    state = MeterStatus("M", "modbus-tcp", "a", "m", 60)
    for max_power_w, second in ((MAX_POWER_W, None), (20_000_000, 2)):
        outbox = Outbox.open(tmp_path / f"{max_power_w}.sqlite", new_device=True, max_power_w=max_power_w)
        try:
            p, _, _ = _poller(outbox, signer)
            meter.import_step = 10
            assert await p.poll(meter, state, 1.0) == 1
            meter.import_step = 5_000  # 5 kWh in one second: 18 MW
            assert await p.poll(meter, state, 1.0) == second
        finally:
            outbox.close()


async def test_a_gateway_clock_never_set_signs_nothing_until_ntp_sets_it(
    outbox: Outbox, signer: ProtocolSigner
) -> None:
    """A gateway that boots without RTC or network starts in 1970. Central rejects such readings for good (before the
    gateway's registration), so they used to be signed and sent, each one a dead letter. Now a tick with a clock before
    2020 gives no reading (the cumulative registers carry the energy to the first reading after NTP set the clock),
    and the page says why."""
    now = [3600.0]  # 1970-01-01 01:00 UTC
    board = StatusBoard(device_id="d", version="t", started_ms=0, link=LinkState("x"))
    p = Poller(outbox=outbox, signer=signer, board=board, on_record=lambda: None, clock_synced=lambda: False,
               wall=lambda: now[0])
    state = MeterStatus("M", "modbus-tcp", "a", "m", 60)
    meter = FakeMeterReader("M", clock_ms=3_600_000)
    assert await p.poll(meter, state, 1.0) is None
    assert meter.reads == 0  # not even read: nothing about it could be signed
    assert outbox.stats().depth == 0
    assert "1970-01-01 01:00:00" in board.alarms["clock_unset"]
    assert "not set" in (state.last_error or "")
    now[0] = 1_700_000_000.0  # NTP stepped the clock forward
    meter.clock_ms = 1_700_000_000_000
    assert await p.poll(meter, state, 1.0) == 1
    assert "clock_unset" not in board.alarms
