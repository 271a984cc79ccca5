"""Readings API for owners: a meter's readings (time range, cursor pages), its energy per 15-minute window, and the
live WebSocket (``/api/v1/live``; channels: ``readings``, and those other subsystems add to the hub at build time,
see ``central.bootstrap``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from aiohttp import web

from central.http import OWNERS, PUBLIC, Call, RouteTable, meta
from central.http.errors import ApiError, bad_request, not_found
from central.readings.queries import (
    MAX_PAGE,
    MAX_WINDOWS,
    WINDOW_MS,
    MeterEnergy,
    Owned,
    QueryError,
    ReadingsPage,
    list_readings,
    meter_owner,
    owned_energy,
    owned_page,
    window_energy,
)

routes = RouteTable(tag="readings")

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class ReadingsQuery:
    from_ms: int | None = field(default=None, metadata=meta(description="Start, UTC ms (inclusive); default to-24h"))
    to_ms: int | None = field(default=None, metadata=meta(description="End, UTC ms (exclusive); default now"))
    cursor: str | None = field(default=None, metadata=meta(max_length=200, description="next_cursor of a page"))
    limit: int = field(default=100, metadata=meta(minimum=1, maximum=MAX_PAGE))


@dataclass(frozen=True)
class RangeQuery:
    from_ms: int | None = field(default=None, metadata=meta(description="Start, UTC ms; default to-24h"))
    to_ms: int | None = field(default=None, metadata=meta(description="End, UTC ms; default now"))


def _requested(from_ms: int | None, to_ms: int | None) -> tuple[int, int]:
    """The requested range with its defaults (the last 24 hours), not yet clipped to what the owner may see."""
    end = to_ms if to_ms is not None else time.time_ns() // 1_000_000
    start = from_ms if from_ms is not None else end - DAY_MS
    if start >= end:
        raise bad_request("from_ms must be before to_ms")
    return start, end


async def _checked_range(call: Call[Any, Any], from_ms: int | None, to_ms: int | None) -> tuple[int, int]:
    """The requested range; an empty one is refused (400) only for a meter of the caller's (else 404 first)."""
    try:
        return _requested(from_ms, to_ms)
    except ApiError:
        await _own_meter(call)
        raise


def _range(from_ms: int | None, to_ms: int | None, visible_from_ms: int) -> tuple[int, int]:
    """The requested range, clipped to what the meter's current owner may see (possibly empty)."""
    start, end = _requested(from_ms, to_ms)
    return min(max(start, visible_from_ms), end), end


async def _own_meter(call: Call[Any, Any]) -> tuple[UUID, int]:
    """The meter id, and the first ms its current owner may see (a previous owner's history stays theirs). Always
    asked of the primary: a meter claimed a moment ago is the claimer's at once (read-your-writes); only the bulk
    queries below may go to the read replica."""
    meter_id = call.path_uuid("meter_id")
    exists, owner, visible_from_ms = await meter_owner(call.services.pool, meter_id)
    if not exists or owner != call.user.user_id:
        raise not_found("no such meter among yours")
    return meter_id, visible_from_ms


async def _bulk_and_owner(call: Call[Any, Any]) -> tuple[UUID, Any, UUID | None, int]:
    """The meter id, the pool for the page query, the owner that query must check, and the first ms the owner may
    see as far as known here: the caller and 0 when the bulk pool is the primary (ownership, clipping and page in
    one statement), else None and the primary's answer after checking ownership there (the replica may not have
    seen a claim or release made a moment ago)."""
    reads = call.services.readings.reads
    bulk = await reads.bulk()
    if bulk is reads.primary:
        return call.path_uuid("meter_id"), bulk, call.user.user_id, 0
    meter_id, visible_from_ms = await _own_meter(call)
    return meter_id, bulk, None, visible_from_ms


def _check_owned(found: Owned, owner: UUID | None) -> None:
    if owner is not None and (not found.exists or found.owner != owner):
        raise not_found("no such meter among yours")


@routes.get(
    "/api/v1/meters/{meter_id}/readings", access=OWNERS, query=ReadingsQuery, response=ReadingsPage,
    errors=(400, 404), summary="Readings of one of my meters",
)
async def meter_readings(call: Call[None, ReadingsQuery]) -> ReadingsPage:
    """Verified readings of a meter you own, oldest first, with the signed record bytes (hex) of each."""
    q = call.query
    start, end = await _checked_range(call, q.from_ms, q.to_ms)
    meter_id, bulk, owner, visible = await _bulk_and_owner(call)
    try:
        found, page = await owned_page(bulk, meter_id, owner, from_ms=min(max(start, visible), end), to_ms=end,
                                       cursor=q.cursor,
                                       limit=q.limit)
        _check_owned(found, owner)
        if page is not None:
            return page
        # an archived range overlaps: merge hot and archived readings
        start, end = _range(q.from_ms, q.to_ms, max(found.visible_from_ms, visible))
        return await list_readings(
            bulk, meter_id, from_ms=start, to_ms=end, cursor=q.cursor, limit=q.limit,
            archive=call.services.archive.reader,
        )
    except QueryError as exc:
        raise bad_request(str(exc)) from None


@routes.get(
    "/api/v1/meters/{meter_id}/energy", access=OWNERS, query=RangeQuery, response=MeterEnergy, errors=(400, 404),
    summary="Energy of one of my meters per 15-minute window",
)
async def meter_energy(call: Call[None, RangeQuery]) -> MeterEnergy:
    """Import and export Wh per UTC-aligned 15-minute window, from raw register deltas (at most 31 days)."""
    requested = await _checked_range(call, call.query.from_ms, call.query.to_ms)
    meter_id, bulk, owner, visible = await _bulk_and_owner(call)
    # Whole windows only, and none that holds a previous owner's readings (a window is diffed against the reading
    # before it).
    if _windows(*requested) <= MAX_WINDOWS:  # else clipping decides whether the request is too large: below
        first = visible + (-visible) % WINDOW_MS
        found, energy = await owned_energy(bulk, meter_id, owner, from_ms=max(requested[0], first),
                                           to_ms=requested[1])
        _check_owned(found, owner)
        if energy is not None:
            return energy
        visible_from_ms = max(found.visible_from_ms, visible)
    elif owner is not None:
        meter_id, visible_from_ms = await _own_meter(call)
    else:
        visible_from_ms = visible
    first_window = visible_from_ms + (-visible_from_ms) % WINDOW_MS
    start, end = _range(call.query.from_ms, call.query.to_ms, first_window)
    if start >= end:
        return MeterEnergy(meter_id=meter_id, window_ms=WINDOW_MS, windows=[])
    try:
        return await window_energy(bulk, meter_id, from_ms=start, to_ms=end, archive=call.services.archive.reader)
    except QueryError as exc:
        raise bad_request(str(exc)) from None


def _windows(start: int, end: int) -> int:
    return (end + (-end) % WINDOW_MS - (start - start % WINDOW_MS)) // WINDOW_MS


@routes.get(
    "/api/v1/live", access=PUBLIC, errors=(426,), summary="Live WebSocket (authenticate in the first message)",
    content_type="text/plain",
)
async def live(call: Call[None, None]) -> web.StreamResponse:
    """Upgrade to a WebSocket. First message: ``{"type":"auth","token":"<access token>"}``; then
    ``{"type":"subscribe","channel":"readings"}``. The token never goes in the URL."""
    ws = web.WebSocketResponse()
    if not ws.can_prepare(call.request).ok:
        raise ApiError(426, "upgrade_required", "this endpoint speaks WebSocket only")
    return await call.services.readings.hub.handle(call.request)
