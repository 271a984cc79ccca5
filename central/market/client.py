"""Client side of the market's transaction requests (deposits): what a wallet does, for tests, the demo and scripts.

The API returns an unsigned v0 transaction (base64). The wallet checks what it is asked to sign (here: the caller
can inspect ``describe``), signs the message bytes with its key and puts the signature in its slot; the rest stays
empty for the platform to fill in.
"""

from __future__ import annotations

import base64

from solders.transaction import VersionedTransaction

from central.ledger.cosign import sign_request

#: The wallet's step of the one transaction-request flow (``central.ledger.cosign``), under the market's name.
sign_transaction_request = sign_request


def describe(transaction_b64: str) -> dict[str, object]:
    """What the transaction asks for: fee payer, signers, programs, instruction count (for a wallet's prompt)."""
    tx = VersionedTransaction.from_bytes(base64.b64decode(transaction_b64, validate=True))
    msg = tx.message
    keys = list(msg.account_keys)
    return {
        "fee_payer": str(keys[0]),
        "signers": [str(k) for k in keys[: msg.header.num_required_signatures]],
        "programs": sorted({str(keys[ix.program_id_index]) for ix in msg.instructions}),
        "instructions": len(msg.instructions),
    }
