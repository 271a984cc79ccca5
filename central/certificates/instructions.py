"""Pure builders for the certificate's on-chain instructions (no I/O, no signing).

Addresses: a certificate's mint is derived with ``create_with_seed(issuer, certificate_id.hex, Token-2022)``, so the
mint follows from the certificate id and the issuer's public key alone and issuance needs no extra keypair. Holders
keep the certificate in their Token-2022 associated token account.

Holder control: the mint carries the default-account-state extension set to *frozen*, so a token account anybody
creates for it starts frozen and can receive nothing until the issuer (freeze authority) thaws it. Accounts are
*frozen at rest*: the platform thaws a holder's account only inside a transfer or retirement it co-signs, and the same
transaction freezes it again. So a certificate moves or is retired only through the platform, whose records (holdings,
retirements) therefore always match the chain; and every account that ever held the certificate is one the platform
knows (revocation and expiry freeze them all; the Ledger port has no getProgramAccounts to find them). An account
left thawed by an earlier version is frozen by its next transfer or retirement.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from solders.instruction import Instruction
from solders.pubkey import Pubkey
from solders.system_program import CreateAccountWithSeedParams, TransferParams, create_account_with_seed, transfer

from central.certificates import metadata as md
from central.certificates.errors import InvalidCertificateError
from central.certificates.metadata import CertificateMetadata
from central.certificates.token2022 import (
    TOKEN_2022_PROGRAM_ID,
    burn_checked,
    drop_mint_authority,
    freeze_account,
    initialize_default_account_state_frozen,
    initialize_metadata_pointer,
    initialize_token_metadata,
    mint_len_at_creation,
    mint_len_with_metadata,
    thaw_account,
    update_field,
)
from central.ledger import builder

DECIMALS = 3
MEMO_PREFIX = "gtx:rec:v1"
MAX_MEMO_TEXT = 64


def mint_address(issuer: Pubkey, certificate_id: UUID) -> Pubkey:
    return Pubkey.create_with_seed(issuer, certificate_id.hex, TOKEN_2022_PROGRAM_ID)


def holder_account(wallet: Pubkey, mint: Pubkey) -> Pubkey:
    return builder.associated_token_address(wallet, mint, TOKEN_2022_PROGRAM_ID)


@dataclass(frozen=True)
class IssuePlan:
    """Issuance of one certificate, planned in one forward pass (certificate metadata → token-metadata values →
    Token-2022 instructions), in three idempotent stages: create the mint with its metadata (``create``, once the
    rent for ``final_len`` bytes is known), write the fields, mint and seal. The issuing code needs nothing else:
    it compares what the chain shows with ``field_values`` and ``decimals`` and never goes back to the metadata."""

    mint: Pubkey
    #: the mint's size once every field is written (fund its rent-exempt minimum up front)
    final_len: int
    #: the additional metadata fields in their on-chain order, and one ``update_field`` instruction per field
    field_values: tuple[tuple[str, str], ...]
    fields: list[Instruction]
    finish: list[Instruction]
    decimals: int
    _seed: str
    _payer: Pubkey
    _issuer: Pubkey
    _initialize: tuple[Instruction, ...]

    def create(self, final_rent: int) -> list[Instruction]:
        """Stage 1; ``final_rent`` must be the rent-exempt minimum for ``final_len`` bytes."""
        account = create_account_with_seed(
            CreateAccountWithSeedParams(
                from_pubkey=self._payer,
                to_pubkey=self.mint,
                base=self._issuer,
                seed=self._seed,
                lamports=final_rent,
                space=mint_len_at_creation(),
                owner=TOKEN_2022_PROGRAM_ID,
            )
        )
        return [account, *self._initialize]

    def missing_fields(self, present: Mapping[str, str]) -> list[Instruction]:
        """Stage 2 as far as the chain does not show it done yet."""
        return [ix for ix, (k, v) in zip(self.fields, self.field_values, strict=True) if present.get(k) != v]

    def shows(self, present: Mapping[str, str]) -> bool:
        """Whether on-chain additional fields hold exactly the planned values."""
        return all(present.get(k) == v for k, v in self.field_values)


def issue_plan(
    meta: CertificateMetadata,
    *,
    uri_base: str,
    issuer: Pubkey,
    fee_payer: Pubkey,
    owner_wallet: Pubkey,
) -> IssuePlan:
    mint = mint_address(issuer, meta.certificate_id)
    name, uri, values = meta.name, meta.uri(uri_base), tuple(meta.fields())
    initialize = (
        initialize_default_account_state_frozen(mint),
        initialize_metadata_pointer(mint, None, mint),
        builder.initialize_mint2(mint, DECIMALS, issuer, issuer, TOKEN_2022_PROGRAM_ID),
        initialize_token_metadata(
            mint, update_authority=issuer, mint_authority=issuer, name=name, symbol=md.SYMBOL, uri=uri
        ),
    )
    field_ixs = [update_field(mint, issuer, key, value) for key, value in values]
    holder = holder_account(owner_wallet, mint)
    finish = [
        builder.create_ata_idempotent(fee_payer, owner_wallet, mint, TOKEN_2022_PROGRAM_ID),
        thaw_account(holder, mint, issuer),
        builder.mint_to_checked(
            mint, holder, issuer, amount=meta.energy_wh, decimals=DECIMALS, token_program=TOKEN_2022_PROGRAM_ID
        ),
        freeze_account(holder, mint, issuer),  # frozen at rest
        drop_mint_authority(mint, issuer),
        memo(issuer, {"op": "issue", "certificate": str(meta.certificate_id), "root": meta.readings_root.hex()}),
    ]
    final_len = mint_len_with_metadata(name, md.SYMBOL, uri, values)
    return IssuePlan(
        mint, final_len, values, field_ixs, finish, DECIMALS, meta.certificate_id.hex, fee_payer, issuer, initialize
    )


def memo(signer: Pubkey, body: dict[str, str | int]) -> Instruction:
    """An SPL memo, signed by ``signer``: ``gtx:rec:v1 {json}``."""
    text = MEMO_PREFIX + " " + json.dumps(body, separators=(",", ":"), sort_keys=True)
    return builder.memo(text, [signer])


def transfer_instructions(
    mint: Pubkey,
    *,
    certificate_id: UUID,
    owner_wallet: Pubkey,
    to_wallet: Pubkey,
    fee_payer: Pubkey,
    amount_wh: int,
    issuer: Pubkey | None = None,
    thaw: Collection[Pubkey] = (),
    reference: str | None = None,
) -> list[Instruction]:
    """Owner-signed transfer of ``amount_wh`` to ``to_wallet``'s account (created if needed; the fee payer funds
    it). With ``issuer`` (the platform's transfers): the accounts of the wallets in ``thaw`` (those frozen now; a new
    account starts frozen) are thawed first, and both accounts are frozen again after the transfer (frozen at rest).
    Without it, the bare transfer anybody can build (which the chain refuses for a frozen account).
    ``reference`` (the request id) goes into the memo: it ties the transaction to its off-chain record and keeps
    two equal requests from being one and the same transaction."""
    if amount_wh <= 0:
        raise InvalidCertificateError("transfer amount must be positive")
    source, dest = holder_account(owner_wallet, mint), holder_account(to_wallet, mint)
    ixs = [builder.create_ata_idempotent(fee_payer, to_wallet, mint, TOKEN_2022_PROGRAM_ID)]
    ixs += _thaw(mint, issuer, thaw, ((owner_wallet, source), (to_wallet, dest)))
    ixs.append(
        builder.transfer_checked(
            source, mint, dest, owner_wallet, amount=amount_wh, decimals=DECIMALS, token_program=TOKEN_2022_PROGRAM_ID
        )
    )
    if issuer is not None:
        ixs += [freeze_account(source, mint, issuer), freeze_account(dest, mint, issuer)]
    body: dict[str, str | int] = {"op": "transfer", "certificate": str(certificate_id), "wh": amount_wh}
    ixs.append(memo(owner_wallet, _with_ref(body, reference)))
    return ixs


def _thaw(
    mint: Pubkey, issuer: Pubkey | None, thaw: Collection[Pubkey], accounts: Sequence[tuple[Pubkey, Pubkey]]
) -> list[Instruction]:
    """Thaw the (wallet, account) ``accounts`` whose wallet is in ``thaw`` (the issuer signs)."""
    if issuer is None:
        if thaw:
            raise InvalidCertificateError("only the issuer thaws a certificate account")
        return []
    return [thaw_account(account, mint, issuer) for wallet, account in accounts if wallet in thaw]


def _with_ref(body: dict[str, str | int], reference: str | None) -> dict[str, str | int]:
    return body if reference is None else {**body, "ref": reference}


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
        md.format_time(self.consumption_start)
        md.format_time(self.consumption_end)
        if self.consumption_end <= self.consumption_start:
            raise InvalidCertificateError("consumption period must end after it starts")


def retire_instructions(
    mint: Pubkey,
    *,
    certificate_id: UUID,
    owner_wallet: Pubkey,
    amount_wh: int,
    retirement: Retirement,
    issuer: Pubkey | None = None,
    thaw: Collection[Pubkey] = (),
    reference: str | None = None,
) -> list[Instruction]:
    """Owner-signed burn of ``amount_wh`` with a memo naming beneficiary, purpose and consumption period (and the
    request ``reference``, as for transfers). ``issuer`` and ``thaw`` as for transfers: the platform's retirements
    thaw the account if it is frozen and freeze it again after the burn."""
    if amount_wh <= 0:
        raise InvalidCertificateError("retirement amount must be positive")
    account = holder_account(owner_wallet, mint)
    return [
        *_thaw(mint, issuer, thaw, ((owner_wallet, account),)),
        burn_checked(account, mint, owner_wallet, amount=amount_wh, decimals=DECIMALS),
        *([freeze_account(account, mint, issuer)] if issuer is not None else []),
        memo(
            owner_wallet,
            _with_ref(
                {
                    "op": "retire",
                    "certificate": str(certificate_id),
                    "wh": amount_wh,
                    "beneficiary": retirement.beneficiary,
                    "purpose": retirement.purpose,
                    "from": md.format_time(retirement.consumption_start),
                    "to": md.format_time(retirement.consumption_end),
                },
                reference,
            ),
        ),
    ]


def freeze_instructions(mint: Pubkey, issuer: Pubkey, accounts: Sequence[Pubkey]) -> list[Instruction]:
    return [freeze_account(account, mint, issuer) for account in accounts]


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
