"""HTTP routes of hourly consumption matching: redeem energy tokens against your metered import of an hour (the
wallet signs a burn + memo), your statement per hour and month (JSON or CSV), a signed claim, and the public
endpoints a third party validates a claim with."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from aiohttp import web

from central.errors import require
from central.http import OWNERS, PUBLIC, Call, RouteTable, meta
from central.market.matching import Statement, to_csv, verify_claim
from central.market.matching_pg import Redemption
from central.market.matching_service import MAX_REDEEM_WH, Matching
from central.market.routes import ERRORS, SignedIn

routes = RouteTable(tag="market", error_map=ERRORS)


def _matching(call: Call[Any, Any]) -> Matching:
    return require(call.services.market.market).matching


@dataclass(frozen=True)
class RedeemIn:
    meter: str = field(metadata=meta(min_length=1, max_length=128, description="your meter's serial"))
    hour: datetime = field(metadata=meta(description="the UTC hour (start) of the import to match"))
    amount: int = field(metadata=meta(minimum=1, maximum=MAX_REDEEM_WH, description="Wh = energy base units"))


@dataclass(frozen=True)
class RedemptionOut:
    id: UUID
    meter: str
    hour: datetime
    amount: int
    memo: str
    status: str
    signature: str | None
    error: str | None
    transaction: str | None = field(
        default=None, metadata=meta(description="base64 unsigned burn + memo for your wallet to sign (when built)")
    )
    last_valid_block_height: int = 0


@dataclass(frozen=True)
class MonthQuery:
    month: str = field(metadata=meta(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM (UTC)"))


@dataclass(frozen=True)
class ClaimOut:
    claim: dict[str, Any]
    signature: str = field(metadata=meta(description="base64 Ed25519 signature of the claim's canonical JSON"))
    public_key: str = field(metadata=meta(description="base64 Ed25519 public key of central"))


@dataclass(frozen=True)
class VerifyIn:
    claim: dict[str, Any]
    signature: str = field(metadata=meta(max_length=200))


@dataclass(frozen=True)
class VerifyOut:
    valid: bool


@dataclass(frozen=True)
class KeyOut:
    public_key: str
    algorithm: str = "Ed25519"
    canonical_form: str = "JSON, keys sorted, separators (',', ':'), UTF-8 (central/market/matching.py)"


def _out(r: Redemption, transaction: str | None = None) -> RedemptionOut:
    return RedemptionOut(r.id, r.meter, r.hour, r.amount, r.memo, r.status, r.signature, r.error, transaction,
                         r.last_valid_block_height)


@routes.post(
    "/api/v1/market/redemptions", access=OWNERS, body=RedeemIn, response=RedemptionOut, status=201,
    errors=(400, 404, 409, 503),
    summary="Redeem energy tokens against your meter's import of one hour: reserve the Wh, build the burn + memo",
)
async def request_redemption(call: Call[RedeemIn, None]) -> RedemptionOut:
    b = call.body
    rec = await _matching(call).request(call.user.user_id, b.meter, b.hour, b.amount)
    return _out(rec, Matching.unsigned(rec))


@routes.post(
    "/api/v1/market/redemptions/{redemption_id}/submit", access=OWNERS, body=SignedIn, response=RedemptionOut,
    errors=(400, 404, 409, 503), summary="Submit the wallet-signed burn; counted once confirmed",
)
async def submit_redemption(call: Call[SignedIn, None]) -> RedemptionOut:
    m = _matching(call)
    return _out(await m.submit(call.user.user_id, call.path_uuid("redemption_id"), call.body.transaction))


@routes.get(
    "/api/v1/market/matching/statement", access=OWNERS, query=MonthQuery, response=Statement, errors=(400, 503),
    summary="Your matched-consumption statement: per meter and hour, import and matched Wh; the month's share",
)
async def get_statement(call: Call[None, MonthQuery]) -> Statement:
    return await _matching(call).statement(call.user.user_id, call.query.month)


@routes.get(
    "/api/v1/market/matching/statement.csv", access=OWNERS, query=MonthQuery, errors=(400, 503),
    summary="The same statement as CSV (one row per meter and hour, then the month's total)",
)
async def get_statement_csv(call: Call[None, MonthQuery]) -> web.Response:
    s = await _matching(call).statement(call.user.user_id, call.query.month)
    return web.Response(text=to_csv(s), content_type="text/csv")


@routes.get(
    "/api/v1/market/matching/claim", access=OWNERS, query=MonthQuery, response=ClaimOut, errors=(400, 409, 503),
    summary="The month's statement as a claim signed by central (validate it at /api/v1/market/matching/verify)",
)
async def get_claim(call: Call[None, MonthQuery]) -> ClaimOut:
    c = await _matching(call).claim(call.user.user_id, call.query.month)
    return ClaimOut(c["claim"], c["signature"], c["public_key"])


@routes.get(
    "/api/v1/market/matching/key", access=PUBLIC, response=KeyOut, errors=(409, 503),
    summary="Central's public key that signs matching claims",
)
async def get_key(call: Call[None, None]) -> KeyOut:
    return KeyOut(base64.b64encode(_matching(call).public_key()).decode())


@routes.post(
    "/api/v1/market/matching/verify", access=PUBLIC, body=VerifyIn, response=VerifyOut, errors=(409, 503),
    summary="Validate a matching claim: central's signature over its canonical JSON, and its totals",
)
async def verify(call: Call[VerifyIn, None]) -> VerifyOut:
    try:
        sig = base64.b64decode(call.body.signature, validate=True)
    except (binascii.Error, ValueError):
        return VerifyOut(False)
    return VerifyOut(verify_claim(_matching(call).public_key(), call.body.claim, sig))

