"""The one flow for transactions a user's wallet signs (the transaction-request pattern), step by step:

1. ``build``: the platform compiles a v0 message, its fee payer paying, with a fresh blockhash; size-checked. The
   ``Request`` keeps the exact message and the block height it is valid until; ``unsigned`` is the transaction
   with empty signature slots, serialized (``encode``) for the wallet.
2. The wallet signs its slot(s) and hands the transaction back: ``wallet_sign`` / ``sign_request`` are what a wallet
   does (the demo, tests, scripts and benchmarks use these, never their own copy).
3. ``decode``, then ``check_unchanged``: the message must be byte-for-byte the one built (nothing swapped in).
4. ``cosign``: every signer that is not the platform must have signed, and its signature must verify; the platform's
   keys fill their slots.
5. Submit: ``send`` (with preflight) and ``await_outcome``; ``decide`` is the rule that turns a signature status into
   an outcome, the same rule the chain outbox (``central.chain.outbox``) reconciles its own transactions by: landed
   without error at a confirming level → confirmed; landed with an error → failed (atomic: nothing applied);
   unknown with the chain (height read first) already past the last valid block height → expired (it can never
   land); otherwise still open.

Errors of steps 3–4 are ``TransactionRequestError`` (a ``LedgerError``) with a ``reason``; callers map them to their
own domain errors.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.ledger.builder import Signer, check_size, compile_message, pubkey_of, required_signers
from central.ledger.errors import (
    AlreadyProcessedError,
    LedgerError,
    LedgerUnavailableError,
    TransactionFailedError,
    TransactionRejectedError,
)
from central.ledger.port import Ledger, SignatureStatus

#: Confirmation levels final enough to count a transaction as confirmed (the chain outbox's default).
CONFIRMED_LEVELS = frozenset({"confirmed", "finalized"})
FINALIZED_ONLY = frozenset({"finalized"})
#: Any landed status counts (for callers that only need "it landed").
LANDED = frozenset({"processed", "confirmed", "finalized"})


# ------------------------------------------------------------------------------------------------- 1. build

@dataclass(frozen=True)
class Request:
    """A message for the wallet(s) to sign and the last block height it can land at."""

    message: MessageV0
    last_valid_block_height: int


async def build(ledger: Ledger, fee_payer: Pubkey, instructions: Sequence[Instruction]) -> Request:
    """Compile ``instructions`` with the platform's ``fee_payer`` and a fresh blockhash; size-checked
    (``TransactionTooLargeError``)."""
    latest = await ledger.get_latest_blockhash()
    message = compile_message(fee_payer, instructions, latest.blockhash)
    check_size(message)
    return Request(message, latest.last_valid_block_height)


def unsigned(message: MessageV0) -> VersionedTransaction:
    """The transaction with every signature slot empty, as wallets expect it."""
    return VersionedTransaction.populate(message, [Signature.default()] * message.header.num_required_signatures)


def encode(tx: VersionedTransaction) -> str:
    """A transaction as base64 text (how it travels to and from the wallet)."""
    return base64.b64encode(bytes(tx)).decode()


# ------------------------------------------------------------------------------------------------- 2. the wallet

def wallet_sign(tx: VersionedTransaction | MessageV0, wallets: Sequence[Keypair]) -> VersionedTransaction:
    """What a wallet does: sign the message and fill its own slot(s); other slots stay as they are (empty)."""
    if isinstance(tx, MessageV0):
        tx = unsigned(tx)
    message = tx.message
    data = to_bytes_versioned(message)
    mine = {w.pubkey(): w for w in wallets}
    signatures = [mine[k].sign_message(data) if k in mine else s
                  for k, s in zip(required_signers(message), tx.signatures, strict=True)]
    return VersionedTransaction.populate(message, signatures)


def sign_request(transaction_b64: str, wallet: Keypair) -> str:
    """Sign a base64 transaction request with ``wallet``; returns the base64 transaction to submit back.
    Raises ``ValueError`` if the wallet is not one of the transaction's signers."""
    tx = VersionedTransaction.from_bytes(base64.b64decode(transaction_b64, validate=True))
    if wallet.pubkey() not in required_signers(tx.message):
        raise ValueError("this wallet is not asked to sign the transaction")
    return encode(wallet_sign(tx, [wallet]))


# ------------------------------------------------------------------------------------------------- 3-4. co-sign

class Refusal(StrEnum):
    MALFORMED = "malformed"
    CHANGED = "changed"
    SIGNATURES = "signatures"
    BAD_SIGNATURE = "bad_signature"


