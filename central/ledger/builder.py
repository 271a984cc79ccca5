"""Transaction building above the ``Ledger`` port, shared by both adapters.

Instructions are plain solders ``Instruction`` values; the helpers here build the few central needs without the
(slow, pydantic-based) solana-py parameter models. Messages are v0 (address lookup tables optional). Every
transaction built here is checked against the 1232-byte packet limit, which LiteSVM itself does not enforce.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence

from solders.address_lookup_table_account import AddressLookupTableAccount
from solders.compute_budget import set_compute_unit_limit, set_compute_unit_price
from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message, MessageV0, MessageV1, to_bytes_versioned
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.system_program import ID as SYSTEM_PROGRAM_ID
from solders.system_program import CreateAccountWithSeedParams, create_account_with_seed
from solders.transaction import VersionedTransaction

from central.ledger.errors import LedgerUnavailableError, TransactionFailedError, TransactionTooLargeError
from central.ledger.keys import FileKey, PlatformKey
from central.ledger.port import MAX_TRANSACTION_SIZE, Ledger, SignatureStatus
from central.ledger.tokens import (
    ASSOCIATED_TOKEN_PROGRAM_ID,
    MEMO_PROGRAM_ID,
    TOKEN_ACCOUNT_SIZE,
    TOKEN_PROGRAM_ID,
)

MAX_COMPUTE_UNITS = 1_400_000
Signer = Keypair | PlatformKey


# ------------------------------------------------------------------------------------------------- instructions

@functools.lru_cache(maxsize=1 << 16)
def associated_token_address(owner: Pubkey, mint: Pubkey, token_program: Pubkey = TOKEN_PROGRAM_ID) -> Pubkey:
    return Pubkey.find_program_address([bytes(owner), bytes(token_program), bytes(mint)],
                                       ASSOCIATED_TOKEN_PROGRAM_ID)[0]


def create_ata_idempotent(payer: Pubkey, owner: Pubkey, mint: Pubkey,
                          token_program: Pubkey = TOKEN_PROGRAM_ID) -> Instruction:
    """Create ``owner``'s associated token account for ``mint`` unless it exists (no error either way)."""
    return Instruction(ASSOCIATED_TOKEN_PROGRAM_ID, bytes([1]), [
        AccountMeta(payer, True, True),
        AccountMeta(associated_token_address(owner, mint, token_program), False, True),
        AccountMeta(owner, False, False),
        AccountMeta(mint, False, False),
        AccountMeta(SYSTEM_PROGRAM_ID, False, False),
        AccountMeta(token_program, False, False),
    ])


def mint_to_checked(mint: Pubkey, destination: Pubkey, authority: Pubkey, *, amount: int, decimals: int,
                    token_program: Pubkey = TOKEN_PROGRAM_ID) -> Instruction:
    return Instruction(token_program, bytes([14]) + amount.to_bytes(8, "little") + bytes([decimals]), [
        AccountMeta(mint, False, True),
        AccountMeta(destination, False, True),
        AccountMeta(authority, True, False),
    ])


def mint_to_owner(payer: Pubkey, owner: Pubkey, mint: Pubkey, authority: Pubkey, *, amount: int, decimals: int,
                  token_program: Pubkey = TOKEN_PROGRAM_ID) -> tuple[Instruction, Instruction]:
    """Idempotent ATA creation + ``mint_to_checked`` into it: one minting unit (about 30k compute units when the
    account must be created, 5k otherwise)."""
    ata = associated_token_address(owner, mint, token_program)
    return (create_ata_idempotent(payer, owner, mint, token_program),
            mint_to_checked(mint, ata, authority, amount=amount, decimals=decimals, token_program=token_program))


def transfer_checked(source: Pubkey, mint: Pubkey, destination: Pubkey, owner: Pubkey, *, amount: int,
                     decimals: int, token_program: Pubkey = TOKEN_PROGRAM_ID) -> Instruction:
    return Instruction(token_program, bytes([12]) + amount.to_bytes(8, "little") + bytes([decimals]), [
        AccountMeta(source, False, True),
        AccountMeta(mint, False, False),
        AccountMeta(destination, False, True),
        AccountMeta(owner, True, False),
    ])


