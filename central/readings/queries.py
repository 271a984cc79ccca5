"""Read side of stored readings: per-meter pages and 15-minute window energy, from the hot table (``reading_rows``,
migration 0090; the signed record rebuilt from its pieces) and, for archived ranges, from the archive files
(``central.archive``), merged in one order: (timestamp, seq, device id)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from typing import TypeAlias
from uuid import UUID

import asyncpg

from central.archive.pg import ArchiveReader, archived, meter_rows
from central.archive.record import ArchivedReading
from central.errors import CentralError
from protocol.record import POWER_NOT_AVAILABLE, Flags, assemble

WINDOW_MS = 15 * 60 * 1000
MAX_PAGE = 1000
MAX_WINDOWS = 31 * 24 * 4  # a month of 15-minute windows per request
#: How far back the energy query looks for the reading before its range.
LOOKBACK_MS = 7 * 86_400_000
METER_REPLACED = int(Flags.METER_REPLACED)


class QueryError(CentralError):
    """A readings query was asked something impossible (bad cursor, range too large)."""


@dataclass(frozen=True)
class ReadingOut:
    """One stored reading as owners see it; ``record`` is the signed record (hex) for independent verification."""

    device_id: str
    seq: int
    timestamp_ms: int
    import_wh: int
    export_wh: int
    power_w: int | None
    flags: int
    record_hash: str
    record: str


@dataclass(frozen=True)
class ReadingsPage:
    meter_id: UUID
    readings: list[ReadingOut]
    #: Pass as ``cursor`` to get the next page; null on the last page.
    next_cursor: str | None


@dataclass(frozen=True)
class WindowEnergy:
    """Energy of one 15-minute window [start_ms, start_ms + 900000): sums of register deltas between consecutive
    readings, each delta attributed to the window of the later reading (a METER_REPLACED reading contributes 0)."""

    start_ms: int
    import_wh: int
    export_wh: int
    readings: int


@dataclass(frozen=True)
class MeterEnergy:
    meter_id: UUID
    window_ms: int
    windows: list[WindowEnergy]


def encode_cursor(timestamp_ms: int, seq: int, device_id: str) -> str:
    return base64.urlsafe_b64encode(f"{timestamp_ms}:{seq}:{device_id}".encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[int, int, str]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode("ascii")
        ts, seq, device = raw.split(":", 2)
        return int(ts), int(seq), device
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise QueryError("cursor is not one this API issued") from None


def _out(r: ArchivedReading) -> ReadingOut:
    raw = r.raw()
    return ReadingOut(
        device_id=r.device_id,
        seq=r.seq,
        timestamp_ms=r.timestamp_ms,
        import_wh=r.import_wh,
        export_wh=r.export_wh,
        power_w=None if r.power_w == POWER_NOT_AVAILABLE else r.power_w,
        flags=r.flags,
        record_hash=hashlib.sha256(raw).hexdigest(),
        record=raw.hex(),
    )


def _row_out(row: asyncpg.Record, serial: str) -> ReadingOut:
    """:func:`_out` of a page row straight from its columns (no :class:`ArchivedReading` in between: a page of 100
    builds 100 fewer frozen objects)."""
    power = row["power_w"]
    raw = assemble(row["public_key"], serial, row["seq"], row["timestamp_ms"], row["import_wh"], row["export_wh"],
                   power, row["flags"], row["prev_hash"], row["signature"])
    return ReadingOut(row["device_id"], row["seq"], row["timestamp_ms"], row["import_wh"], row["export_wh"],
                      None if power == POWER_NOT_AVAILABLE else power, row["flags"], hashlib.sha256(raw).hexdigest(),
                      raw.hex())


_LAST_BEFORE = """
SELECT d.device_id, d.public_key, m.id AS meter_id, m.serial, r.seq, r.timestamp_ms, r.import_wh, r.export_wh,
       r.power_w, r.flags, r.prev_hash, r.signature, r.device_key, r.meter_key
