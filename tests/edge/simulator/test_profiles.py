"""Simulated households: PV export at noon, import at night, monotonic registers, fast-forwardable time."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.simulator.profiles import Kind, ManualClock, Profile, SimulatedRegisters

MIDNIGHT = 1_700_006_400  # 2023-11-15 00:00 UTC


def test_prosumer_exports_at_noon_and_imports_at_night() -> None:
    p = Profile(Kind.PROSUMER)
    assert p.net_w(MIDNIGHT + 12 * 3600) < -2000
    assert p.net_w(MIDNIGHT + 2 * 3600) > 0
    assert p.net_w(MIDNIGHT + 21 * 3600) > 0


def test_consumer_never_exports() -> None:
    s = SimulatedRegisters(Profile(Kind.CONSUMER), MIDNIGHT)
    s.advance(MIDNIGHT + 86400)
    assert s.export_wh == 0
    assert 8_000 < s.import_wh < 40_000  # a plausible household day


def test_a_day_fast_forwarded_is_reproducible() -> None:
    clock = ManualClock(MIDNIGHT)
    a = SimulatedRegisters(Profile(Kind.PROSUMER, seed=3), clock.now, import_wh=100)
    b = SimulatedRegisters(Profile(Kind.PROSUMER, seed=3), clock.now, import_wh=100)
    for _ in range(24):
        clock.advance(3600)
        a.advance(clock())
    b.advance(clock())
    assert (a.import_wh, a.export_wh) == (b.import_wh, b.export_wh)
    assert a.export_wh > 10_000  # a 5 kW-peak array exports well over 10 kWh on a clear day
    assert a.import_wh > 100


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=20_000), min_size=1, max_size=10))
def test_registers_never_decrease(steps: list[float]) -> None:
    s = SimulatedRegisters(Profile(Kind.PROSUMER), MIDNIGHT)
    t = float(MIDNIGHT)
    last = (0, 0)
    for step in steps:
        t += step
        snap = s.snapshot(t)
        assert snap["energy_import"] >= last[0]
        assert snap["energy_export"] >= last[1]
        last = (snap["energy_import"], snap["energy_export"])
    s.advance(t - 1000)  # time going backwards is ignored
    assert (s.snapshot(t)["energy_import"], s.snapshot(t)["energy_export"]) == last
