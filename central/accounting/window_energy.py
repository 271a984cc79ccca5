"""Window energy: exact, conserved energy per meter and accounting window, and closing windows once final
(docs/decisions/0007-exact-energy-accounting.md). Pure: no I/O. (Formerly ``accounting/settlement.py``, the name
migration 0031 still uses; "settlement" now means only the market's on-chain trade settlement.)

Definitions (normative for minting):

**Order.** A meter's readings are ordered by ``(timestamp_ms, seq, record_hash)``. Readings with the same record hash
are one reading (duplicates are harmless).

**Continuous register.** Each of the two cumulative registers (import, export) is mapped onto a *continuous register*
``C`` that never decreases: the first reading's ``C`` is its raw register value; afterwards ``C(r) = raw(r) + offset``.
A reading flagged METER_REPLACED (protocol flags bit 1: the registers restarted, e.g. a new meter behind the same
serial) starts a new *segment*: ``C(r) = C(previous reading)`` and the offset becomes ``C(previous) - raw(r)``. So all
energy the old register counted up to its last reading is kept, the new register's energy counts from its first
reading, and the energy between the old meter's last reading and the new meter's first reading, which no register
measured, counts as zero. A raw decrease *without* the flag (ingest rejects those; this is defence in depth) is
treated the same way for that register, so energy is never negative.

**Boundary value.** At a window boundary ``b`` let ``a`` be the last reading with ``ts <= b`` and ``c`` the first with
``ts >= b``. If ``ts(a) == b`` the value is ``C(a)``; otherwise
``V(b) = C(a) + floor((C(c) - C(a)) * (b - ts(a)) / (ts(c) - ts(a)))`` — integer arithmetic, floor rounding.
A boundary before the meter's first reading takes the first reading's value (the first window is partial).

**Window energy** is ``V(end) - V(start)``. Because every window is a difference of boundary values, a meter's windows
telescope: their sum is exactly ``V(last final boundary) - C(first reading)``, with no rounding residue.

**Gaps.** A span of two or more whole windows with no reading strictly inside (the meter, gateway or link was down)
is one *gap window* ``[s, g)`` rather than one window per step: ``s`` is the boundary after the last reading before
the gap, ``g`` the last boundary at or before the next reading. Its energy is ``V(g) - V(s)`` like any window, so the
sum still telescopes exactly; the following window carries the rest up to the next boundary. Gap windows are
multiples of the window length and aligned like all windows.

**Bounded work.** ``close_windows(..., max_windows=n)`` stops after ``n`` windows; the checkpoint is then the end of the
last of them and the next call continues from it, with the same result as one unbounded call.

**Finality.** A window is final once a reading with ``ts >= end`` exists. Late readings finalise windows late;
nothing is dropped, because energy is always a register difference.

**Checkpoint.** Once windows are final their boundary values are frozen in a :class:`Checkpoint` (the last final
boundary, its value, and the *anchor*: the last reading at or before it). The next run considers the anchor and the
readings ordered after it, so re-processing the same readings yields nothing new (idempotent). A reading that arrives
out of order with a timestamp inside an already final span is not used for interpolation of frozen boundaries (they
were minted); its energy is still counted, because the following window is ``V(next) - V(frozen)``. Frozen values are
never revised and boundary values never decrease (``V(b) = max(interpolated, previous V)``), so every window is
``>= 0`` and the sum still telescopes exactly. (Such a frozen value may differ from what the late reading would have
given; it never exceeds the registers of the readings known when it was frozen. With readings arriving in time order
— late or not, duplicated or not — the result is identical to computing everything at once.)

**Records used** by a window (their Merkle root goes into the mint memo): every reading from the lower interpolation
point of its start boundary to the upper interpolation point of its end boundary, inclusive, in order.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

from central.accounting.merkle import merkle_root
from central.accounting.window import DEFAULT_WINDOW_MS, check_window_ms, window_start

#: protocol.record.Flags.METER_REPLACED (protocol §1 Reading record flags bit 1); a test pins the two together.
METER_REPLACED = 0x2


@dataclass(frozen=True, slots=True)
class MeterReading:
    """What accounting needs of one verified reading of one meter."""

    timestamp_ms: int
    seq: int
    import_wh: int
    export_wh: int
    flags: int
    record_hash: bytes

    @property
    def key(self) -> tuple[int, int, bytes]:
        return (self.timestamp_ms, self.seq, self.record_hash)


@dataclass(frozen=True, slots=True)
class Point:
    """A reading placed on the continuous registers."""

    timestamp_ms: int
    seq: int
    record_hash: bytes
    raw_import: int
    raw_export: int
    cum_import: int
    cum_export: int

    @property
    def key(self) -> tuple[int, int, bytes]:
        return (self.timestamp_ms, self.seq, self.record_hash)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Frozen state after the last final window of a meter."""

    boundary_ms: int
    cum_import: int
    cum_export: int
    anchor: Point
    #: continuous register values of the meter's first reading (the origin of the conserved sum)
    origin_import: int
    origin_export: int


@dataclass(frozen=True, slots=True)
class Window:
    """One final accounting window of one meter."""

    start_ms: int
    end_ms: int
    import_wh: int
    export_wh: int
    #: continuous register values at the two boundaries (end - start = the window's energy)
    start_import: int
    start_export: int
    end_import: int
    end_export: int
    record_hashes: tuple[bytes, ...]

    @property
    def merkle_root(self) -> bytes:
        return merkle_root(self.record_hashes)