FROM meters m JOIN reading_rows r ON r.meter_key = m.meter_key JOIN devices d ON d.device_key = r.device_key
WHERE m.id = $1 AND r.timestamp_ms < $2 AND r.timestamp_ms >= $3
ORDER BY r.timestamp_ms DESC, r.seq DESC LIMIT 1
"""

Conn: TypeAlias = asyncpg.Pool | asyncpg.Connection


async def meter_owner(conn: asyncpg.Pool | asyncpg.Connection, meter_id: UUID) -> tuple[bool, UUID | None, int]:
    """(meter exists, its owner or None, the first UTC ms its owner may see: its last release, else 0)."""
    row = await conn.fetchrow(
        "SELECT owner_id, (extract(epoch FROM released_at) * 1000)::bigint AS visible_from_ms"
        " FROM meters WHERE id = $1",
        meter_id,
    )
    if row is None:
        return False, None, 0
    return True, row["owner_id"], row["visible_from_ms"] or 0


async def list_readings(
    conn: asyncpg.Pool | asyncpg.Connection,
    meter_id: UUID,
    *,
    from_ms: int,
    to_ms: int,
    cursor: str | None = None,
    limit: int = 100,
    archive: ArchiveReader | None = None,
) -> ReadingsPage:
    """Readings of ``meter_id`` with from_ms <= timestamp_ms < to_ms, oldest first, ``limit`` per page."""
    if not 1 <= limit <= MAX_PAGE:
        raise QueryError(f"limit must be 1..{MAX_PAGE}")
    after = decode_cursor(cursor) if cursor else None
    rows = await meter_rows(conn, meter_id, from_ms, to_ms, after=after, limit=limit + 1, archive=archive)
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if rows else None
    next_cursor = encode_cursor(last.timestamp_ms, last.seq, last.device_id) if more and last else None
    return ReadingsPage(meter_id, [_out(r) for r in rows], next_cursor)


async def window_energy(
    conn: Conn, meter_id: UUID, *, from_ms: int, to_ms: int, archive: ArchiveReader | None = None,
    lookback_ms: int = LOOKBACK_MS,
) -> MeterEnergy:
    """Import/export Wh per 15-minute window (aligned to UTC) for windows starting in [from_ms, to_ms).

    Raw register deltas: the first reading in the range is diffed against the meter's last reading before it, looked
    for up to ``lookback_ms`` back (hot table, then archive; a meter silent for longer has no base: its first reading
    counts 0, rather than a week of energy landing in one window). Exact, interpolated accounting per settlement
    window is the accounting subsystem's job.
    """
    start = from_ms - from_ms % WINDOW_MS
    end = to_ms + (-to_ms) % WINDOW_MS
    if end <= start:
        raise QueryError("the time range is empty")
    if (end - start) // WINDOW_MS > MAX_WINDOWS:
        raise QueryError(f"at most {MAX_WINDOWS} windows per request")
    rows = await meter_rows(conn, meter_id, start, end, archive=archive)
    before = await conn.fetchrow(_LAST_BEFORE, meter_id, start, start - lookback_ms)
    previous = archived(before) if before is not None else None
    if previous is None and archive is not None:  # archived ranges are older than every hot one
        old = await archive.meter_readings(conn, meter_id, start - lookback_ms, start)
        previous = old[-1] if old else None
    sums: dict[int, list[int]] = {}
    for r in sorted(rows, key=lambda r: (r.timestamp_ms, r.seq)):
        window = sums.setdefault(r.timestamp_ms - r.timestamp_ms % WINDOW_MS, [0, 0, 0])
        if previous is not None and not r.flags & METER_REPLACED:
            window[0] += r.import_wh - previous.import_wh
            window[1] += r.export_wh - previous.export_wh
        window[2] += 1
        previous = r
    windows = [WindowEnergy(s, v[0], v[1], v[2]) for s, v in sorted(sums.items())]
    return MeterEnergy(meter_id, WINDOW_MS, windows)


# --------------------------------------------------------------------------------------------------------------
# One round trip per page (issue 12, bench/api.py): ownership, release clipping, the archive check and the page (or
# the window sums) in one statement. ``$owner`` NULL skips the ownership condition: the caller checked it on the
# primary and runs the statement on the read replica (``central.db.replica``). When an archived range overlaps the
# request the statement says so and the caller takes the archive-merging path above (archived ranges are older
# than every hot one, so pages of recent readings never open the archive).

_OWNED_PAGE = """
WITH m AS (SELECT id, owner_id, meter_key, serial,
                  coalesce((extract(epoch FROM released_at) * 1000)::bigint, 0) AS visible_from_ms
           FROM meters WHERE id = $1),
