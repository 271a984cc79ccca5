"""Pure builders for the certificate's on-chain instructions (no I/O, no signing).

Addresses: a certificate's mint is derived with ``create_with_seed(issuer, certificate_id.hex, Token-2022)``, so the
mint follows from the certificate id and the issuer's public key alone and issuance needs no extra keypair. Holders
keep the certificate in their Token-2022 associated token account.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from solders.instruction import Instruction
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountWithSeedParams, TransferParams, create_account_with_seed, transfer
from spl.memo.constants import MEMO_PROGRAM_ID
from spl.memo.instructions import create_memo
from spl.memo.models import MemoParams
from spl.token.instructions import (
    burn_checked,
    create_idempotent_associated_token_account,
    freeze_account,
    get_associated_token_address,
    initialize_mint,
    mint_to_checked,
    set_authority,
    transfer_checked,
)
from spl.token.models import (
    AuthorityType,
    BurnCheckedParams,
    FreezeAccountParams,
    InitializeMintParams,
    MintToCheckedParams,
    SetAuthorityParams,
    TransferCheckedParams,
)

from central.certificates import metadata as md
from central.certificates.errors import InvalidCertificateError
from central.certificates.metadata import CertificateMetadata
from central.certificates.token2022 import (
    TOKEN_2022_PROGRAM_ID,
    initialize_metadata_pointer,
    initialize_token_metadata,
    mint_len_with_metadata,
    mint_len_with_pointer,
    update_field,
)

DECIMALS = 3
PACKET_DATA_SIZE = 1232
MEMO_PREFIX = "gtx:rec:v1"
MAX_MEMO_TEXT = 64

__all__ = ["MEMO_PROGRAM_ID", "TOKEN_2022_PROGRAM_ID"]


def mint_address(issuer: Pubkey, certificate_id: UUID) -> Pubkey:
    return Pubkey.create_with_seed(issuer, certificate_id.hex, TOKEN_2022_PROGRAM_ID)


def holder_account(wallet: Pubkey, mint: Pubkey) -> Pubkey:
    return get_associated_token_address(wallet, mint, TOKEN_2022_PROGRAM_ID)


def transaction_size(instructions: Sequence[Instruction], payer: Pubkey) -> int:
    """Serialized legacy-transaction size: signature count, signatures, message."""
    message = Message(list(instructions), payer)
    n = message.header.num_required_signatures
    return 1 + 64 * n + len(bytes(message))


def pack(instructions: Sequence[Instruction], payer: Pubkey, limit: int = PACKET_DATA_SIZE) -> list[list[Instruction]]:
    """Split instructions, in order, into as few transactions of at most ``limit`` bytes as a greedy pass gives."""
    groups: list[list[Instruction]] = []
    current: list[Instruction] = []
    for ix in instructions:
        if current and transaction_size([*current, ix], payer) > limit:
            groups.append(current)
            current = []
        current.append(ix)
        if transaction_size(current, payer) > limit:
            raise InvalidCertificateError("one instruction alone exceeds the transaction size limit")
    if current:
        groups.append(current)
    return groups


@dataclass(frozen=True)
class IssuePlan:
    """Issuance in three idempotent stages: create the mint with its metadata, write the fields, mint and seal."""

    mint: Pubkey
    create: list[Instruction]
    fields: list[Instruction]
    finish: list[Instruction]
    final_len: int


def issue_plan(
    meta: CertificateMetadata,
    *,
    uri_base: str,
    issuer: Pubkey,
    fee_payer: Pubkey,
    owner_wallet: Pubkey,
    final_rent: int,
) -> IssuePlan:
    """``final_rent`` must be the rent-exempt minimum for ``final_len(meta, uri_base)`` bytes."""
    mint = mint_address(issuer, meta.certificate_id)
    fields = meta.fields()
    create = [
        create_account_with_seed(
            CreateAccountWithSeedParams(
                from_pubkey=fee_payer,
                to_pubkey=mint,
                base=issuer,
                seed=meta.certificate_id.hex,
                lamports=final_rent,
                space=mint_len_with_pointer(),
                owner=TOKEN_2022_PROGRAM_ID,
            )
        ),
        initialize_metadata_pointer(mint, None, mint),
        initialize_mint(
            InitializeMintParams(
                decimals=DECIMALS,
                program_id=TOKEN_2022_PROGRAM_ID,
                mint=mint,
                mint_authority=issuer,
                freeze_authority=issuer,
            )
        ),
        initialize_token_metadata(
            mint,
            update_authority=issuer,
            mint_authority=issuer,
            name=meta.name,
            symbol=md.SYMBOL,
            uri=meta.uri(uri_base),
        ),
    ]
    field_ixs = [update_field(mint, issuer, key, value) for key, value in fields]
    holder = holder_account(owner_wallet, mint)
    finish = [
        create_idempotent_associated_token_account(fee_payer, owner_wallet, mint, TOKEN_2022_PROGRAM_ID),
        mint_to_checked(
            MintToCheckedParams(
                program_id=TOKEN_2022_PROGRAM_ID,
                mint=mint,
                dest=holder,
                mint_authority=issuer,
                amount=meta.energy_wh,
                decimals=DECIMALS,
            )
        ),
        set_authority(
            SetAuthorityParams(
                program_id=TOKEN_2022_PROGRAM_ID,
                account=mint,
                authority=AuthorityType.MINT_TOKENS,
                current_authority=issuer,
                new_authority=None,
            )
        ),
        memo(issuer, {"op": "issue", "certificate": str(meta.certificate_id), "root": meta.readings_root.hex()}),
    ]
    return IssuePlan(mint, create, field_ixs, finish, final_len(meta, uri_base))


def final_len(meta: CertificateMetadata, uri_base: str) -> int:
    return mint_len_with_metadata(meta.name, md.SYMBOL, meta.uri(uri_base), meta.fields())


def memo(signer: Pubkey, body: dict[str, str | int]) -> Instruction:
    """An SPL memo, signed by ``signer``: ``gtx:rec:v1 {json}``."""
    text = MEMO_PREFIX + " " + json.dumps(body, separators=(",", ":"), sort_keys=True)
    return create_memo(MemoParams(program_id=MEMO_PROGRAM_ID, signer=signer, message=text.encode()))


def transfer_instructions(
    mint: Pubkey, *, certificate_id: UUID, owner_wallet: Pubkey, to_wallet: Pubkey, fee_payer: Pubkey, amount_wh: int
) -> list[Instruction]:
    """Owner-signed transfer of ``amount_wh`` to ``to_wallet``'s account (created if needed, fee payer funds it)."""
    if amount_wh <= 0:
        raise InvalidCertificateError("transfer amount must be positive")
    return [
        create_idempotent_associated_token_account(fee_payer, to_wallet, mint, TOKEN_2022_PROGRAM_ID),
        transfer_checked(
            TransferCheckedParams(
                program_id=TOKEN_2022_PROGRAM_ID,
                source=holder_account(owner_wallet, mint),
                mint=mint,
                dest=holder_account(to_wallet, mint),
                owner=owner_wallet,
                amount=amount_wh,
                decimals=DECIMALS,
            )
        ),
        memo(owner_wallet, {"op": "transfer", "certificate": str(certificate_id), "wh": amount_wh}),
    ]


