"""The readings API's one-statement queries (ownership, release clipping, archive check and page or window sums in
one round trip) answer exactly what the archive-merging functions answer for the same clipped range."""

from __future__ import annotations

import random
import uuid

import asyncpg

from central.readings.queries import (
    LOOKBACK_MS,
    WINDOW_MS,
    decode_cursor,
    list_readings,
    owned_energy,
    owned_page,
    window_energy,
)
from tests.central.accounting.acct_mint_env import STEP_MS, T0, feed, seed_site
from tests.central.pg import add_user

N = 40  # readings, every 5 minutes: 200 minutes, 14 windows


def _first_window(visible_ms: int) -> int:
    return visible_ms + (-visible_ms) % WINDOW_MS


async def test_pages_and_energy_match_the_two_step_queries(pool: asyncpg.Pool) -> None:
    owner, stranger = await add_user(pool), await add_user(pool)
    site = await seed_site(pool, [owner], ["ONE-1"])
    await feed(pool, site, T0, N, {"ONE-1": 7})
    meter = site.meters["ONE-1"]
    ranges = [(T0 - WINDOW_MS, T0 + N * STEP_MS), (T0 + 17 * STEP_MS + 1, T0 + 31 * STEP_MS),
              (T0 + 3 * WINDOW_MS, T0 + 3 * WINDOW_MS + 1), (T0 + N * STEP_MS, T0 + N * STEP_MS + WINDOW_MS)]
    for released in (None, T0 + 12 * STEP_MS + 123):
        if released is not None:  # the owner released and claimed again: only what came after is theirs
            await pool.execute("UPDATE meters SET released_at = to_timestamp($2::float8 / 1000) WHERE id = $1",
                               meter, released)
        visible = released or 0
        for start, end in ranges:
            clipped = min(max(start, visible), end)
            cursor = None
            while True:
                found, page = await owned_page(pool, meter, owner, from_ms=start, to_ms=end, cursor=cursor, limit=7)
                assert found.exists
                assert found.owner == owner
                assert not found.archived
                assert page is not None
                expected = await list_readings(pool, meter, from_ms=clipped, to_ms=end, cursor=cursor, limit=7)
                assert page == expected
                if page.next_cursor is None:
                    break
                assert decode_cursor(page.next_cursor)[0] == page.readings[-1].timestamp_ms
                cursor = page.next_cursor

            e_start = min(max(start, _first_window(visible)), end)
            found, energy = await owned_energy(pool, meter, owner, from_ms=start, to_ms=end)
            assert energy is not None
            if e_start >= end:
                assert energy.windows == []
            else:
                assert energy == await window_energy(pool, meter, from_ms=e_start, to_ms=end)
        # somebody else's meter, or no meter at all: no rows, only the answer that decides the 404
        found, page = await owned_page(pool, meter, stranger, from_ms=T0, to_ms=T0 + N * STEP_MS, cursor=None,
                                       limit=10)
        assert found.exists
        assert found.owner == owner
        assert page is None
        found, energy = await owned_energy(pool, meter, stranger, from_ms=T0, to_ms=T0 + N * STEP_MS)
        assert found.owner == owner
        assert energy is None
        found, page = await owned_page(pool, uuid.uuid4(), owner, from_ms=T0, to_ms=T0 + 1, cursor=None, limit=1)
        assert not found.exists
        assert page is None
    # a window sum is the register difference across it (the reading before the range is the base)
    found, energy = await owned_energy(pool, meter, owner, from_ms=T0 + 15 * STEP_MS, to_ms=T0 + 18 * STEP_MS)
    assert energy is not None
    assert [w.export_wh for w in energy.windows] == [21]


async def test_an_archived_range_is_reported_not_read(pool: asyncpg.Pool) -> None:
    owner = await add_user(pool)
    site = await seed_site(pool, [owner], ["ONE-2"])
    await feed(pool, site, T0, 4, {"ONE-2": 3})
    meter = site.meters["ONE-2"]
    far = T0 - 30 * 86_400_000  # an archived day long before the hot readings
    await pool.execute("INSERT INTO reading_archives (from_ms, to_ms, object_key, readings, bytes, sha256) "
                       "VALUES ($1, $2, $3, 0, 0, $4)", far, far + 86_400_000, f"test/{far}", bytes(32))
    try:
        found, page = await owned_page(pool, meter, owner, from_ms=far, to_ms=T0 + WINDOW_MS, cursor=None, limit=5)
        assert found.archived
        assert page is None
        found, page = await owned_page(pool, meter, owner, from_ms=T0, to_ms=T0 + WINDOW_MS, cursor=None, limit=5)
        assert not found.archived
        assert page is not None
        assert len(page.readings) == 3
        found, energy = await owned_energy(pool, meter, owner, from_ms=far + 1000, to_ms=T0 + WINDOW_MS)
        assert found.archived
        assert energy is None
    finally:
        await pool.execute("DELETE FROM reading_archives WHERE object_key = $1", f"test/{far}")