k AS MATERIALIZED (
    SELECT m.*, greatest($2, m.visible_from_ms) AS lo,
           EXISTS (SELECT 1 FROM reading_archives a WHERE a.from_ms < $3 AND a.to_ms > greatest($2, m.visible_from_ms))
               AS archived
    FROM m
)
SELECT k.owner_id, k.visible_from_ms, k.serial, k.archived,
       r.device_id, r.public_key, r.seq, r.timestamp_ms, r.import_wh, r.export_wh, r.power_w, r.flags, r.prev_hash,
       r.signature
FROM k LEFT JOIN LATERAL (
    -- Candidates in index order: the rows at the cursor's timestamp, and those after it up to the timestamp of the
    -- page's last row (ties in time included), then sorted in full order; not every row of the range.
    SELECT d.device_id, d.public_key, r.seq, r.timestamp_ms, r.import_wh, r.export_wh, r.power_w, r.flags,
           r.prev_hash, r.signature
    FROM reading_rows r JOIN devices d ON d.device_key = r.device_key
    WHERE r.meter_key = k.meter_key AND ($8::uuid IS NULL OR k.owner_id = $8) AND NOT k.archived
      AND r.timestamp_ms >= k.lo AND r.timestamp_ms >= $2 AND r.timestamp_ms >= $4 AND r.timestamp_ms < $3
      AND r.timestamp_ms <= coalesce((
          SELECT max(t.timestamp_ms) FROM (
              SELECT r2.timestamp_ms FROM reading_rows r2
              WHERE r2.meter_key = k.meter_key AND r2.timestamp_ms >= k.lo AND r2.timestamp_ms >= $2
                AND r2.timestamp_ms > $4
                AND r2.timestamp_ms < $3
              ORDER BY r2.timestamp_ms LIMIT $7
          ) t), $4)
      AND (r.timestamp_ms, r.seq, d.device_id) > ($4, $5, $6)
    ORDER BY r.timestamp_ms, r.seq, d.device_id LIMIT $7
) r ON true
ORDER BY r.timestamp_ms, r.seq, r.device_id
"""

#: ``lo``: the first window the owner may see (whole windows after the last release), aligned down; the reading
#: before it, up to ``$6`` (LOOKBACK_MS) back, is the base of the first delta (hot table; ``archived`` asks whether
#: the archive may hold it or the range). Sums as :func:`window_energy` computes them, without ordering every
#: reading: within a window the deltas telescope, so a window's sum is its last reading's registers minus the
#: previous window's last (or the base: the reading before the first window, else the very first reading itself,
#: which has no predecessor and counts 0). A window of two readings or more has its count and last reading kept as
#: the readings arrive (``reading_windows``, migration 0108: one row, not every reading, is read); the windows
#: between those are summed from their readings, one pass, one group per window.
#: Where that shortcut would not be exact the row says so and the caller takes :func:`window_energy`: a reading
#: flagged METER_REPLACED (its own delta counts 0), or readings of two gateways in one window (ties in time
#: between them are broken by device id there).
_OWNED_ENERGY = """
WITH m AS (SELECT id, owner_id, meter_key,
                  coalesce((extract(epoch FROM released_at) * 1000)::bigint, 0) AS visible_from_ms
           FROM meters WHERE id = $1),
