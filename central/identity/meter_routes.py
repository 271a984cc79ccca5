"""HTTP routes for meter owners: claim with serial + meter key, list, release; admins read the claim audit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from central.http import OWNERS, Call, Role, RouteTable, meta, roles
from central.identity.device_routes import SERIAL
from central.identity.http_errors import ERRORS
from central.identity.model import OwnedMeter

routes = RouteTable(tag="meters", error_map=ERRORS)


@dataclass(frozen=True)
class ClaimIn:
    serial: str = field(metadata=SERIAL)
    meter_key: str = field(metadata=meta(min_length=1, max_length=200, write_only=True))


@dataclass(frozen=True)
class MeterOut:
    id: UUID
    serial: str
    device_id: str
    device_status: str
    model: str
    protocol: str
    source: str | None
    claimed_at: datetime


@dataclass(frozen=True)
class ClaimAttemptOut:
    user_id: UUID
    serial: str
    address: str
    user_agent: str
    outcome: str
    at: datetime


@dataclass(frozen=True)
class AttemptQuery:
    user_id: UUID | None = None
    limit: int = field(default=100, metadata=meta(minimum=1, maximum=1000))


def meter_out(m: OwnedMeter) -> MeterOut:
    return MeterOut(m.id, m.serial, m.device_id, m.device_status, m.model, m.protocol, m.source, m.claimed_at)


@routes.post("/api/v1/meters/claim", access=OWNERS, body=ClaimIn, response=MeterOut, errors=(409, 429),
             summary="Claim a meter with its serial and the meter key from the utility (5 attempts per hour)")
async def claim_meter(call: Call[ClaimIn, None]) -> MeterOut:
    meter = await call.services.identity.meters.claim(call.user.user_id, call.body.serial, call.body.meter_key,
                                                  address=call.address, user_agent=call.user_agent)
    return meter_out(meter)


@routes.get("/api/v1/meters", access=OWNERS, response=list[MeterOut], summary="My meters")
async def my_meters(call: Call[None, None]) -> list[MeterOut]:
    return [meter_out(m) for m in await call.services.identity.meters.list_owned(call.user.user_id)]


@routes.delete("/api/v1/meters/{serial}/claim", access=OWNERS, status=204, errors=(404,),
               summary="Release my claim on a meter")
async def release_meter(call: Call[None, None]) -> None:
    await call.services.identity.meters.release(call.user.user_id, call.path("serial"))


@routes.get("/api/v1/admin/meter-claim-attempts", access=roles(Role.ADMIN), query=AttemptQuery,
            response=list[ClaimAttemptOut], summary="The meter-claim audit trail, newest first")
async def claim_attempts(call: Call[None, AttemptQuery]) -> list[ClaimAttemptOut]:
    rows = await call.services.identity.meters.attempts(call.query.user_id, call.query.limit)
    return [ClaimAttemptOut(r.user_id, r.serial, r.address, r.user_agent, r.outcome, r.at) for r in rows]