def burn_checked(account: Pubkey, mint: Pubkey, owner: Pubkey, *, amount: int, decimals: int,
                 token_program: Pubkey = TOKEN_PROGRAM_ID) -> Instruction:
    """SPL Token ``BurnChecked`` (15): ``amount`` base units leave ``account`` (signed by its ``owner``) and the
    mint's supply."""
    return Instruction(token_program, bytes([15]) + amount.to_bytes(8, "little") + bytes([decimals]), [
        AccountMeta(account, False, True),
        AccountMeta(mint, False, True),
        AccountMeta(owner, True, False),
    ])


#: SPL Token ``SetAuthority`` authority types (the same in Token-2022).
AUTHORITY_MINT_TOKENS = 0
AUTHORITY_FREEZE_ACCOUNT = 1


def set_authority(account: Pubkey, current: Pubkey, new: Pubkey | None, authority_type: int,
                  token_program: Pubkey = TOKEN_PROGRAM_ID) -> Instruction:
    """Move (or with ``new=None`` drop) a mint's or account's authority; ``current`` signs."""
    option = bytes([1]) + bytes(new) if new is not None else bytes([0])
    return Instruction(token_program, bytes([6, authority_type]) + option,
                       [AccountMeta(account, False, True), AccountMeta(current, True, False)])


def initialize_mint2(mint: Pubkey, decimals: int, mint_authority: Pubkey, freeze_authority: Pubkey | None = None,
                     token_program: Pubkey = TOKEN_PROGRAM_ID) -> Instruction:
    freeze = bytes([1]) + bytes(freeze_authority) if freeze_authority is not None else bytes(33)
    return Instruction(token_program, bytes([20, decimals]) + bytes(mint_authority) + freeze,
                       [AccountMeta(mint, False, True)])


def initialize_account3(account: Pubkey, mint: Pubkey, owner: Pubkey,
                        token_program: Pubkey = TOKEN_PROGRAM_ID) -> Instruction:
    return Instruction(token_program, bytes([18]) + bytes(owner),
                       [AccountMeta(account, False, True), AccountMeta(mint, False, False)])


def memo(text: str | bytes, signers: Sequence[Pubkey] = ()) -> Instruction:
    data = text.encode() if isinstance(text, str) else text
    return Instruction(MEMO_PROGRAM_ID, data, [AccountMeta(s, True, False) for s in signers])


def seeded_address(base: Pubkey, seed: str, owner: Pubkey = TOKEN_PROGRAM_ID) -> Pubkey:
    """The ``create_with_seed`` address (docs/decisions/0008-escrow-uniform-price-auction.md escrow accounts); ``seed``
    is at most 32 bytes."""
    return Pubkey.create_with_seed(base, seed, owner)


def create_token_account_with_seed(payer: Pubkey, base: Pubkey, seed: str, *, mint: Pubkey, owner: Pubkey,
                                   lamports: int, token_program: Pubkey = TOKEN_PROGRAM_ID) -> list[Instruction]:
    """Create and initialise a token account at ``seeded_address(base, seed)`` owned (token-wise) by ``owner``.
    ``base`` must sign; ``lamports`` is the rent-exempt minimum for 165 bytes."""
    address = seeded_address(base, seed, token_program)
    return [
        create_account_with_seed(CreateAccountWithSeedParams(
            from_pubkey=payer, to_pubkey=address, base=base, seed=seed, lamports=lamports,
            space=TOKEN_ACCOUNT_SIZE, owner=token_program)),
        initialize_account3(address, mint, owner, token_program),
    ]


def compute_budget(units: int | None = None, micro_lamports: int | None = None) -> list[Instruction]:
    out: list[Instruction] = []
    if units is not None:
        out.append(set_compute_unit_limit(min(units, MAX_COMPUTE_UNITS)))
    if micro_lamports:
        out.append(set_compute_unit_price(micro_lamports))
    return out


# ------------------------------------------------------------------------------------------------- messages

def compile_message(payer: Pubkey, instructions: Sequence[Instruction], blockhash: Hash,
                    lookup_tables: Sequence[AddressLookupTableAccount] = ()) -> MessageV0:
    return MessageV0.try_compile(payer, list(instructions), list(lookup_tables), blockhash)


def transaction_size(message: MessageV0) -> int:
    """Serialized size of the signed transaction (compact-u16 count + 64 per signature + versioned message)."""
    n = message.header.num_required_signatures
    return (1 if n < 128 else 2) + 64 * n + len(to_bytes_versioned(message))