async def test_window_sums_match_reading_by_reading_on_irregular_readings(pool: asyncpg.Pool) -> None:
    """The one-statement energy telescopes each window (last registers minus the previous window's last); on
    irregular readings — several per window, empty windows, a reading flagged METER_REPLACED, a second gateway
    reporting for the meter — every answer equals reading-by-reading sums, or is left to them (None)."""
    owner = await add_user(pool)
    site = await seed_site(pool, [owner], ["ONE-3"])
    meter = site.meters["ONE-3"]
    keys = await _keys(pool, meter, site.gateway.device_id)
    other = await pool.fetchval("INSERT INTO devices (device_id, public_key, site_label) VALUES ($1, $2, 'second') "
                                "RETURNING device_key", "B" * 44, bytes(32))
    await pool.execute("SELECT reading_partition_for(t) FROM unnest($1::bigint[]) AS t",
                       list(range(T0 - WINDOW_MS, T0 + 13 * WINDOW_MS, WINDOW_MS)))
    rng = random.Random(12)
    left_to_slow = 0
    for case in range(40):
        await pool.execute("DELETE FROM reading_rows WHERE meter_key = $1", keys["meter_key"])
        n = rng.randint(1, 60)
        span = range(T0 - WINDOW_MS, T0 + 12 * WINDOW_MS)
        # every fourth case repeats timestamps: a gateway whose clock stood still stamps several readings alike
        stamps = sorted(rng.choices(span[::WINDOW_MS // 3], k=n) if case % 4 == 3 else rng.sample(span, n))
        imp, exp, rows = rng.randint(0, 10**6), rng.randint(0, 10**6), []
        for seq, ts in enumerate(stamps, start=1):
            flags = 2 if case % 4 == 1 and rng.random() < 0.1 else 0
            if flags:  # a new meter: registers start again
                imp, exp = rng.randint(0, 100), rng.randint(0, 100)
            else:
                imp, exp = imp + rng.randint(0, 500), exp + rng.randint(0, 900)
            device = other if case % 4 == 2 and rng.random() < 0.2 else keys["device_key"]
            rows.append((seq, ts, imp, exp, device, keys["meter_key"], 0, flags, bytes(32), bytes(64)))
            if device == other and seq > 1:  # the first gateway read the meter at the same moment: a tie in time
                rows.append((seq, ts, imp - 1, exp + 1, keys["device_key"], keys["meter_key"], 0, 0, bytes(32),
                             bytes(64)))
        await pool.copy_records_to_table("reading_rows", records=rows, columns=[
            "seq", "timestamp_ms", "import_wh", "export_wh", "device_key", "meter_key", "power_w", "flags",
            "prev_hash", "signature"])
        # the per-window sums ingest keeps (migration 0108), for all, some or none of the windows
        await pool.execute("DELETE FROM reading_windows WHERE meter_key = $1", keys["meter_key"])
        lo = T0 - WINDOW_MS + rng.choice((0, 3, 6, 13)) * WINDOW_MS
        await pool.execute("SELECT reading_windows_rebuild($1, $2, $3)", keys["meter_key"], lo,
                           lo + rng.choice((0, 4, 14)) * WINDOW_MS)
        start = T0 + rng.randint(0, 6) * WINDOW_MS + rng.choice((0, 1, WINDOW_MS // 2))
        end = start + rng.randint(1, 7 * WINDOW_MS)
        found, energy = await owned_energy(pool, meter, owner, from_ms=start, to_ms=end)
        expected = await window_energy(pool, meter, from_ms=start, to_ms=end)
        async with pool.acquire() as conn:  # the bulk pool's sessions run the generic plan: the same answer
            await conn.execute("SET plan_cache_mode = force_generic_plan")
            assert await owned_energy(conn, meter, owner, from_ms=start, to_ms=end) == (found, energy)
        if energy is None:
            left_to_slow += 1
            assert found.owner == owner
        else:
            assert energy == expected, (case, rows)
    assert 0 < left_to_slow < 40  # both paths were taken


async def test_a_base_older_than_the_lookback_is_not_used(pool: asyncpg.Pool) -> None:
    """The reading before the range is looked for up to LOOKBACK_MS back, in the hot table as in the archive: after a
    longer silence the first reading counts 0 (not a week of energy in one window), on both paths."""
    owner = await add_user(pool)
    site = await seed_site(pool, [owner], ["ONE-4"])
    meter = site.meters["ONE-4"]
    keys = await _keys(pool, meter, site.gateway.device_id)
    silent = T0 - LOOKBACK_MS - WINDOW_MS
    await pool.execute("SELECT reading_partition_for(t) FROM unnest($1::bigint[]) AS t", [silent, T0])
    rows = [(seq, ts, 1_000 * seq, 500 * seq, keys["device_key"], keys["meter_key"], 0, 0, bytes(32), bytes(64))
            for seq, ts in ((1, silent), (2, T0 + 60_000), (3, T0 + 120_000))]
    await pool.copy_records_to_table("reading_rows", records=rows, columns=[
        "seq", "timestamp_ms", "import_wh", "export_wh", "device_key", "meter_key", "power_w", "flags",
        "prev_hash", "signature"])
    found, energy = await owned_energy(pool, meter, owner, from_ms=T0, to_ms=T0 + WINDOW_MS)
    assert found.owner == owner
    assert energy == await window_energy(pool, meter, from_ms=T0, to_ms=T0 + WINDOW_MS)
    assert energy is not None
    assert [(w.import_wh, w.export_wh, w.readings) for w in energy.windows] == [(1_000, 500, 2)]


async def _keys(pool: asyncpg.Pool, meter: uuid.UUID, device_id: str) -> asyncpg.Record:
    """The meter's and the gateway's compact keys, for rows written straight into reading_rows."""
    row = await pool.fetchrow(
        "SELECT m.meter_key, d.device_key FROM meters m JOIN devices d ON d.device_id = $2 WHERE m.id = $1",
        meter, device_id)
    assert row is not None
    return row
