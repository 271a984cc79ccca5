"""Hourly consumption matching: redemptions (burn + memo, signed by the holder's wallet through the cosign flow),
the statement per hour and month, and the signed claim (rules in ``central.market.matching``)."""

from __future__ import annotations

import base64
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from solders.message import to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature

from central.ledger import cosign
from central.ledger.builder import associated_token_address, burn_checked, memo, wait_for_statuses
from central.ledger.cosign import Verdict
from central.ledger.errors import LedgerError
from central.ledger.platform import Platform
from central.ledger.setup import ENERGY_DECIMALS
from central.market.errors import ConflictError, InvalidOrderError, InvalidTransactionError
from central.market.matching import (
    Statement,
    canonical,
    claim_body,
    hour_of,
    memo_text,
    month_range,
    statement,
)
from central.market.matching_pg import PgMatchingStore, Redemption
from protocol.keys import SigningKey

log = logging.getLogger(__name__)

MAX_REDEEM_WH = 10**12


def _now() -> datetime:
    return datetime.now(UTC)


class Matching:
    def __init__(
        self, store: PgMatchingStore, platform: Platform, signer: SigningKey | None, *, confirm_wait_s: float = 10.0,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self.store = store
        self.platform = platform
        self.signer = signer
        self.confirm_wait_s = confirm_wait_s
        self.now = now

    # ------------------------------------------------------------------------------------------- redemptions

    async def request(self, user_id: UUID, serial: str, hour: datetime, amount: int) -> Redemption:
        """Reserve ``amount`` Wh of the meter's import in ``hour`` and build the burn for the wallet to sign."""
        try:
            hour = hour_of(hour)
        except ValueError as e:
            raise InvalidOrderError(str(e)) from None
        if not 1 <= amount <= MAX_REDEEM_WH:
            raise InvalidOrderError(f"amount must be 1..{MAX_REDEEM_WH} Wh")
        wallet = await self.store.wallet_of(user_id)
        meter_id, import_wh = await self.store.metered(user_id, serial, hour)
        rid = uuid4()
        text = memo_text(rid, serial, hour, amount)
        owner, mint = Pubkey.from_string(wallet), self.platform.energy_mint
        request = await cosign.build(self.platform.ledger, self.platform.fee_payer.pubkey, [
            burn_checked(associated_token_address(owner, mint), mint, owner, amount=amount, decimals=ENERGY_DECIMALS),
            memo(text, [owner]),
        ])
        rec = Redemption(rid, user_id, serial, hour, amount, wallet, text, "built",
                         to_bytes_versioned(request.message), request.last_valid_block_height, None, None)
        await self.store.reserve(rec, meter_id, import_wh)
        return rec

    @staticmethod
    def unsigned(rec: Redemption) -> str:
        """The transaction for the wallet to sign (base64, empty signature slots)."""
        from solders.message import MessageV0  # noqa: PLC0415 - only here

        return cosign.encode(cosign.unsigned(MessageV0.from_bytes(rec.message[1:])))

    async def submit(self, user_id: UUID, redemption_id: UUID, signed_b64: str) -> Redemption:
        """Check the wallet-signed burn is the one built, co-sign (fee payer), send and wait for its outcome."""
        rec = await self.store.get(user_id, redemption_id)
        if rec.status != "built":
            raise ConflictError(f"redemption is already {rec.status}")
        try:
            tx = cosign.decode(signed_b64)
            cosign.check_unchanged(tx, rec.message)
            tx = cosign.cosign(tx, [self.platform.fee_payer])
        except cosign.TransactionRequestError as e:
            raise InvalidTransactionError(str(e)) from None
        if not await self.store.mark_submitted(rec.id, str(tx.signatures[0])):
            raise ConflictError("redemption is no longer waiting for its signature")
        sent = await cosign.send(self.platform.ledger, tx)
        if sent.verdict is not Verdict.OPEN:
            await self.store.finish(rec.id, sent.verdict.value, sent.error)
        else:
            with contextlib.suppress(LedgerError):
                await wait_for_statuses(self.platform.ledger, [tx.signatures[0]],
                                        last_valid_block_height=rec.last_valid_block_height,
                                        wait_seconds=self.confirm_wait_s)
            await self.resolve_open(only=rec.id)
        return await self.store.get(user_id, rec.id)

    async def resolve_open(self, only: UUID | None = None) -> int:
        """Decide redemptions in flight (a job runs this): confirmed burns count, failed or expired ones give their
        Wh back."""
        rows = [r for r in await self.store.open_redemptions() if only is None or r.id == only]
        if not rows:
            return 0
        height = await self.platform.ledger.get_block_height()
        decided = 0
        submitted = [r for r in rows if r.status == "submitted" and r.signature]
        statuses = await self.platform.ledger.get_signature_statuses(
            [Signature.from_string(str(r.signature)) for r in submitted]
        )
        for r, st in zip(submitted, statuses, strict=True):
            outcome = cosign.decide(st, height, r.last_valid_block_height)
            if outcome.verdict is not Verdict.OPEN:
                await self.store.finish(r.id, outcome.verdict.value, outcome.error)
                decided += 1
        for r in rows:
            if r.status == "built" and height > r.last_valid_block_height:
                await self.store.finish(r.id, "expired", "not signed before the blockhash expired")
                decided += 1
        return decided

    # ------------------------------------------------------------------------------------------- statements

    async def statement(self, user_id: UUID, month: str) -> Statement:
        try:
            start, end = month_range(month)
        except ValueError:
            raise InvalidOrderError("month must be YYYY-MM") from None
        return statement(user_id, month, await self.store.hours(user_id, start, end))

    def public_key(self) -> bytes:
        if self.signer is None:
            raise ConflictError("this process has no signing key: claims cannot be issued")
        return self.signer.public_key

    async def claim(self, user_id: UUID, month: str) -> dict[str, Any]:
        """The month's statement as a certificate-style claim: the body and central's Ed25519 signature of its
        canonical bytes (``matching.canonical``), with the public key to check it against."""
        key = self.public_key()
        assert self.signer is not None
        body = claim_body(await self.statement(user_id, month), self.now())
        return {
            "claim": body,
            "signature": base64.b64encode(self.signer.sign(canonical(body))).decode(),
            "public_key": base64.b64encode(key).decode(),
        }
