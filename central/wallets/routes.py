"""HTTP routes: link a wallet by signature, read my wallet and balances, dev-only quote faucet (admin)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from central.errors import require
from central.http.errors import ErrorMap, ErrorRule, bad_request, not_found
from central.http.roles import ANY_USER, Role, roles
from central.http.routes import Call, RouteTable
from central.http.schema import meta
from central.ledger.platform import Platform
from central.wallets.balances import balances, faucet_quote
from central.wallets.errors import (
    BadWalletAddressError,
    ChainUnavailableError,
    FaucetUnavailableError,
    LinkExpiredError,
    LinkRejectedError,
    NonceRejectedError,
    TooManyLinkRequestsError,
    WalletTakenError,
)
from central.wallets.service import DEFAULT_LINK_TTL, WalletService
from protocol.base58 import b58decode

#: The wallet subsystem's exceptions over HTTP.
ERRORS: ErrorMap = {
    BadWalletAddressError: ErrorRule(400, "bad_wallet"),
    TooManyLinkRequestsError: ErrorRule(429, "rate_limited", retry_after_s=int(DEFAULT_LINK_TTL.total_seconds())),
    LinkRejectedError: ErrorRule(400, "link_rejected"),
    LinkExpiredError: ErrorRule(400, "link_rejected"),
    NonceRejectedError: ErrorRule(400, "link_rejected"),
    WalletTakenError: ErrorRule(409, "wallet_taken"),
    FaucetUnavailableError: ErrorRule(409, "faucet_unavailable"),
    ChainUnavailableError: ErrorRule(503, "ledger_unavailable"),
}
routes = RouteTable(tag="wallets", error_map=ERRORS)

_B58 = "^[1-9A-HJ-NP-Za-km-z]+$"


@dataclass(frozen=True)
class LinkStart:
    wallet: str = field(metadata=meta(min_length=32, max_length=44, pattern=_B58, description="base58 public key"))


@dataclass(frozen=True)
class LinkChallengeOut:
    message: str = field(metadata=meta(description="sign these exact UTF-8 bytes with the wallet (protocol §6)"))
    nonce: str
    expires: datetime


@dataclass(frozen=True)
class LinkSigned:
    message: str = field(metadata=meta(max_length=512))
    signature: str = field(metadata=meta(min_length=64, max_length=100, pattern=_B58, description="base58 Ed25519"))


@dataclass(frozen=True)
class WalletOut:
    address: str
    linked_at: datetime
    energy_wh: int = field(metadata=meta(description="energy token balance in base units (Wh; 3 decimals = kWh)"))
    quote: int = field(metadata=meta(description="quote token balance in base units (6 decimals)"))


@dataclass(frozen=True)
class FaucetIn:
    user_id: UUID
    amount: int = field(metadata=meta(minimum=1, maximum=10**15, description="quote base units"))


@dataclass(frozen=True)
class FaucetOut:
    signature: str
    wallet: str


def _service(call: Call[Any, Any]) -> WalletService:
    return call.services.wallets.service


def _chain(call: Call[Any, Any]) -> Platform:
    return require(call.services.wallets.chain)


@routes.post(
    "/api/v1/wallet/link-challenge",
    access=ANY_USER,
    body=LinkStart,
    response=LinkChallengeOut,
    status=201,
    errors=(400, 429),
    summary="Get the wallet-link message to sign",
)
async def wallet_link_challenge(call: Call[LinkStart, None]) -> LinkChallengeOut:
    """Issues a single-use nonce (valid 10 minutes) inside the message the wallet must sign."""
    link = await _service(call).start_link(call.user.user_id, call.body.wallet)
    return LinkChallengeOut(link.message(), link.nonce.hex(), link.expires)


@routes.post(
    "/api/v1/wallet/link",
    access=ANY_USER,
    body=LinkSigned,
    response=WalletOut,
    errors=(400, 409, 503),
    summary="Link a wallet with its signature of the link message",
    idempotent=True,
)
async def wallet_link(call: Call[LinkSigned, None]) -> WalletOut:
    """Verifies the message (names you, unexpired, nonce unused) and the wallet's signature; re-linking needs a new
    message and signature. Energy accrued while you had no wallet is minted to the new wallet afterwards."""
    try:
        signature = b58decode(call.body.signature)
    except ValueError as exc:
        raise bad_request("signature is not base58", "bad_signature") from exc
    linked = await _service(call).complete_link(call.user.user_id, call.body.message, signature)
    await call.services.wallets.on_linked(call.user.user_id)  # accrued energy is minted to the new wallet now
    return await _wallet_out(call, linked.address, linked.linked_at)


async def _wallet_out(call: Call[Any, Any], address: str, linked_at: datetime) -> WalletOut:
    b = await balances(_chain(call), address)
    return WalletOut(address, linked_at, b.energy_wh, b.quote)


@routes.get(
    "/api/v1/wallet",
    access=ANY_USER,
    response=WalletOut,
    errors=(404, 503),
    summary="My wallet and its on-chain balances",
)
async def my_wallet(call: Call[None, None]) -> WalletOut:
    linked = await _service(call).wallet_of(call.user.user_id)
    if linked is None:
        raise not_found("no wallet linked", "no_wallet")
    return await _wallet_out(call, linked.address, linked.linked_at)


@routes.post(
    "/api/v1/admin/faucet/quote",
    access=roles(Role.ADMIN),
    body=FaucetIn,
    response=FaucetOut,
    errors=(404, 409, 503),
    summary="Development quote faucet (embedded ledger only)",
)
async def quote_faucet(call: Call[FaucetIn, None]) -> FaucetOut:
    """Mints quote tokens to a user's linked wallet so demos and tests can fund consumers."""
    linked = await _service(call).wallet_of(call.body.user_id)
    if linked is None:
        raise not_found("that user has no linked wallet", "no_wallet")
    sig = await faucet_quote(_chain(call), linked.address, call.body.amount)
    return FaucetOut(sig, linked.address)
