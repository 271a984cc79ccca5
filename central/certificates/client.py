"""A small HTTP client for the certificate API, with the wallet side of the transaction-request pattern: for the
demo, scripts and tests.

    async with aiohttp.ClientSession(base_url) as http:
        cert = await issue(http, authority_token, meter_id, start, end)
        await transfer(http, prosumer_token, prosumer_wallet, cert["id"], 2_000, to_wallet=consumer_address)
        await retire(http, consumer_token, consumer_wallet, cert["id"], 500, beneficiary="...", purpose="...",
                     consumption_start=..., consumption_end=...)
        report = await validate(http, mint=cert["mint"])
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp
from solders.keypair import Keypair

from central.certificates.errors import CertificateError
from central.ledger.cosign import sign_request

PREFIX = "/api/v1/certificates"


class ApiCallError(CertificateError):
    """The API answered with an error: ``status`` and the error body's ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


async def _call(http: aiohttp.ClientSession, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.request(method, path, headers=headers, **kw) as resp:
        body = await resp.json()
        if resp.status >= 400:
            err = body.get("error", {}) if isinstance(body, dict) else {}
            raise ApiCallError(resp.status, str(err.get("code", "")), str(err.get("message", "")))
        return body


async def issue(
    http: aiohttp.ClientSession,
    token: str,
    meter_id: str,
    start: datetime,
    end: datetime,
    expected_wh: int | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"meter_id": meter_id, "period_start": start.isoformat(), "period_end": end.isoformat()}
    if expected_wh is not None:
        body["expected_wh"] = expected_wh
    result: dict[str, Any] = await _call(http, "POST", PREFIX, token, json=body)
    return result


async def _sign_and_submit(http: aiohttp.ClientSession, token: str, wallet: Keypair, request: dict[str, Any]) -> str:
    signed = sign_request(request["transaction"], wallet)
    out = await _call(http, "POST", f"{PREFIX}/requests/{request['request_id']}/submit", token, json={
        "transaction": signed})  # fmt: skip
    return str(out["signature"])


async def transfer(
    http: aiohttp.ClientSession,
    token: str,
    wallet: Keypair,
    certificate_id: str,
    amount_wh: int,
    *,
    to_wallet: str | None = None,
    to_user_id: str | None = None,
) -> str:
    """Prepare, sign with ``wallet`` and submit a transfer; returns the transaction signature."""
    body: dict[str, Any] = {"amount_wh": amount_wh}
    if to_wallet is not None:
        body["to_wallet"] = to_wallet
    if to_user_id is not None:
        body["to_user_id"] = to_user_id
    request = await _call(http, "POST", f"{PREFIX}/{certificate_id}/transfer", token, json=body)
    return await _sign_and_submit(http, token, wallet, request)


async def retire(
    http: aiohttp.ClientSession,
    token: str,
    wallet: Keypair,
    certificate_id: str,
    amount_wh: int,
    *,
    beneficiary: str,
    purpose: str,
    consumption_start: datetime,
    consumption_end: datetime,
) -> str:
    """Prepare, sign with ``wallet`` and submit a retirement; returns the transaction signature."""
    body = {
        "amount_wh": amount_wh,
        "beneficiary": beneficiary,
        "purpose": purpose,
        "consumption_start": consumption_start.isoformat(),
        "consumption_end": consumption_end.isoformat(),
    }
    request = await _call(http, "POST", f"{PREFIX}/{certificate_id}/retire", token, json=body)
    return await _sign_and_submit(http, token, wallet, request)


async def revoke(http: aiohttp.ClientSession, token: str, certificate_id: str, reason: str) -> dict[str, Any]:
    result: dict[str, Any] = await _call(http, "POST", f"{PREFIX}/{certificate_id}/revoke", token, json={
        "reason": reason})  # fmt: skip
    return result


async def validate(
    http: aiohttp.ClientSession, *, certificate_id: str | None = None, mint: str | None = None
) -> dict[str, Any]:
    params = {"certificate_id": certificate_id} if certificate_id else {"mint": mint or ""}
    result: dict[str, Any] = await _call(http, "GET", f"{PREFIX}/validate", params=params)
    return result


async def retirements(http: aiohttp.ClientSession, certificate_id: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await _call(http, "GET", f"{PREFIX}/{certificate_id}/retirements")
    return result


async def list_mine(http: aiohttp.ClientSession, token: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = await _call(http, "GET", PREFIX, token)
    return result


async def demo_flow(
    http: aiohttp.ClientSession,
    *,
    authority_token: str,
    prosumer_token: str,
    prosumer_wallet: Keypair,
    consumer_token: str,
    consumer_wallet: Keypair,
    meter_id: str,
    period_start: datetime,
    period_end: datetime,
    slice_wh: int,
    beneficiary: str = "Demo consumer household",
) -> dict[str, Any]:
    """The demo's certificate story: the REC authority certifies the prosumer's verified export for the period, the
    prosumer transfers ``slice_wh`` to the consumer, who retires it (burn + memo naming them); then the public
    validation. Returns the certificate, both transaction signatures and the validation report."""
    cert = await issue(http, authority_token, meter_id, period_start, period_end)
    transfer_sig = await transfer(
        http, prosumer_token, prosumer_wallet, cert["id"], slice_wh, to_wallet=str(consumer_wallet.pubkey())
    )
    retire_sig = await retire(
        http, consumer_token, consumer_wallet, cert["id"], slice_wh, beneficiary=beneficiary,
        purpose="renewable electricity claim", consumption_start=period_start, consumption_end=period_end,
    )  # fmt: skip
    report = await validate(http, mint=cert["mint"])
    return {"certificate": cert, "transfer": transfer_sig, "retire": retire_sig, "validation": report}
