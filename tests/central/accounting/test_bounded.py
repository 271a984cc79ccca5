"""D4 (issue 10): accounting work is bounded. A gap between readings is one window, not one per empty step (energy
still exact and conserved), and a pass finalises at most ``max_windows`` windows, continuing from its checkpoint.
Pure window closing first, then the accountant on real PostgreSQL."""

from __future__ import annotations

from itertools import pairwise

import asyncpg
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from central.accounting import DEFAULT_WINDOW_MS, MeterReading, close_windows
from central.accounting.pg_store import PgAccountingStore
from central.accounting.service import AccountingService
from central.accounting.window_energy import Checkpoint, Window
from central.ingest.core import MAX_AGE_MS
from central.ingest.metrics import IngestMetrics
from central.ingest.postgres import PgIngestStore
from central.ingest.service import IngestService
from tests.central.accounting.window_reference import rd, reference_windows, streams
from tests.central.gateway import Gateway, exact, ingest
from tests.central.pg import add_device, add_meter, add_user

W = DEFAULT_WINDOW_MS
MIN = 60_000
DAY = 86_400_000
T0 = 1_800_000_000_000 - 1_800_000_000_000 % W


def ingest_at(pool: asyncpg.Pool, now_ms: int, max_age_ms: int = MAX_AGE_MS) -> IngestService:
    return IngestService(PgIngestStore(pool), metrics=IngestMetrics.for_registry(CollectorRegistry()),
                         clock_ms=lambda: now_ms, max_age_ms=max_age_ms)


def test_gap_of_days_is_one_window_and_conserves_energy() -> None:
    # the probe's case: a reading 20 days before the others (345,600 five-second windows on main)
    readings = [rd(1, T0 - 20 * DAY + 7 * MIN, 1_000), rd(2, T0 + 3 * MIN, 901_000), rd(3, T0 + 2 * W, 902_000)]
    for window_ms in (5_000, W):
        s = close_windows(readings, None, window_ms)
        assert len(s.windows) <= 4, [(w.start_ms, w.end_ms) for w in s.windows]
        assert s.checkpoint is not None
        assert s.checkpoint.boundary_ms == T0 + 2 * W
        # exactly the register difference, no rounding residue
        assert sum(w.export_wh for w in s.windows) == 902_000 - 1_000
        assert all(a.end_ms == b.start_ms for a, b in pairwise(s.windows))


def test_unset_clock_reading_does_not_explode() -> None:
    # timestamp near 0, then now: a handful of windows, not ~2 million
    s = close_windows([rd(1, 1_234, 0), rd(2, T0 + 1, 500), rd(3, T0 + W + 1, 600)], None, W)
    assert len(s.windows) <= 3
    assert sum(w.export_wh for w in s.windows) == s.windows[-1].end_export


def _bounded_run(readings: list[MeterReading], window_ms: int, n: int) -> tuple[list[Window], Checkpoint | None]:
    got: list[Window] = []
    cp: Checkpoint | None = None
    while True:
        s = close_windows(readings, cp, window_ms, n)
        assert len(s.windows) <= n
        if not s.windows:
            return got, cp
        got.extend(s.windows)
        cp = s.checkpoint


@given(streams(ties=True), st.sampled_from([5 * MIN, W, 3_600_000]), st.integers(1, 4))
@settings(max_examples=150)
def test_bounded_passes_equal_one_unbounded_pass(
    readings: list[MeterReading], window_ms: int, n: int
) -> None:
    got, cp = _bounded_run(readings, window_ms, n)
    whole = close_windows(readings, None, window_ms)
    assert got == list(whole.windows)
    assert cp == whole.checkpoint
    assert [(w.start_ms, w.import_wh, w.export_wh) for w in got] == reference_windows(readings, window_ms)


async def test_unset_clock_gateway_bounded_windows_per_pass(pool: asyncpg.Pool) -> None:
    """Readings from a gateway whose clock was never set (stored before this fix, or with registration and age
    checks that let them through): every accounting pass writes at most ``max_windows`` rows, and catching up
    conserves the energy exactly."""
    owner = await add_user(pool)
    gw = Gateway(now_ms=0)
    await add_device(pool, gw.device_id, gw.key.public_key, registered_ms=0)
    meter = await add_meter(pool, gw.device_id, "UC-1", owner)
    early = [exact(gw, "UC-1", 1_000 + 5 * MIN * k, 10 * k) for k in range(40)]  # ~13 windows near 1970
    await ingest(ingest_at(pool, early[-1].timestamp_ms, max_age_ms=366 * DAY), gw.device_id, early)
    late = [exact(gw, "UC-1", T0 + 5 * MIN * k, 1_000 + 10 * k) for k in range(10)]
    await ingest(ingest_at(pool, late[-1].timestamp_ms), gw.device_id, late)

    acct = AccountingService(PgAccountingStore(pool), horizon_ms=DAY, max_windows=3)
    per_pass = []
    before = 0
    while await acct.run_once():
        rows = int(await pool.fetchval("SELECT count(*) FROM energy_windows WHERE meter_id = $1", meter))
        per_pass.append(rows - before)
        before = rows
        assert len(per_pass) < 100
    assert per_pass
    assert max(per_pass) <= 3
    rows = await pool.fetch("SELECT * FROM energy_windows WHERE meter_id = $1 ORDER BY window_start_ms", meter)
    # the 1970 stretch, one gap window across 57 years, the recent stretch: not ~2 million windows
    assert len(rows) < 30
    assert all(a["window_end_ms"] == b["window_start_ms"] for a, b in pairwise(rows))
    assert sum(r["export_wh"] for r in rows) == rows[-1]["end_export"] - 0
    assert rows[-1]["window_end_ms"] == T0 + 3 * W
