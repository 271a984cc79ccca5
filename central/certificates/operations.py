"""Certificate operations against a ledger: issue (resumable), read, freeze, mark revoked, user-signed submissions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction

from central.certificates import chain
from central.certificates.accounts import MintInfo, TokenAccountInfo, decode_mint, decode_token_account
from central.certificates.errors import ChainError, InvalidCertificateError
from central.certificates.metadata import KEY_REVOCATION_REASON, KEY_STATUS, STATUS_REVOKED, CertificateMetadata
from central.certificates.ports import CertificateLedger


@dataclass(frozen=True)
class Holding:
    address: Pubkey
    account: TokenAccountInfo


class CertificateChain:
    """Issues and administers certificate mints. ``issuer`` is mint, freeze and metadata authority;
    ``fee_payer`` pays fees and rent (and co-signs user transactions)."""

    def __init__(self, ledger: CertificateLedger, *, issuer: Keypair, fee_payer: Keypair, uri_base: str) -> None:
        self.ledger = ledger
        self.issuer = issuer
        self.fee_payer = fee_payer
        self.uri_base = uri_base

    def mint_address_for(self, certificate_id: UUID) -> Pubkey:
        return chain.mint_address(self.issuer.pubkey(), certificate_id)

    async def _send(self, instructions: Sequence[Instruction]) -> list[Signature]:
        signatures = []
        payer = self.fee_payer.pubkey()
        for group in chain.pack(instructions, payer):
            message = Message(group, payer)
            keys = {self.fee_payer.pubkey(): self.fee_payer, self.issuer.pubkey(): self.issuer}
            signers = [keys[k] for k in message.account_keys[: message.header.num_required_signatures]]
            tx = Transaction(signers, message, await self.ledger.latest_blockhash())
            signatures.append(await self.ledger.send_transaction(tx))
        return signatures

    async def read_mint(self, mint: Pubkey) -> MintInfo | None:
        data = await self.ledger.account_data(mint)
        return None if data is None else decode_mint(data)

    async def issue(self, meta: CertificateMetadata, owner_wallet: Pubkey) -> Pubkey:
        """Create, describe, mint and seal the certificate's mint. Safe to call again after a partial failure:
        each stage is skipped when the chain already shows it done."""
        rent = await self.ledger.minimum_balance(chain.final_len(meta, self.uri_base))
        plan = chain.issue_plan(
            meta,
            uri_base=self.uri_base,
            issuer=self.issuer.pubkey(),
            fee_payer=self.fee_payer.pubkey(),
            owner_wallet=owner_wallet,
            final_rent=rent,
        )
        info = await self.read_mint(plan.mint)
        if info is None:
            await self._send(plan.create)
            info = await self.read_mint(plan.mint)
        if info is None or info.metadata is None:
            raise ChainError(f"mint {plan.mint} was not created with metadata")
        if info.mint_authority is not None:
            present = dict(info.metadata.additional)
            wanted = meta.fields()
            todo = [ix for ix, (k, v) in zip(plan.fields, wanted, strict=True) if present.get(k) != v]
            if todo:
                await self._send(todo)
            if info.supply != 0:
                raise ChainError(f"mint {plan.mint} has supply before sealing")
            await self._send(plan.finish)
            info = await self.read_mint(plan.mint)
        self._check_issued(plan.mint, info, meta)
        return plan.mint

    def _check_issued(self, mint: Pubkey, info: MintInfo | None, meta: CertificateMetadata) -> None:
        if info is None or info.metadata is None:
            raise ChainError(f"mint {mint} vanished")
        if info.mint_authority is not None or info.freeze_authority != self.issuer.pubkey():
            raise ChainError(f"mint {mint} authorities are not as issued")
        if info.decimals != chain.DECIMALS or info.metadata_pointer != mint:
            raise ChainError(f"mint {mint} is not a certificate mint")
        try:
            on_chain = CertificateMetadata.from_fields(info.metadata.additional)
        except InvalidCertificateError as exc:
            raise ChainError(f"mint {mint} metadata unreadable: {exc}") from exc
        if on_chain != meta:
            raise ChainError(f"mint {mint} metadata differs from the certificate")

    async def holdings(self, mint: Pubkey) -> list[Holding]:
        return [
            Holding(address, decode_token_account(data)) for address, data in await self.ledger.token_accounts(mint)
        ]

    async def freeze_holders(self, mint: Pubkey) -> int:
        """Freeze every not-yet-frozen token account of the mint; returns how many were frozen now."""
        targets = [h.address for h in await self.holdings(mint) if not h.account.frozen]
        if targets:
            await self._send(chain.freeze_instructions(mint, self.issuer.pubkey(), targets))
        return len(targets)

    async def mark_revoked(self, mint: Pubkey, reason: str) -> None:
        info = await self.read_mint(mint)
        data = await self.ledger.account_data(mint)
        if info is None or info.metadata is None or data is None:
            raise ChainError(f"no certificate mint at {mint}")
        if dict(info.metadata.additional).get(KEY_STATUS) == STATUS_REVOKED:
            return
        grown = len(data) + sum(
            8 + len(k.encode()) + len(v.encode())
            for k, v in ((KEY_STATUS, STATUS_REVOKED), (KEY_REVOCATION_REASON, reason))
        )
        top_up = await self.ledger.minimum_balance(grown) - await self.ledger.account_lamports(mint)
        await self._send(chain.revocation_fields(mint, self.issuer.pubkey(), self.fee_payer.pubkey(), reason, top_up))

    # --- transaction-request pattern: the platform builds and pays, the owner's wallet signs ---

    async def user_transaction(self, instructions: Sequence[Instruction]) -> Transaction:
        """An unsigned transaction with the platform as fee payer, for the owner's wallet to sign."""
        message = Message.new_with_blockhash(
            list(instructions), self.fee_payer.pubkey(), await self.ledger.latest_blockhash()
        )
        return Transaction.new_unsigned(message)

    async def submit_user_transaction(self, signed: Transaction, expected: Message) -> Signature:
        """Check the wallet signed exactly the message we built, add the fee payer's signature, send."""
        if bytes(signed.message) != bytes(expected):
            raise InvalidCertificateError("signed transaction differs from the one requested")
        message = signed.message
        keys = message.account_keys[: message.header.num_required_signatures]
        for key, sig in zip(keys, signed.signatures, strict=True):
            if key == self.fee_payer.pubkey():
                continue
            if not sig.verify(key, bytes(message)):
                raise InvalidCertificateError(f"missing or bad signature of {key}")
        cosigned = Transaction.populate(message, list(signed.signatures))
        cosigned.partial_sign([self.fee_payer], Hash.from_bytes(bytes(message.recent_blockhash)))
        return await self.ledger.send_transaction(cosigned)
