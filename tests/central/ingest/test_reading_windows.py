"""Per-window sums kept by ingest (``reading_windows``, migration 0108): through the real ingest path, with batches
that arrive out of order (a backlog filling gaps after newer readings), twice (at-least-once delivery), and a meter
read every minute beside one read every 15 minutes, the rows equal a rebuild from the stored readings, exist only for
windows of two readings or more, and the energy statement that reads them answers what reading-by-reading sums do."""

from __future__ import annotations

import random

import asyncpg

from central.readings.queries import WINDOW_MS, owned_energy, window_energy
from tests.central.accounting.acct_mint_env import T0, seed_site
from tests.central.gateway import exact, ingest, ingest_service
from tests.central.pg import add_user


async def _rows(pool: asyncpg.Pool) -> set[tuple[object, ...]]:
    return {tuple(tuple(v) if isinstance(v, list) else v for v in r)
            for r in await pool.fetch("SELECT * FROM reading_windows")}


async def test_window_sums_kept_by_ingest_equal_a_rebuild(pool: asyncpg.Pool) -> None:
    owner = await add_user(pool)
    site = await seed_site(pool, [owner, owner], ["DENSE-1", "SPARSE-1"])
    dense, sparse = site.meters["DENSE-1"], site.meters["SPARSE-1"]
    # one chain: the dense meter every minute, the sparse one every 15 minutes, for 3 hours
    records = []
    for minute in range(180):
        ts = T0 + minute * 60_000 + 7_000
        records.append(exact(site.gateway, "DENSE-1", ts, 1_000 + 3 * minute, import_wh=50 + minute))
        if minute % 15 == 0:
            records.append(exact(site.gateway, "SPARSE-1", ts, 20 * minute, import_wh=minute))
    batches = [records[i : i + 7] for i in range(0, len(records), 7)]
    rng = random.Random(7)
    order = batches[:5] + rng.sample(batches[5:], len(batches) - 5)  # newer batches first, then the backlog
    svc = ingest_service(pool, T0 + 4 * 3_600_000)
    for batch in order + rng.sample(batches, 6):  # and some delivered twice
        await ingest(svc, site.gateway.device_id, batch)
    assert await pool.fetchval("SELECT count(*) FROM reading_rows") == len(records)

    kept = await _rows(pool)
    keys = [r["meter_key"] for r in await pool.fetch("SELECT meter_key FROM meters WHERE id = ANY($1)",
                                                      [dense, sparse])]
    for key in keys:
        await pool.execute("SELECT reading_windows_rebuild($1, $2, $3)", key, T0 - WINDOW_MS, T0 + 5 * 3_600_000)
    assert kept == await _rows(pool)
    per_meter = {r[0]: r[1] for r in await pool.fetch(
        "SELECT m.id, count(w.*) FROM meters m LEFT JOIN reading_windows w ON w.meter_key = m.meter_key "
        "WHERE m.id = ANY($1) GROUP BY m.id", [dense, sparse])}
    assert per_meter == {dense: 12, sparse: 0}  # 3 h of dense windows; one reading per window: no rows

    for meter in (dense, sparse):
        for start, end in ((T0, T0 + 3 * 3_600_000), (T0 + 5 * WINDOW_MS, T0 + 9 * WINDOW_MS + 1)):
            found, energy = await owned_energy(pool, meter, owner, from_ms=start, to_ms=end)
            assert energy is not None
            assert found.owner == owner
            assert energy == await window_energy(pool, meter, from_ms=start, to_ms=end)