b0 AS (
    SELECT m.*, greatest($2, m.visible_from_ms + (900000 - m.visible_from_ms % 900000) % 900000)
               AS start_ms
    FROM m
),
b AS (
    SELECT b0.*,
           EXISTS (SELECT 1 FROM reading_archives a
                   WHERE a.from_ms < $4 AND a.to_ms > b0.start_ms - $6::bigint - 900000) AS archived
    FROM b0
),
c AS (
    SELECT b.*, b.start_ms - ((b.start_ms % 900000) + 900000) % 900000 AS lo
    FROM b WHERE b.start_ms < $3 AND ($5::uuid IS NULL OR b.owner_id = $5) AND NOT b.archived
),
-- the index is (meter_key, timestamp_ms): each candidate is found by one probe for its timestamp, then the seq
-- order among the rows at that timestamp (never a sort of every reading before or in the range)
edge AS (
    -- (the bounds on $2 and $4 restate what lo implies, so that partitions outside them are pruned when the
    -- statement starts, not opened on every call)
    SELECT c.meter_key,
           (SELECT r.timestamp_ms FROM reading_rows r
            WHERE r.meter_key = c.meter_key AND r.timestamp_ms < c.lo AND r.timestamp_ms < $4
              AND r.timestamp_ms >= c.lo - $6::bigint
              AND r.timestamp_ms >= $2 - (($2 % 900000) + 900000) % 900000 - $6::bigint
            ORDER BY r.timestamp_ms DESC LIMIT 1) AS before_ms,
           (SELECT r.timestamp_ms FROM reading_rows r
            WHERE r.meter_key = c.meter_key AND r.timestamp_ms >= c.lo AND r.timestamp_ms < $4
              AND r.timestamp_ms >= $2 - (($2 % 900000) + 900000) % 900000
            ORDER BY r.timestamp_ms LIMIT 1) AS first_ms
    FROM c
),
base AS (
    SELECT registers FROM (
        (SELECT 0 AS pick, ARRAY[r.import_wh, r.export_wh] AS registers
         FROM edge JOIN reading_rows r ON r.meter_key = edge.meter_key AND r.timestamp_ms = edge.before_ms
             AND r.timestamp_ms < $4 AND r.timestamp_ms >= $2 - (($2 % 900000) + 900000) % 900000 - $6::bigint
         ORDER BY r.seq DESC LIMIT 1)
        UNION ALL
        (SELECT 1, ARRAY[r.import_wh, r.export_wh]
         FROM edge JOIN reading_rows r ON r.meter_key = edge.meter_key AND r.timestamp_ms = edge.first_ms
             AND r.timestamp_ms < $4 AND r.timestamp_ms >= $2 - (($2 % 900000) + 900000) % 900000
         ORDER BY r.seq LIMIT 1)
    ) candidates ORDER BY pick LIMIT 1
),
summ AS (
    -- windows of two readings or more, summed as the readings arrived (migration 0108)
    SELECT s.window_ms, s.readings::bigint AS readings, s.last, s.inexact
    FROM c JOIN reading_windows s ON s.meter_key = c.meter_key AND s.window_ms >= c.lo AND s.window_ms < $4
),
gaps AS (
    -- the runs of windows between them, from lo to the end: only their readings are read
    SELECT g_from, g_to FROM (
        SELECT coalesce(lag(summ.window_ms) OVER (ORDER BY summ.window_ms) + 900000, c.lo) AS g_from,
               summ.window_ms AS g_to
        FROM c, summ
        UNION ALL
        SELECT coalesce((SELECT max(window_ms) FROM summ) + 900000, c.lo), $4 FROM c
    ) g WHERE g_from < g_to
),
wins AS (
    SELECT * FROM summ
    UNION ALL
    SELECT r.timestamp_ms - ((r.timestamp_ms % 900000) + 900000) % 900000 AS window_ms,
           count(*)::bigint AS readings,
           max(ARRAY[r.timestamp_ms, r.seq, r.import_wh, r.export_wh]) AS last,
           bool_or(r.flags & 2 <> 0) OR min(r.device_key) <> max(r.device_key) AS inexact
    FROM c JOIN gaps ON true
    JOIN LATERAL (  -- one index range scan per gap
        SELECT r.timestamp_ms, r.seq, r.import_wh, r.export_wh, r.flags, r.device_key FROM reading_rows r
        WHERE r.meter_key = c.meter_key AND r.timestamp_ms >= gaps.g_from AND r.timestamp_ms < gaps.g_to
          AND r.timestamp_ms >= $2 - (($2 % 900000) + 900000) % 900000 AND r.timestamp_ms < $4
        OFFSET 0  -- kept a subquery: planned as a scan per gap, not flattened into a join over every reading
    ) r ON true
    GROUP BY 1
)
SELECT b.owner_id, b.visible_from_ms, b.start_ms, b.archived, (SELECT registers FROM base) AS base,
       w.window_ms, w.readings, w.last, w.inexact