def check_size(message: MessageV0) -> int:
    size = transaction_size(message)
    if size > MAX_TRANSACTION_SIZE:
        raise TransactionTooLargeError(f"transaction is {size} bytes, the limit is {MAX_TRANSACTION_SIZE}")
    return size


def pubkey_of(s: Signer) -> Pubkey:
    return s.pubkey if isinstance(s, PlatformKey) else s.pubkey()


def _in_memory(s: Signer) -> Keypair | None:
    if isinstance(s, Keypair):
        return s
    return s.signer if isinstance(s, FileKey) else None


def required_signers(message: MessageV0 | Message | MessageV1) -> list[Pubkey]:
    return list(message.account_keys[:message.header.num_required_signatures])


def signatures_for(message: MessageV0, signers: Sequence[Signer]) -> list[Signature]:
    """Each required signer's signature of ``message``, in order; ``ValueError`` names the missing public keys.
    Keys in a token (``HsmKey``) are asked for their signature of the message bytes; nothing reads their secret."""
    by_key = {pubkey_of(s): s for s in signers}
    needed = required_signers(message)
    missing = [str(k) for k in needed if k not in by_key]
    if missing:
        raise ValueError(f"missing signers: {', '.join(missing)}")
    data = bytes(to_bytes_versioned(message))
    return [by_key[k].sign_message(data) for k in needed]


def sign(message: MessageV0, signers: Sequence[Signer]) -> VersionedTransaction:
    """Sign with exactly the required signers, picked from ``signers`` (extra ones are ignored).
    Raises ``ValueError`` naming the missing public keys."""
    by_key = {pubkey_of(s): s for s in signers}
    needed = required_signers(message)
    keypairs = [_in_memory(by_key[k]) for k in needed if k in by_key]
    if len(keypairs) == len(needed) and all(kp is not None for kp in keypairs):
        # every signer is in memory (file keys): solders signs in one call
        return VersionedTransaction(message, [kp for kp in keypairs if kp is not None])
    return VersionedTransaction.populate(message, signatures_for(message, signers))


def build_transaction(payer: Signer, instructions: Sequence[Instruction], blockhash: Hash,
                      signers: Sequence[Signer] = (), *,
                      lookup_tables: Sequence[AddressLookupTableAccount] = ()) -> VersionedTransaction:
    """Compile, size-check and sign (payer plus ``signers``)."""
    message = compile_message(pubkey_of(payer), instructions, blockhash, lookup_tables)
    check_size(message)
    return sign(message, [payer, *signers])


# ------------------------------------------------------------------------------------------------- confirmation

async def wait_for_statuses(ledger: Ledger, signatures: Sequence[Signature], *, last_valid_block_height: int,
                            wait_seconds: float = 30.0, poll: float = 0.02) -> list[SignatureStatus | None]:
    """Poll until every signature has a status or the chain is past ``last_valid_block_height`` (then the missing
    ones can never land and stay None). Raises ``LedgerUnavailableError`` on timeout."""
    deadline = time.monotonic() + wait_seconds
    while True:
        height = await ledger.get_block_height()
        statuses = await ledger.get_signature_statuses(signatures)
        if all(s is not None for s in statuses) or height > last_valid_block_height:
            return statuses
        if time.monotonic() > deadline:
            raise LedgerUnavailableError("timed out waiting for transaction confirmation")
        await asyncio.sleep(poll)


async def send_and_confirm(ledger: Ledger, payer: Signer, instructions: Sequence[Instruction],
                           signers: Sequence[Signer] = (), *,
                           lookup_tables: Sequence[AddressLookupTableAccount] = (),
                           wait_seconds: float = 30.0) -> Signature:
    """Build with a fresh blockhash, send (with preflight) and wait; raises ``TransactionFailedError`` if it landed
    with an error or expired. For setup and tooling: bulk paths use the chain outbox instead."""
    latest = await ledger.get_latest_blockhash()
    tx = build_transaction(payer, instructions, latest.blockhash, signers, lookup_tables=lookup_tables)
    sig = await ledger.send_transaction(tx, skip_preflight=False)
    (status,) = await wait_for_statuses(ledger, [sig], last_valid_block_height=latest.last_valid_block_height,
                                        wait_seconds=wait_seconds)
    if status is None:
        raise TransactionFailedError("transaction expired before it landed")
    if status.err is not None:
        raise TransactionFailedError(f"transaction failed: {status.err}", err=status.err)
    return sig
