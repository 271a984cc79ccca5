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
from protocol.record import POWER_NOT_AVAILABLE, Flags

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


_LAST_BEFORE = """
SELECT d.device_id, d.public_key, m.id AS meter_id, m.serial, r.seq, r.timestamp_ms, r.import_wh, r.export_wh,
       r.power_w, r.flags, r.prev_hash, r.signature, r.device_key, r.meter_key
FROM meters m JOIN reading_rows r ON r.meter_key = m.meter_key JOIN devices d ON d.device_key = r.device_key
WHERE m.id = $1 AND r.timestamp_ms < $2
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

    Raw register deltas: the first reading in the range is diffed against the meter's last reading before it (in the
    archive, looked for up to ``lookback_ms`` back). Exact, interpolated accounting per settlement window is the
    accounting subsystem's job.
    """
    start = from_ms - from_ms % WINDOW_MS
    end = to_ms + (-to_ms) % WINDOW_MS
    if end <= start:
        raise QueryError("the time range is empty")
    if (end - start) // WINDOW_MS > MAX_WINDOWS:
        raise QueryError(f"at most {MAX_WINDOWS} windows per request")
    rows = await meter_rows(conn, meter_id, start, end, archive=archive)
    before = await conn.fetchrow(_LAST_BEFORE, meter_id, start)
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
