"""Client side of the market's transaction requests (deposits): what a wallet does, for tests, the demo and scripts.

The API returns an unsigned v0 transaction (base64). The wallet checks what it is asked to sign (here: the caller
can inspect ``describe``), signs the message bytes with its key and puts the signature in its slot; the rest stays
empty for the platform to fill in.
"""

from __future__ import annotations

import base64

from solders.keypair import Keypair
from solders.message import to_bytes_versioned
from solders.transaction import VersionedTransaction


def sign_transaction_request(transaction_b64: str, wallet: Keypair) -> str:
    """Sign a transaction request with ``wallet``; returns the base64 transaction to submit back.
    Raises ``ValueError`` if the wallet is not one of the transaction's signers."""
    tx = VersionedTransaction.from_bytes(base64.b64decode(transaction_b64, validate=True))
    keys = list(tx.message.account_keys[: tx.message.header.num_required_signatures])
    if wallet.pubkey() not in keys:
        raise ValueError("this wallet is not asked to sign the transaction")
    sigs = list(tx.signatures)
    sigs[keys.index(wallet.pubkey())] = wallet.sign_message(to_bytes_versioned(tx.message))
    return base64.b64encode(bytes(VersionedTransaction.populate(tx.message, sigs))).decode()


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
