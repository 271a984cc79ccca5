"""The one transaction-request flow (central/ledger/cosign.py) without a ledger: the wallet's step, the platform's
checks and co-signature, and the reconciliation rule shared with the chain outbox."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.hash import Hash
from solders.keypair import Keypair
from solders.message import MessageV0, to_bytes_versioned
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.ledger import cosign
from central.ledger.builder import compile_message, memo
from central.ledger.cosign import Refusal, TransactionRequestError, Verdict
from central.ledger.port import SignatureStatus

PLATFORM, WALLET = Keypair(), Keypair()


def _message(text: str = "gtx:test", blockhash: Hash | None = None) -> MessageV0:
    return compile_message(PLATFORM.pubkey(), [memo(text, [WALLET.pubkey()])], blockhash or Hash.new_unique())


def test_wallet_signs_platform_cosigns_and_every_signature_verifies() -> None:
    message = _message()
    handed_out = cosign.encode(cosign.unsigned(message))
    back = cosign.decode(cosign.sign_request(handed_out, WALLET))
    cosign.check_unchanged(back, message)
    tx = cosign.cosign(back, [PLATFORM])
    assert all(tx.verify_with_results())
    assert tx.signatures[0] == PLATFORM.sign_message(to_bytes_versioned(message))


def test_refusals() -> None:
    message = _message()
    with pytest.raises(ValueError, match="not asked to sign"):
        cosign.sign_request(cosign.encode(cosign.unsigned(message)), Keypair())
    with pytest.raises(TransactionRequestError) as changed:
        cosign.check_unchanged(cosign.wallet_sign(_message("gtx:other"), [WALLET]), message)
    assert changed.value.reason is Refusal.CHANGED
    with pytest.raises(TransactionRequestError, match="does not verify") as unsigned:
        cosign.cosign(cosign.unsigned(message), [PLATFORM])
    assert unsigned.value.reason is Refusal.BAD_SIGNATURE
    short = VersionedTransaction.populate(message, [Signature.default()])  # one signature for two signers
    with pytest.raises(TransactionRequestError) as count:
        cosign.cosign(short, [PLATFORM])
    assert count.value.reason is Refusal.SIGNATURES


def _refusal(text: str) -> Refusal | None:
    try:
        cosign.decode(text)
    except TransactionRequestError as exc:
        return exc.reason
    return None


@given(st.binary(max_size=300))
def test_any_bytes_from_a_wallet_decode_or_are_refused_as_malformed(raw: bytes) -> None:
    assert _refusal(base64.b64encode(raw).decode()) in (None, Refusal.MALFORMED)


@given(st.text(max_size=100))
def test_any_text_from_a_wallet_decodes_or_is_refused_as_malformed(text: str) -> None:
    assert _refusal(text) in (None, Refusal.MALFORMED)


@given(st.text(min_size=1, max_size=200))
def test_the_wallet_round_trip_keeps_the_message(text: str) -> None:
    message = _message(text, Hash.default())
    back = cosign.decode(cosign.sign_request(cosign.encode(cosign.unsigned(message)), WALLET))
    cosign.check_unchanged(back, to_bytes_versioned(message))
    assert all(cosign.cosign(back, [PLATFORM]).verify_with_results())


@pytest.mark.parametrize(
    ("status", "height", "verdict"),
    [
        (SignatureStatus(5, None, "confirmed"), 10, Verdict.CONFIRMED),
        (SignatureStatus(5, None, "finalized"), 200, Verdict.CONFIRMED),
        (SignatureStatus(5, None, "processed"), 10, Verdict.OPEN),
        (SignatureStatus(5, {"InstructionError": [0, {"Custom": 1}]}, "confirmed"), 10, Verdict.FAILED),
        (None, 100, Verdict.OPEN),  # unknown, still valid at height 100
        (None, 101, Verdict.EXPIRED),  # unknown, the chain is past the last valid block height
    ],
)
def test_decide_is_the_reconciliation_rule(status: SignatureStatus | None, height: int, verdict: Verdict) -> None:
    assert cosign.decide(status, height, 100).verdict is verdict


def test_decide_levels() -> None:
    processed = SignatureStatus(5, None, "processed")
    assert cosign.decide(processed, 10, 100, cosign.LANDED).verdict is Verdict.CONFIRMED
    assert cosign.decide(SignatureStatus(5, None, "confirmed"), 10, 100, cosign.FINALIZED_ONLY).verdict is Verdict.OPEN
