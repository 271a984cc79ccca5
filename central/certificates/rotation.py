"""Key rotation of the certificate issuer (``gridtokenx-central keys rotate --role rec-authority``), resumable like
the other rotations (``central.ledger.rotation``): a next issuer key is created, every certificate mint's freeze
authority (SPL ``SetAuthority``) and token-metadata update authority (``UpdateAuthority``) move to it, signed by the
old key and paid by the fee payer, then the next key becomes current and the old one is kept aside.

Certificates issued before the rotation keep their addresses, derived from the issuer key of their day: validation
accepts a mint derived from the current or any retired issuer key (``Platform.past_issuers``) as long as its freeze
and metadata authority is the current key. The mint authority of a certificate was dropped when it was sealed, so
nobody, old key or new, can mint more of it. A certificate still being issued would be resumed under the new key's
address: the rotation refuses to start while any is.
"""

from __future__ import annotations

from collections.abc import Sequence

from solders.instruction import Instruction
from solders.pubkey import Pubkey

from central.certificates.accounts import decode_mint
from central.certificates.token2022 import TOKEN_2022_PROGRAM_ID, freeze_authority_to, metadata_authority_to
from central.ledger.builder import send_and_confirm
from central.ledger.errors import LedgerError
from central.ledger.keys import PlatformKey
from central.ledger.keystore import KeyStore
from central.ledger.packing import pack_instructions
from central.ledger.port import Ledger
from central.ledger.rotation import Rotation
from central.ledger.setup import REC_ISSUER_ROLE

ISSUER_ROLE = REC_ISSUER_ROLE


async def _moves(ledger: Ledger, mints: Sequence[Pubkey], old: Pubkey, new: Pubkey) -> list[Instruction]:
    out: list[Instruction] = []
    for mint, account in zip(mints, await ledger.get_multiple_accounts(list(mints)), strict=True):
        if account is None or account.owner != TOKEN_2022_PROGRAM_ID:
            raise LedgerError(f"certificate mint {mint} is not a Token-2022 account on this ledger")
        info = decode_mint(bytes(account.data))
        if info.freeze_authority == old:
            out.append(freeze_authority_to(mint, old, new))
        elif info.freeze_authority != new:
            raise LedgerError(f"certificate mint {mint}'s freeze authority is {info.freeze_authority}, not the issuer")
        if info.metadata is not None and info.metadata.update_authority == old:
            out.append(metadata_authority_to(mint, old, new))
    return out


async def rotate_issuer(ledger: Ledger, keys: KeyStore, fee_payer: PlatformKey, mints: Sequence[Pubkey], *,
                        issuing: int = 0) -> Rotation:
    """Rotate the issuer key over ``mints`` (every certificate mint the platform issued); ``issuing`` is how many
    certificates are still being issued (the rotation refuses while there are any)."""
    if issuing:
        raise LedgerError(f"{issuing} certificate(s) are still being issued: let the certificate sweeper finish "
                          f"them, then rotate")
    old = keys.load(ISSUER_ROLE)
    new = keys.next_key(ISSUER_ROLE, create=True)
    assert new is not None
    ixs = await _moves(ledger, mints, old.pubkey, new.pubkey)
    for group in pack_instructions(ixs, payer=fee_payer.pubkey):
        await send_and_confirm(ledger, fee_payer, group, [old])
    moved = (f"{len(ixs)} authorities of {len(mints)} certificate mint(s)",) if ixs else ()
    return Rotation(ISSUER_ROLE, old.pubkey, new.pubkey, keys.promote(ISSUER_ROLE), moved)