@dataclass(frozen=True, slots=True)
class ClosedWindows:
    windows: tuple[Window, ...]
    checkpoint: Checkpoint | None


def _advance(prev: Point, r: MeterReading) -> Point:
    replaced = bool(r.flags & METER_REPLACED)
    if replaced or r.import_wh < prev.raw_import:
        cum_import = prev.cum_import
    else:
        cum_import = prev.cum_import + (r.import_wh - prev.raw_import)
    if replaced or r.export_wh < prev.raw_export:
        cum_export = prev.cum_export
    else:
        cum_export = prev.cum_export + (r.export_wh - prev.raw_export)
    return Point(r.timestamp_ms, r.seq, r.record_hash, r.import_wh, r.export_wh, cum_import, cum_export)


def place(readings: Iterable[MeterReading], anchor: Point | None = None) -> list[Point]:
    """Deduplicate, order and place readings on the continuous registers (after ``anchor`` if given).

    The result starts with ``anchor`` (or the first reading) and holds only readings ordered after it.
    """
    unique = {r.record_hash: r for r in readings}
    ordered = sorted(unique.values(), key=lambda r: r.key)
    if anchor is not None:
        ordered = [r for r in ordered if r.key > anchor.key]
        points = [anchor]
    elif ordered:
        first = ordered.pop(0)
        points = [
            Point(
                first.timestamp_ms,
                first.seq,
                first.record_hash,
                first.import_wh,
                first.export_wh,
                first.import_wh,
                first.export_wh,
            )
        ]
    else:
        return []
    for r in ordered:
        points.append(_advance(points[-1], r))
    return points


def _interpolate(ca: int, cc: int, ta: int, tc: int, b: int) -> int:
    if tc == ta:
        return ca
    return ca + (cc - ca) * (b - ta) // (tc - ta)


def close_windows(
    readings: Iterable[MeterReading],
    checkpoint: Checkpoint | None = None,
    window_ms: int = DEFAULT_WINDOW_MS,
    max_windows: int | None = None,
) -> ClosedWindows:
    """Final windows of one meter not yet covered by ``checkpoint``, and the checkpoint after them (at most
    ``max_windows`` windows; the returned checkpoint continues from the last one).

    ``readings`` may hold anything already seen (duplicates, readings before the checkpoint): they are filtered.
    """
    check_window_ms(window_ms)
    if max_windows is not None and max_windows < 1:
        raise ValueError("max_windows must be at least 1")
    points = place(readings, checkpoint.anchor if checkpoint else None)
    if not points:
        return ClosedWindows((), checkpoint)
    times = [p.timestamp_ms for p in points]
    last_ts = times[-1]
    if checkpoint is None:
        origin = points[0]
        start = window_start(origin.timestamp_ms, window_ms)
        v_imp, v_exp = origin.cum_import, origin.cum_export
        origin_imp, origin_exp = v_imp, v_exp
        lower = 0
    else:
        start = checkpoint.boundary_ms
        v_imp, v_exp = checkpoint.cum_import, checkpoint.cum_export
        origin_imp, origin_exp = checkpoint.origin_import, checkpoint.origin_export
        lower = bisect_right(times, start) - 1
    windows: list[Window] = []
    end = start + window_ms
    while end <= last_ts and (max_windows is None or len(windows) < max_windows):
        begin = end - window_ms
        nxt = bisect_right(times, begin)  # first point after the window's start (exists: begin < end <= last_ts)
        if times[nxt] >= begin + 2 * window_ms:  # a gap: one window up to the last boundary at/before that point
            end = begin + (times[nxt] - begin) // window_ms * window_ms
        ia = bisect_right(times, end) - 1  # last point with ts <= end (exists: points[0].ts <= start < end)
        a = points[ia]
        if a.timestamp_ms == end:
            e_imp, e_exp, upper = a.cum_import, a.cum_export, ia
        else:
            upper = ia + 1  # first point with ts >= end (exists: end <= last_ts)
            c = points[upper]
            e_imp = _interpolate(a.cum_import, c.cum_import, a.timestamp_ms, c.timestamp_ms, end)
            e_exp = _interpolate(a.cum_export, c.cum_export, a.timestamp_ms, c.timestamp_ms, end)
        e_imp, e_exp = max(e_imp, v_imp), max(e_exp, v_exp)
        windows.append(
            Window(
                start_ms=begin,
                end_ms=end,
                import_wh=e_imp - v_imp,
                export_wh=e_exp - v_exp,
                start_import=v_imp,
                start_export=v_exp,
                end_import=e_imp,
                end_export=e_exp,
                record_hashes=tuple(p.record_hash for p in points[lower : upper + 1]),
            )
        )
        v_imp, v_exp = e_imp, e_exp
        lower = ia
        end += window_ms
    if not windows:
        return ClosedWindows((), checkpoint)
    boundary = windows[-1].end_ms
    anchor = points[bisect_right(times, boundary) - 1]
    return ClosedWindows(
        tuple(windows),
        Checkpoint(boundary, v_imp, v_exp, anchor, origin_imp, origin_exp),
    )


__all__ = [
    "METER_REPLACED",
    "Checkpoint",
    "ClosedWindows",
    "MeterReading",
    "Point",
    "Window",
    "close_windows",
    "place",
]