class TransactionRequestError(LedgerError):
    """A transaction handed back by a wallet is malformed, not the message built, or not (properly) signed."""

    def __init__(self, reason: Refusal, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def decode(signed_b64: str) -> VersionedTransaction:
    try:
        return VersionedTransaction.from_bytes(base64.b64decode(signed_b64, validate=True))
    except (binascii.Error, ValueError, TypeError):
        raise TransactionRequestError(
            Refusal.MALFORMED, "transaction is not a base64 serialized versioned transaction") from None


def check_unchanged(signed: VersionedTransaction, expected: bytes | MessageV0) -> None:
    """The wallet handed back exactly the message built (``expected``: the message or its versioned bytes)."""
    want = expected if isinstance(expected, bytes) else bytes(to_bytes_versioned(expected))
    if bytes(to_bytes_versioned(signed.message)) != want:
        raise TransactionRequestError(Refusal.CHANGED, "the transaction is not the one built")


def cosign(signed: VersionedTransaction, platform: Sequence[Signer]) -> VersionedTransaction:
    """Verify every non-platform signature and fill the platform's slots. Call ``check_unchanged`` first."""
    message = signed.message
    data = to_bytes_versioned(message)
    keys = required_signers(message)
    signatures = list(signed.signatures)
    if len(signatures) != len(keys):
        raise TransactionRequestError(Refusal.SIGNATURES, "the transaction's signatures do not match its signers")
    ours = {pubkey_of(s): s for s in platform}
    for i, key in enumerate(keys):
        if key in ours:
            signatures[i] = ours[key].sign_message(data)
        elif not signatures[i].verify(key, data):
            raise TransactionRequestError(Refusal.BAD_SIGNATURE, f"the signature of {key} does not verify")
    return VersionedTransaction.populate(message, signatures)


# ------------------------------------------------------------------------------------------------- 5. submit

class Verdict(StrEnum):
    CONFIRMED = "confirmed"
    FAILED = "failed"
    EXPIRED = "expired"
    OPEN = "open"


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    #: the transaction error (JSON-RPC form, as text) or why the ledger refused it
    error: str | None = None
    #: the ledger refused the transaction when it was sent (it was never executed)
    refused: bool = False


def decide(status: SignatureStatus | None, height: int, last_valid_block_height: int,
           levels: Collection[str] = CONFIRMED_LEVELS) -> Outcome:
    """The reconciliation rule. ``height`` must be read before ``status``: a transaction unknown while the chain was
    already past its last valid block height can never land."""
    if status is not None and status.err is None:
        return Outcome(Verdict.CONFIRMED if status.confirmation_status in levels else Verdict.OPEN)
    if status is not None:
        return Outcome(Verdict.FAILED, str(status.err))
    if height > last_valid_block_height:
        return Outcome(Verdict.EXPIRED)
    return Outcome(Verdict.OPEN)


async def send(ledger: Ledger, tx: VersionedTransaction) -> Outcome:
    """Send with preflight. ``OPEN`` when sent (or when the send's fate is unknown: ``error`` says why); ``FAILED``
    when preflight refused it, ``EXPIRED`` when the ledger refused it outright (e.g. blockhash too old) — in both
    cases it was never executed and cannot land. A duplicate of one already executed is ``OPEN`` with ``refused``
    (not "expired": it did land, maybe failed; its status says which)."""
    try:
        await ledger.send_transaction(tx, skip_preflight=False)
    except TransactionFailedError as e:
        return Outcome(Verdict.FAILED, str(e.err), refused=True)
    except AlreadyProcessedError as e:  # sent before (a retry): it was executed; its signature status decides
        return Outcome(Verdict.OPEN, str(e), refused=True)
    except TransactionRejectedError as e:
        return Outcome(Verdict.EXPIRED, str(e), refused=True)
    except LedgerError as e:
        return Outcome(Verdict.OPEN, str(e), refused=True)
    return Outcome(Verdict.OPEN)


async def await_outcome(ledger: Ledger, signature: Signature, last_valid_block_height: int, *,
                        levels: Collection[str] = CONFIRMED_LEVELS, wait_seconds: float = 30.0,
                        poll: float = 0.02) -> Outcome:
    """Poll ``decide`` until the outcome is no longer open. Raises ``LedgerUnavailableError`` on timeout."""
    deadline = time.monotonic() + wait_seconds
    while True:
        height = await ledger.get_block_height()
        (status,) = await ledger.get_signature_statuses([signature])
        outcome = decide(status, height, last_valid_block_height, levels)
        if outcome.verdict is not Verdict.OPEN:
            return outcome
        if time.monotonic() > deadline:
            raise LedgerUnavailableError("timed out waiting for transaction confirmation")
        await asyncio.sleep(poll)