@dataclass(frozen=True)
class Retirement:
    """What a retirement claims: who consumed the energy, what for, and when."""

    beneficiary: str
    purpose: str
    consumption_start: datetime
    consumption_end: datetime

    def __post_init__(self) -> None:
        for name, value in (("beneficiary", self.beneficiary), ("purpose", self.purpose)):
            if not value or len(value) > MAX_MEMO_TEXT or not value.isprintable():
                raise InvalidCertificateError(f"{name} must be 1..{MAX_MEMO_TEXT} printable characters")
        if self.consumption_end <= self.consumption_start:
            raise InvalidCertificateError("consumption period must end after it starts")
        md.format_time(self.consumption_start)
        md.format_time(self.consumption_end)


def retire_instructions(
    mint: Pubkey, *, certificate_id: UUID, owner_wallet: Pubkey, amount_wh: int, retirement: Retirement
) -> list[Instruction]:
    """Owner-signed burn of ``amount_wh`` with a memo naming beneficiary, purpose and consumption period."""
    if amount_wh <= 0:
        raise InvalidCertificateError("retirement amount must be positive")
    return [
        burn_checked(
            BurnCheckedParams(
                program_id=TOKEN_2022_PROGRAM_ID,
                mint=mint,
                account=holder_account(owner_wallet, mint),
                owner=owner_wallet,
                amount=amount_wh,
                decimals=DECIMALS,
            )
        ),
        memo(
            owner_wallet,
            {
                "op": "retire",
                "certificate": str(certificate_id),
                "wh": amount_wh,
                "beneficiary": retirement.beneficiary,
                "purpose": retirement.purpose,
                "from": md.format_time(retirement.consumption_start),
                "to": md.format_time(retirement.consumption_end),
            },
        ),
    ]


def freeze_instructions(mint: Pubkey, issuer: Pubkey, accounts: Sequence[Pubkey]) -> list[Instruction]:
    return [
        freeze_account(
            FreezeAccountParams(program_id=TOKEN_2022_PROGRAM_ID, account=account, mint=mint, authority=issuer)
        )
        for account in accounts
    ]


def revocation_fields(mint: Pubkey, issuer: Pubkey, fee_payer: Pubkey, reason: str, top_up: int) -> list[Instruction]:
    """Mark the metadata revoked; ``top_up`` lamports keep the grown mint rent-exempt."""
    if not reason or len(reason) > MAX_MEMO_TEXT or not reason.isprintable():
        raise InvalidCertificateError(f"revocation reason must be 1..{MAX_MEMO_TEXT} printable characters")
    ixs: list[Instruction] = []
    if top_up > 0:
        ixs.append(transfer(TransferParams(from_pubkey=fee_payer, to_pubkey=mint, lamports=top_up)))
    ixs.append(update_field(mint, issuer, md.KEY_STATUS, md.STATUS_REVOKED))
    ixs.append(update_field(mint, issuer, md.KEY_REVOCATION_REASON, reason))
    return ixs