FROM b LEFT JOIN wins w ON true
ORDER BY w.window_ms
"""


@dataclass(frozen=True)
class Owned:
    """What a one-statement query found: whether the meter exists, its owner, the first ms they may see, and whether
    an archived range overlaps the request (then the caller takes the archive-merging path)."""

    exists: bool
    owner: UUID | None
    visible_from_ms: int
    archived: bool


_NO_CURSOR = (-(2**63), 0, "")
# the statements above spell these constants out
assert WINDOW_MS == 900_000 and METER_REPLACED == 2  # noqa: PT018


async def owned_page(
    conn: Conn, meter_id: UUID, owner: UUID | None, *, from_ms: int, to_ms: int, cursor: str | None, limit: int,
) -> tuple[Owned, ReadingsPage | None]:
    """Ownership (``owner`` None: not checked here) and one page of readings with from_ms <= timestamp_ms < to_ms,
    clipped to the owner's visible range, in one statement. The page is None when the meter is not ``owner``'s or
    the range touches the archive."""
    if not 1 <= limit <= MAX_PAGE:
        raise QueryError(f"limit must be 1..{MAX_PAGE}")
    after = decode_cursor(cursor) if cursor else _NO_CURSOR
    rows = await conn.fetch(_OWNED_PAGE, meter_id, from_ms, to_ms, after[0], after[1], after[2], limit + 1, owner)
    if not rows:
        return Owned(False, None, 0, False), None
    head = rows[0]
    found = Owned(True, head["owner_id"], head["visible_from_ms"], head["archived"])
    if (owner is not None and found.owner != owner) or found.archived:
        return found, None
    serial = head["serial"]
    got = [_row_out(r, serial) for r in rows[:limit] if r["device_id"] is not None]
    last = got[-1] if got else None
    more = len(rows) > limit and rows[limit]["device_id"] is not None
    next_cursor = encode_cursor(last.timestamp_ms, last.seq, last.device_id) if more and last else None
    return found, ReadingsPage(meter_id, got, next_cursor)


async def owned_energy(
    conn: Conn, meter_id: UUID, owner: UUID | None, *, from_ms: int, to_ms: int, lookback_ms: int = LOOKBACK_MS,
) -> tuple[Owned, MeterEnergy | None]:
    """Ownership (``owner`` None: not checked here) and the energy per window of :func:`window_energy` for whole
    windows from max(from_ms, the owner's first whole window) to to_ms, in one statement. The energy is None when
    the meter is not ``owner``'s, the archive may hold readings it needs, or a window needs reading-by-reading sums
    (see ``_OWNED_ENERGY``)."""
    end = to_ms + (-to_ms) % WINDOW_MS
    rows = await conn.fetch(_OWNED_ENERGY, meter_id, from_ms, to_ms, end, owner, lookback_ms)
    if not rows:
        return Owned(False, None, 0, False), None
    head = rows[0]
    found = Owned(True, head["owner_id"], head["visible_from_ms"], head["archived"])
    if (owner is not None and found.owner != owner) or (found.archived and head["start_ms"] < to_ms):
        return found, None
    if any(r["inexact"] for r in rows):
        return found, None  # a replaced meter or two gateways in a window: the caller sums reading by reading
    windows = []
    previous = head["base"]  # [import, export] the first delta is taken from (None only without readings)
    for r in rows:
        if r["window_ms"] is None:
            continue
        last = r["last"]  # [timestamp, seq, import, export]
        windows.append(WindowEnergy(r["window_ms"], last[2] - previous[0], last[3] - previous[1], r["readings"]))
        previous = last[2:]
    return found, MeterEnergy(meter_id, WINDOW_MS, windows)
