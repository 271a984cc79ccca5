"""HTTP routes of standing orders: create, list, pause/resume, delete, and each one's runs (placed or skipped, with
the reason). Errors map like the market's own routes (``central.market.routes.ERRORS``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from central.errors import require
from central.http import OWNERS, Call, RouteTable, meta
from central.http.errors import not_found
from central.market.clearing import MAX_PRICE, MAX_QTY_WH
from central.market.routes import ERRORS, LimitQuery
from central.market.standing import MAX_LIMIT, RunView, StandingSpec, StandingView
from central.market.standing_service import StandingOrders

routes = RouteTable(tag="market", error_map=ERRORS)

_WH = meta(minimum=1, maximum=MAX_QTY_WH, description="Wh")


@dataclass(frozen=True)
class StandingIn:
    side: Literal["buy", "sell"] = field(
        metadata=meta(description="sell: offer the energy available in escrow; buy: bid for the usual consumption")
    )
    price: int = field(
        metadata=meta(
            minimum=1, maximum=MAX_PRICE, description="quote base units per kWh: a sell's floor, a buy's ceiling"
        )
    )
    max_qty_wh: int | None = field(default=None, metadata=_WH)
    daily_energy_wh: int | None = field(
        default=None, metadata=meta(minimum=1, maximum=MAX_LIMIT, description="Wh placed per UTC day")
    )
    daily_spend: int | None = field(
        default=None,
        metadata=meta(minimum=1, maximum=MAX_LIMIT, description="quote base units locked per UTC day (buy only)"),
    )


def _standing(call: Call[Any, Any]) -> StandingOrders:
    return require(call.services.market.market).standing


def _id(call: Call[Any, Any]) -> int:
    try:
        return int(call.path("standing_id"))
    except ValueError:
        raise not_found("no such standing order") from None


@routes.post(
    "/api/v1/market/standing",
    access=OWNERS,
    body=StandingIn,
    response=StandingView,
    status=201,
    errors=(400, 503),
    summary="Create a standing order, placed as a real order every epoch (escrow-checked; skips say why)",
)
async def create_standing(call: Call[StandingIn, None]) -> StandingView:
    b = call.body
    spec = StandingSpec(b.side, b.price, b.max_qty_wh, b.daily_energy_wh, b.daily_spend)
    return await _standing(call).create(call.user.user_id, spec)


@routes.get("/api/v1/market/standing", access=OWNERS, response=list[StandingView], summary="Your standing orders")
async def list_standing(call: Call[None, None]) -> list[StandingView]:
    return await _standing(call).list_of(call.user.user_id)


@routes.get(
    "/api/v1/market/standing/{standing_id}", access=OWNERS, response=StandingView, errors=(404,),
    summary="One standing order, with its latest run (outcome and reason)",
)
async def get_standing(call: Call[None, None]) -> StandingView:
    return await _standing(call).get(call.user.user_id, _id(call))


@routes.post(
    "/api/v1/market/standing/{standing_id}/pause", access=OWNERS, response=StandingView, errors=(404,),
    summary="Pause a standing order (no orders from the next epoch on; placed orders stay)",
)
async def pause_standing(call: Call[None, None]) -> StandingView:
    return await _standing(call).pause(call.user.user_id, _id(call))


@routes.post(
    "/api/v1/market/standing/{standing_id}/resume", access=OWNERS, response=StandingView, errors=(404,),
    summary="Resume a paused standing order",
)
async def resume_standing(call: Call[None, None]) -> StandingView:
    return await _standing(call).resume(call.user.user_id, _id(call))


@routes.delete(
    "/api/v1/market/standing/{standing_id}", access=OWNERS, status=204, errors=(404,),
    summary="Delete a standing order (its runs stay on record)",
)
async def delete_standing(call: Call[None, None]) -> None:
    await _standing(call).delete(call.user.user_id, _id(call))


@routes.get(
    "/api/v1/market/standing/{standing_id}/runs", access=OWNERS, query=LimitQuery, response=list[RunView],
    errors=(404,), summary="A standing order's runs, newest first: the order placed each epoch or why it was skipped",
)
async def list_runs(call: Call[None, LimitQuery]) -> list[RunView]:
    return await _standing(call).runs(call.user.user_id, _id(call), call.query.limit)
