"""Exact accounting: worked examples, then Hypothesis properties against an independent Fraction reference."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from central.accounting import DEFAULT_WINDOW_MS, METER_REPLACED, MeterReading, close_windows, window_start
from central.accounting.errors import WindowConfigError
from central.accounting.merkle import merkle_root
from central.accounting.window_energy import Checkpoint, Window
from protocol.record import Flags
from tests.central.accounting.window_reference import rd, reference_windows, streams

W = DEFAULT_WINDOW_MS
MIN = 60_000


# ---------------------------------------------------------------- worked examples


def test_interpolation_floor_and_finality() -> None:
    t0 = 1_700_000_100_000 - 1_700_000_100_000 % W  # a UTC-aligned boundary
    readings = [rd(1, t0 + 5 * MIN, 1000), rd(2, t0 + 20 * MIN, 1100)]
    s = close_windows(readings)
    # boundary t0+15min: 1000 + floor(100 * 10 / 15) = 1066; the first window is partial (from the first reading)
    assert [(w.start_ms, w.export_wh) for w in s.windows] == [(t0, 66)]
    assert s.checkpoint is not None
    assert s.checkpoint.boundary_ms == t0 + W
    assert s.checkpoint.cum_export == 1066
    assert s.windows[0].record_hashes == (readings[0].record_hash, readings[1].record_hash)
    assert s.windows[0].merkle_root == merkle_root([readings[0].record_hash, readings[1].record_hash])
    # the window [t0+15, t0+30) is not final until a reading at or after t0+30 exists
    more = [*readings, rd(3, t0 + 29 * MIN, 1190)]
    assert close_windows(more, s.checkpoint).windows == ()
    s2 = close_windows([*more, rd(4, t0 + 30 * MIN, 1200)], s.checkpoint)
    assert [(w.start_ms, w.export_wh) for w in s2.windows] == [(t0 + W, 1200 - 1066)]
    assert s2.checkpoint is not None
    assert s2.checkpoint.anchor.seq == 4  # reading exactly on the boundary


def test_gap_spanning_several_windows_sums_exactly() -> None:
    t0 = 1_800_000_000_000 - 1_800_000_000_000 % W
    readings = [rd(1, t0 + 1, 0, imp=7), rd(2, t0 + 4 * W + 7 * MIN, 1001, imp=10)]
    s = close_windows(readings)
    # the window holding the first reading, then one gap window up to the last boundary before the second reading
    assert [(w.start_ms, w.end_ms) for w in s.windows] == [(t0, t0 + W), (t0 + W, t0 + 4 * W)]
    assert sum(w.export_wh for w in s.windows) == s.windows[-1].end_export - 0
    ends = [w.end_export for w in s.windows]
    # each boundary floor-interpolated on the straight line between the two readings
    span = readings[1].timestamp_ms - readings[0].timestamp_ms
    assert ends == [1001 * (t0 + k * W - readings[0].timestamp_ms) // span for k in (1, 4)]
    assert sum(w.import_wh for w in s.windows) == s.windows[-1].end_import - 7


def test_meter_replaced_keeps_energy_before_and_counts_after() -> None:
    t0 = 1_800_000_000_000 - 1_800_000_000_000 % W
    readings = [
        rd(1, t0, 50_000),
        rd(2, t0 + 10 * MIN, 50_600),  # old meter's last reading
        rd(3, t0 + 12 * MIN, 3, flags=METER_REPLACED),  # new meter, registers restarted near zero
        rd(4, t0 + 30 * MIN, 903),
    ]
    s = close_windows(readings)
    # continuous register: 50000, 50600, 50600 (baseline restarts), 50600 + 900
    assert sum(w.export_wh for w in s.windows) == 600 + 900
    first, second = s.windows
    # boundary t0+15: between 50600 (t+12) and 51500 (t+30): 50600 + floor(900 * 3 / 18) = 50750
    assert first.export_wh == 750
    assert second.export_wh == 750


def test_register_decrease_without_flag_is_never_negative() -> None:
    t0 = 1_800_000_000_000 - 1_800_000_000_000 % W
    s = close_windows([rd(1, t0, 500), rd(2, t0 + W, 100), rd(3, t0 + 2 * W, 160)])
    assert [w.export_wh for w in s.windows] == [0, 60]


def test_late_reading_inside_a_final_span_is_counted_in_the_next_window() -> None:
    t0 = 1_800_000_000_000 - 1_800_000_000_000 % W
    early = [rd(1, t0, 0), rd(3, t0 + 16 * MIN, 1600)]
    s1 = close_windows(early)
    assert [w.export_wh for w in s1.windows] == [1500]
    # seq 2 (t0+14min, 200 Wh) arrives after window 1 was final and minted: window 1 is not revised; the meter's
    # total is still conserved in the next window.
    late = [*early, rd(2, t0 + 14 * MIN, 200), rd(4, t0 + 30 * MIN, 3000)]
    s2 = close_windows(late, s1.checkpoint)
    assert [w.export_wh for w in s2.windows] == [1500]
    assert s2.checkpoint is not None
    assert s2.checkpoint.cum_export - s2.checkpoint.origin_export == 3000


def test_duplicates_and_reprocessing_are_idempotent() -> None:
    t0 = 1_800_000_000_000 - 1_800_000_000_000 % W
    readings = [rd(i, t0 + i * 7 * MIN, i * 111) for i in range(10)]
    s = close_windows(readings + readings[::2])
    assert s.windows
    again = close_windows(readings + readings, s.checkpoint)
    assert again.windows == ()
    assert again.checkpoint == s.checkpoint
    assert close_windows([], s.checkpoint) == again


def test_window_config() -> None:
    assert window_start(W + 5, W) == W
    assert window_start(W, W) == W
    for bad in (0, -W, 7 * MIN + 1, 7 * MIN):
        with pytest.raises(WindowConfigError):
            close_windows([], None, bad)
    assert close_windows([rd(1, 0, 0), rd(2, 3_600_000, 10)], None, 3_600_000).windows[0].export_wh == 10


def test_flag_constant_matches_protocol() -> None:
    assert int(Flags.METER_REPLACED) == METER_REPLACED


# ---------------------------------------------------------------- reference and properties


def span_total(windows: tuple[Window, ...] | list[Window]) -> tuple[int, int]:
    return sum(w.import_wh for w in windows), sum(w.export_wh for w in windows)


@given(streams(ties=True), st.sampled_from([MIN * 5, W, 3_600_000]))
def test_batch_matches_reference_and_telescopes(readings: list[MeterReading], window_ms: int) -> None:
    s = close_windows(readings, None, window_ms)
    ref = reference_windows(readings, window_ms)
    assert [(w.start_ms, w.import_wh, w.export_wh) for w in s.windows] == ref
    if s.windows:
        assert s.checkpoint is not None
        # Σ window Wh == register(last final boundary) - register(first reading), exactly
        assert span_total(s.windows) == (
            s.checkpoint.cum_import - s.checkpoint.origin_import,
            s.checkpoint.cum_export - s.checkpoint.origin_export,
        )
        assert s.checkpoint.origin_export == min(readings, key=lambda r: r.key).export_wh
        # contiguous, aligned, whole multiples of the window length
        assert all(a.end_ms == b.start_ms for a, b in pairwise(s.windows))
        assert all(w.start_ms % window_ms == 0 and (w.end_ms - w.start_ms) % window_ms == 0 for w in s.windows)


@given(streams(), st.data())
@settings(max_examples=150)
def test_in_order_late_and_duplicate_delivery_equals_batch(readings: list[MeterReading], data: st.DataObject) -> None:
    """Deliveries in time order but in arbitrary late batches, with re-sent duplicates: same windows as at once."""
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(readings)), max_size=6)))
    seen: list[MeterReading] = []
    cp: Checkpoint | None = None
    got: list[Window] = []
    prev = 0
    for cut in [*cuts, len(readings)]:
        seen.extend(readings[prev:cut])
        seen.extend(rng.choices(seen, k=min(len(seen), 3)))  # redelivered duplicates
        prev = cut
        s = close_windows(seen, cp)
        got.extend(s.windows)
        cp = s.checkpoint
        # re-processing after every step is idempotent
        assert close_windows(seen, cp) == close_windows([], cp) == type(s)((), cp)
    assert got == list(close_windows(readings).windows)


@given(streams(replacements=False, ties=True), st.data())
@settings(max_examples=150)
def test_any_arrival_order_conserves_and_never_overcounts(readings: list[MeterReading], data: st.DataObject) -> None:
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    arrival = readings[:]
    rng.shuffle(arrival)
    arrival += rng.choices(readings, k=len(readings) // 2)
    seen: list[MeterReading] = []
    cp: Checkpoint | None = None
    got: list[Window] = []
    for r in arrival:
        seen.append(r)
        if rng.random() < 0.5:
            continue
        s = close_windows(seen, cp)
        got.extend(s.windows)
        cp = s.checkpoint
        if cp is not None:
            # a frozen boundary never exceeds what the registers had reached in the readings known at the time
            assert cp.cum_export <= max(x.export_wh for x in seen)
            assert cp.cum_import <= max(x.import_wh for x in seen)
    s = close_windows(seen, cp)
    got.extend(s.windows)
    cp = s.checkpoint
    assert close_windows(seen, cp).windows == ()
    batch = close_windows(readings)
    if not got:
        assert cp is None
        return
    assert cp is not None
    assert all(w.export_wh >= 0 and w.import_wh >= 0 for w in got)
    assert all(a.end_ms == b.start_ms for a, b in pairwise(got))
    # conserved exactly: Σ windows == frozen register at the last final boundary - register at the origin
    assert span_total(got) == (cp.cum_import - cp.origin_import, cp.cum_export - cp.origin_export)
    # every reading has arrived: the finalised span ends where the batch's does
    assert batch.checkpoint is not None
    assert cp.boundary_ms == batch.checkpoint.boundary_ms
    assert cp.cum_export <= max(r.export_wh for r in readings)
