"""The readings API's one-statement queries (ownership, release clipping, archive check and page or window sums in
one round trip) answer exactly what the archive-merging functions answer for the same clipped range."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from central.readings.queries import (
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


@pytest.fixture
async def pool(pg_dsn: str) -> asyncpg.Pool:
    p = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    assert p is not None
    yield p
    await p.close()


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
