"""HTTP routes of per-user market reports: JSON and CSV per period (rules in ``central.market.report``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from central.errors import require
from central.http import OWNERS, Call, RouteTable, meta
from central.market.errors import InvalidOrderError
from central.market.report import Report, report
from central.market.report import to_csv as report_csv
from central.market.report_pg import PgReportStore
from central.market.routes import ERRORS

routes = RouteTable(tag="market", error_map=ERRORS)


@dataclass(frozen=True)
class PeriodQuery:
    start: datetime = field(metadata=meta(description="period start (epochs starting at or after it)"))
    end: datetime = field(metadata=meta(description="period end (epochs starting before it)"))


def _period(q: PeriodQuery) -> tuple[datetime, datetime]:
    if q.end <= q.start or q.end - q.start > timedelta(days=366):
        raise InvalidOrderError("end must be after start, at most a year later")
    return q.start, q.end


async def _report(call: Call[Any, PeriodQuery]) -> Report:
    start, end = _period(call.query)
    store = PgReportStore(require(call.services.market.market).book.pool)
    return report(start, end, await store.lines(call.user.user_id, start, end))


@routes.get(
    "/api/v1/market/report", access=OWNERS, query=PeriodQuery, response=Report, errors=(400, 503),
    summary="Your market report for a period: energy sold and bought, prices, platform and grid fees, losses, "
    "utility fallback (settled trades in the totals, as they moved on chain)",
)
async def get_report(call: Call[None, PeriodQuery]) -> Report:
    return await _report(call)


@routes.get(
    "/api/v1/market/report.csv", access=OWNERS, query=PeriodQuery, errors=(400, 503),
    summary="The same report as CSV (one row per trade, then the totals)",
)
async def get_report_csv(call: Call[None, PeriodQuery]) -> web.Response:
    return web.Response(text=report_csv(await _report(call)), content_type="text/csv")
