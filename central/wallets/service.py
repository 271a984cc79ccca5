"""Wallet linking (protocol §6 Wallet link message, docs/decisions/0006-ownership-proven-twice.md): a user proves
control of a Solana wallet by signing a link message that names their account, the wallet, a single-use nonce and an
expiry.

Why nobody can point another user's minted energy at their own wallet: minting pays the wallet stored for the meter's
owner, and that row changes only through :meth:`WalletService.complete_link`, which needs (1) the caller to be the
user named in the message (routes pass the authenticated user), (2) a nonce central issued to that user for exactly
that wallet, unused and unexpired, and (3) a signature by the wallet's own key over the whole message. A re-link is
the same flow with a new nonce and a new signature; an old signed message cannot be replayed (its nonce is used).
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from central.wallets.errors import (
    BadWalletAddressError,
    LinkExpiredError,
    LinkRejectedError,
    TooManyLinkRequestsError,
)
from central.wallets.store import LinkedWallet, WalletStore
from protocol.errors import BadSignatureError, MalformedError
from protocol.wallet_link import NONCE_SIZE, WalletLink, verify_wallet_link

#: What runs right after a user linked a wallet (given the user's id); the composition root binds it to minting's
#: ``release_accrued``, so energy accrued while the user had no wallet is minted to the new one at once.
OnLinked = Callable[[uuid.UUID], Awaitable[object]]

DEFAULT_LINK_TTL = timedelta(minutes=10)
#: Unused, unexpired link messages one user may hold at once.
MAX_OPEN_LINKS = 10


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class WalletService:
    store: WalletStore
    clock: Callable[[], datetime] = utc_now
    link_ttl: timedelta = DEFAULT_LINK_TTL
    max_open_links: int = MAX_OPEN_LINKS

    async def start_link(self, user_id: uuid.UUID, wallet: str) -> WalletLink:
        """Issue the message the wallet must sign (a fresh single-use nonce, expiry ``now + link_ttl``)."""
        now = self.clock()
        if await self.store.open_nonces(user_id, now) >= self.max_open_links:
            raise TooManyLinkRequestsError("too many open wallet-link requests; use one or wait for them to expire")
        expires = (now + self.link_ttl).replace(microsecond=0)
        try:
            link = WalletLink(user_id, wallet, secrets.token_bytes(NONCE_SIZE), expires)
        except MalformedError as exc:
            raise BadWalletAddressError("wallet must be a base58 Ed25519 public key") from exc
        await self.store.add_nonce(link.nonce, user_id, wallet, expires)
        return link

    async def complete_link(self, user_id: uuid.UUID, message: str, signature: bytes) -> LinkedWallet:
        """Verify the signed message and link the wallet to ``user_id`` (the authenticated caller)."""
        try:
            link = WalletLink.parse(message)
        except MalformedError as exc:
            raise LinkRejectedError(f"not a wallet-link message: {exc}") from exc
        if link.user_id != user_id:
            raise LinkRejectedError("the link message names another account")
        now = self.clock()
        if link.expires <= now:
            raise LinkExpiredError("the link message has expired; request a new one")
        try:
            verify_wallet_link(link, signature)
        except BadSignatureError as exc:
            raise LinkRejectedError("the signature is not the wallet's signature of this message") from exc
        return await self.store.link(link.nonce, user_id, link.wallet, now)

    async def wallet_of(self, user_id: uuid.UUID) -> LinkedWallet | None:
        return await self.store.get(user_id)
