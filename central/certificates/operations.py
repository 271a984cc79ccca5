"""Certificate operations on the one ``Platform`` (``CertificateLedger``): issue (resumable), read, freeze, mark
revoked, and submission of wallet-signed transactions the platform co-signs (``central.ledger.cosign``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from solders.account import Account
from solders.instruction import Instruction
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from central.certificates import instructions
from central.certificates.accounts import MintInfo, TokenAccountInfo, decode_mint, decode_token_account
from central.certificates.errors import ChainError, InvalidCertificateError
from central.certificates.metadata import KEY_REVOCATION_REASON, KEY_STATUS, STATUS_REVOKED, CertificateMetadata
from central.certificates.token2022 import TOKEN_2022_PROGRAM_ID
from central.ledger import builder, cosign
from central.ledger.errors import LedgerError, TransactionTooLargeError
from central.ledger.packing import pack_instructions
from central.ledger.platform import Platform


@dataclass(frozen=True)
class Holding:
    wallet: Pubkey
    address: Pubkey
    account: TokenAccountInfo


def _holder_account(mint: Pubkey, wallet: Pubkey, account: Account | None) -> TokenAccountInfo | None:
    """``account`` decoded when it is ``wallet``'s Token-2022 account of ``mint``, else None."""
    if account is None or account.owner != TOKEN_2022_PROGRAM_ID:
        return None
    info = decode_token_account(bytes(account.data))
    return info if info.mint == mint and info.owner == wallet else None


def to_thaw(accounts: Mapping[Pubkey, TokenAccountInfo | None]) -> set[Pubkey]:
    """The wallets whose account a platform transfer or retirement thaws first (accounts are frozen at rest): frozen
    now, or missing (a new account starts frozen)."""
    return {wallet for wallet, account in accounts.items() if account is None or account.frozen}


class CertificateLedger:
    """Issues and administers certificate mints. The platform's ``rec_issuer`` is mint (until sealed), freeze and
    metadata authority; its ``fee_payer`` pays fees and rent (and co-signs user transactions)."""

    def __init__(self, platform: Platform, *, uri_base: str) -> None:
        self.platform = platform
        self.ledger = platform.ledger
        self._issuer = platform.issuer()
        self._fee_payer = platform.fee_payer
        self.uri_base = uri_base

    @property
    def issuer(self) -> Pubkey:
        return self._issuer.pubkey

    @property
    def past_issuers(self) -> tuple[Pubkey, ...]:
        """Earlier issuer keys (rotated away), oldest first: their certificates stay authentic."""
        return self.platform.past_issuers

    @property
    def fee_payer(self) -> Pubkey:
        return self._fee_payer.pubkey

    def mint_address_for(self, certificate_id: UUID) -> Pubkey:
        return instructions.mint_address(self.issuer, certificate_id)

    async def _send_signed(self, tx: VersionedTransaction, last_valid: int) -> Signature:
        """Send and confirm. A transaction that already landed (a retry after a crash between sending and
        recording: signatures are deterministic, so the retry is byte-identical) counts as sent."""
        sig = tx.signatures[0]
        try:
            (earlier,) = await self.ledger.get_signature_statuses([sig])
            if earlier is not None and earlier.err is None:
                return sig
            sent = await cosign.send(self.ledger, tx)
            if sent.refused:
                raise ChainError(f"transaction refused: {sent.error}")
            outcome = await cosign.await_outcome(self.ledger, sig, last_valid, levels=cosign.LANDED)
        except LedgerError as exc:
            raise ChainError(f"transaction refused: {exc}") from exc
        if outcome.verdict is cosign.Verdict.EXPIRED:
            raise ChainError("transaction expired before it landed")
        if outcome.verdict is cosign.Verdict.FAILED:
            raise ChainError(f"transaction failed: {outcome.error}")
        return sig

    async def send(self, instructions: Sequence[Instruction]) -> list[Signature]:
        """Send platform-signed instructions, packed into as few size-checked transactions as needed, in order."""
        signatures = []
        try:
            groups = pack_instructions(instructions, payer=self.fee_payer)
        except TransactionTooLargeError:
            raise InvalidCertificateError("one instruction alone exceeds the transaction size limit") from None
        for group in groups:
            request = await cosign.build(self.ledger, self.fee_payer, group)
            tx = builder.sign(request.message, [self._fee_payer, self._issuer])
            signatures.append(await self._send_signed(tx, request.last_valid_block_height))
        return signatures

    async def read_mint(self, mint: Pubkey) -> MintInfo | None:
        account = await self.ledger.get_account(mint)
        if account is None:
            return None
        if account.owner != TOKEN_2022_PROGRAM_ID:
            raise InvalidCertificateError(f"{mint} is not a Token-2022 account")
        return decode_mint(bytes(account.data))

    async def issue(self, meta: CertificateMetadata, owner_wallet: Pubkey) -> Pubkey:
        """Create, describe, mint and seal the certificate's mint. Safe to call again after a partial failure:
        each stage is skipped when the chain already shows it done."""
        plan = instructions.issue_plan(
            meta, uri_base=self.uri_base, issuer=self.issuer, fee_payer=self.fee_payer, owner_wallet=owner_wallet
        )
        info = await self.read_mint(plan.mint)
        if info is None:
            await self.send(plan.create(await self.ledger.get_minimum_balance_for_rent_exemption(plan.final_len)))
            info = await self.read_mint(plan.mint)
        if info is None or info.metadata is None:
            raise ChainError(f"mint {plan.mint} was not created with metadata")
        if info.mint_authority is not None:
            todo = plan.missing_fields(dict(info.metadata.additional))
            if todo:
                await self.send(todo)
            if info.supply != 0:
                raise ChainError(f"mint {plan.mint} has supply before sealing")
            await self.send(plan.finish)
            info = await self.read_mint(plan.mint)
        self._check_issued(plan, info)
        return plan.mint

    def _check_issued(self, plan: instructions.IssuePlan, info: MintInfo | None) -> None:
        mint = plan.mint
        if info is None or info.metadata is None:
            raise ChainError(f"mint {mint} vanished")
        if info.mint_authority is not None or info.freeze_authority != self.issuer:
            raise ChainError(f"mint {mint} authorities are not as issued")
        if info.decimals != plan.decimals or info.metadata_pointer != mint:
            raise ChainError(f"mint {mint} is not a certificate mint")
        if not plan.shows(dict(info.metadata.additional)):
            raise ChainError(f"mint {mint} metadata differs from the certificate")

    async def holdings(self, mint: Pubkey, wallets: Sequence[Pubkey]) -> list[Holding]:
        """The certificate accounts of ``wallets`` that exist (their associated token accounts)."""
        unique = list(dict.fromkeys(wallets))
        addresses = [instructions.holder_account(w, mint) for w in unique]
        accounts = await self.ledger.get_multiple_accounts(addresses)
        out = []
        for wallet, address, account in zip(unique, addresses, accounts, strict=True):
            info = _holder_account(mint, wallet, account)
            if info is not None:
                out.append(Holding(wallet, address, info))
        return out

    async def balance(self, mint: Pubkey, wallet: Pubkey) -> int:
        return sum(h.account.amount for h in await self.holdings(mint, [wallet]))

    async def holder_accounts(self, mint: Pubkey, wallets: Sequence[Pubkey]) -> dict[Pubkey, TokenAccountInfo | None]:
        """Each wallet's certificate account (None: it has none yet), read together with the mint in one call.
        Raises ChainError when the mint says it is revoked: the issuer thaws nothing of a revoked certificate, even
        if this database lost the revocation (a restored backup)."""
        unique = list(dict.fromkeys(wallets))
        found = await self.ledger.get_multiple_accounts([mint, *(instructions.holder_account(w, mint) for w in unique)])
        mint_account = found[0]
        if mint_account is not None and mint_account.owner == TOKEN_2022_PROGRAM_ID:
            metadata = decode_mint(bytes(mint_account.data)).metadata
            if metadata is not None and dict(metadata.additional).get(KEY_STATUS) == STATUS_REVOKED:
                raise ChainError(f"certificate mint {mint} is revoked on chain")
        return {w: _holder_account(mint, w, a) for w, a in zip(unique, found[1:], strict=True)}

    async def freeze_holders(self, mint: Pubkey, wallets: Sequence[Pubkey]) -> int:
        """Freeze every not-yet-frozen account of ``wallets``; returns how many were frozen now."""
        targets = [h.address for h in await self.holdings(mint, wallets) if not h.account.frozen]
        if targets:
            await self.send(instructions.freeze_instructions(mint, self.issuer, targets))
        return len(targets)

    async def mark_revoked(self, mint: Pubkey, reason: str) -> None:
        account = await self.ledger.get_account(mint)
        info = await self.read_mint(mint)
        if info is None or info.metadata is None or account is None:
            raise ChainError(f"no certificate mint at {mint}")
        if dict(info.metadata.additional).get(KEY_STATUS) == STATUS_REVOKED:
            return
        grown = len(account.data) + sum(
            8 + len(k.encode()) + len(v.encode())
            for k, v in ((KEY_STATUS, STATUS_REVOKED), (KEY_REVOCATION_REASON, reason))
        )
        top_up = await self.ledger.get_minimum_balance_for_rent_exemption(grown) - account.lamports
        await self.send(instructions.revocation_fields(mint, self.issuer, self.fee_payer, reason, top_up))

    # --- transaction-request pattern: the platform builds and pays, the owner's wallet signs ---

    async def user_message(self, instructions: Sequence[Instruction]) -> tuple[MessageV0, int]:
        """The message for the owner's wallet to sign (platform = fee payer) and its last valid block height."""
        request = await cosign.build(self.ledger, self.fee_payer, instructions)
        return request.message, request.last_valid_block_height

    async def submit_user_transaction(
        self, signed: VersionedTransaction, expected: MessageV0, last_valid: int
    ) -> Signature:
        """Check the wallet(s) signed exactly the message we built, add the platform's signatures, send."""
        try:
            cosign.check_unchanged(signed, expected)
        except cosign.TransactionRequestError:
            raise InvalidCertificateError("signed transaction differs from the one requested") from None
        try:
            cosigned = cosign.cosign(signed, [self._fee_payer, self._issuer])
        except cosign.TransactionRequestError as exc:
            raise InvalidCertificateError(str(exc)) from None
        return await self._send_signed(cosigned, last_valid)
