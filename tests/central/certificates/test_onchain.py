"""On-chain certificate operations on the embedded ledger (real Token-2022, ATA and Memo programs in LiteSVM)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from solders.hash import Hash
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import MessageV0
from solders.pubkey import Pubkey

from central.certificates import instructions
from central.certificates.errors import ChainError, InvalidCertificateError
from central.certificates.metadata import KEY_REVOCATION_REASON, KEY_STATUS, STATUS_REVOKED, CertificateMetadata
from central.certificates.operations import to_thaw
from central.certificates.token2022 import TOKEN_2022_PROGRAM_ID, thaw_account
from central.ledger import builder
from central.ledger.errors import LedgerError
from central.ledger.packing import pack_instructions
from tests.central.certificates.support import (
    T0,
    CertLedgerEnv,
    balance,
    make_meta,
    self_paid,
    sign_partial,
    user_submit,
)
from tests.memo_logs import memo_texts


def _size(group: list[Instruction], payer: Pubkey) -> int:
    return builder.transaction_size(builder.compile_message(payer, group, Hash.default()))


RETIREMENT = instructions.Retirement("ACME Ltd", "Scope 2 market-based claim", T0, T0 + timedelta(days=30))


def transfer(
    env: CertLedgerEnv,
    mint: Pubkey,
    meta: CertificateMetadata,
    owner: Keypair,
    to: Keypair,
    wh: int,
    *,
    thaw: bool = True,
    self_paid: bool = False,
) -> list[Instruction]:
    return instructions.transfer_instructions(
        mint,
        certificate_id=meta.certificate_id,
        owner_wallet=owner.pubkey(),
        to_wallet=to.pubkey(),
        fee_payer=owner.pubkey() if self_paid else env.fee_payer.pubkey(),
        amount_wh=wh,
        # the platform's transfer: both accounts are frozen at rest (a new one starts frozen), thawed for it
        issuer=env.issuer.pubkey() if thaw else None,
        thaw=[owner.pubkey(), to.pubkey()] if thaw else (),
    )


async def test_issue_creates_sealed_mint_with_metadata(chain_env: CertLedgerEnv) -> None:
    owner = Keypair()
    meta = make_meta(energy_wh=4321)
    mint = await chain_env.ops.issue(meta, owner.pubkey())
    assert mint == instructions.mint_address(chain_env.issuer.pubkey(), meta.certificate_id)
    info = await chain_env.ops.read_mint(mint)
    assert info is not None
    assert info.metadata is not None
    assert info.supply == 4321
    assert info.decimals == 3
    assert info.mint_authority is None
    assert info.freeze_authority == chain_env.issuer.pubkey()
    assert info.metadata_pointer == mint
    assert CertificateMetadata.from_fields(info.metadata.additional) == meta
    assert await balance(chain_env, owner.pubkey(), mint) == 4321
    # The supply is fixed: the former mint authority can no longer mint.
    extra = builder.mint_to_checked(
        mint, instructions.holder_account(owner.pubkey(), mint), chain_env.issuer.pubkey(), amount=1, decimals=3,
        token_program=TOKEN_2022_PROGRAM_ID,
    )  # fmt: skip
    with pytest.raises(ChainError):
        await chain_env.ops.send([extra])
    # Issuing again is a no-op (idempotent), not a second mint of value.
    assert await chain_env.ops.issue(meta, owner.pubkey()) == mint
    again = await chain_env.ops.read_mint(mint)
    assert again is not None
    assert again.supply == 4321


async def test_issue_resumes_after_a_partial_run(chain_env: CertLedgerEnv) -> None:
    owner = Keypair()
    meta = make_meta()
    plan = instructions.issue_plan(
        meta, uri_base=chain_env.ops.uri_base, issuer=chain_env.issuer.pubkey(),
        fee_payer=chain_env.fee_payer.pubkey(), owner_wallet=owner.pubkey(),
    )  # fmt: skip
    rent = await chain_env.ledger.get_minimum_balance_for_rent_exemption(plan.final_len)
    await chain_env.ops.send(plan.create(rent) + plan.fields[:3])  # "crash" after the first stage and some fields
    mint = await chain_env.ops.issue(meta, owner.pubkey())
    info = await chain_env.ops.read_mint(mint)
    assert info is not None
    assert info.metadata is not None
    assert list(info.metadata.additional) == meta.fields()
    assert info.supply == meta.energy_wh


async def test_every_issue_transaction_fits_the_packet_limit(chain_env: CertLedgerEnv) -> None:
    meta = make_meta(meter_serial="M" * 64, energy_source="S" * 64, issuer="I" * 64)
    plan = instructions.issue_plan(
        meta, uri_base=chain_env.ops.uri_base, issuer=chain_env.issuer.pubkey(),
        fee_payer=chain_env.fee_payer.pubkey(), owner_wallet=Keypair().pubkey(),
    )  # fmt: skip
    payer = chain_env.fee_payer.pubkey()
    for stage in (plan.create(1), plan.fields, plan.finish):
        for group in pack_instructions(stage, payer=payer):
            assert _size(group, payer) <= 1232
    small = pack_instructions(plan.fields, payer=payer, max_size=560)  # a tighter limit really splits, keeping order
    assert len(small) > 1
    assert [ix for group in small for ix in group] == plan.fields
    assert all(_size(group, payer) <= 560 for group in small)
    await chain_env.ops.issue(meta, Keypair().pubkey())


async def test_partial_transfer_then_partial_retire(chain_env: CertLedgerEnv) -> None:
    prosumer, consumer = Keypair(), Keypair()
    meta = make_meta(energy_wh=10_000)
    mint = await chain_env.ops.issue(meta, prosumer.pubkey())
    await user_submit(chain_env, transfer(chain_env, mint, meta, prosumer, consumer, 3_000), prosumer)
    assert await balance(chain_env, prosumer.pubkey(), mint) == 7_000
    assert await balance(chain_env, consumer.pubkey(), mint) == 3_000
    # Users hold no SOL: the platform paid the fee and the new account's rent.
    assert await chain_env.ledger.get_balance(prosumer.pubkey()) == 0

    ixs = instructions.retire_instructions(
        mint, certificate_id=meta.certificate_id, owner_wallet=consumer.pubkey(), amount_wh=1_250,
        retirement=RETIREMENT, issuer=chain_env.issuer.pubkey(), thaw=[consumer.pubkey()],
    )  # fmt: skip
    sig = await user_submit(chain_env, ixs, consumer)
    assert await balance(chain_env, consumer.pubkey(), mint) == 1_750
    info = await chain_env.ops.read_mint(mint)
    assert info is not None
    assert info.supply == 10_000 - 1_250  # retirement reduces supply
    record = await chain_env.ledger.get_transaction(sig)
    assert record is not None
    memo_logs = [text for text in memo_texts(record.logs) if "ACME Ltd" in text]
    assert memo_logs
    assert '"op":"retire"' in memo_logs[0]
    assert '"from":"2026-06-01T10:00:00Z"' in memo_logs[0]

    too_much = instructions.retire_instructions(
        mint, certificate_id=meta.certificate_id, owner_wallet=consumer.pubkey(), amount_wh=1_751,
        retirement=RETIREMENT, issuer=chain_env.issuer.pubkey(), thaw=[consumer.pubkey()],
    )  # fmt: skip
    with pytest.raises(ChainError):
        await user_submit(chain_env, too_much, consumer)


async def test_new_accounts_start_frozen_so_only_platform_thawed_accounts_can_hold(chain_env: CertLedgerEnv) -> None:
    prosumer, outsider = Keypair(), Keypair()
    meta = make_meta(energy_wh=100)
    mint = await chain_env.ops.issue(meta, prosumer.pubkey())
    # Without the platform's thaw the recipient's fresh account is frozen and cannot receive.
    with pytest.raises(ChainError):
        await user_submit(chain_env, transfer(chain_env, mint, meta, prosumer, outsider, 10, thaw=False), prosumer)
    with pytest.raises(LedgerError):  # nor by a transaction the holder pays for and submits themself
        await self_paid(
            chain_env, prosumer, transfer(chain_env, mint, meta, prosumer, outsider, 10, thaw=False, self_paid=True)
        )
    assert await balance(chain_env, prosumer.pubkey(), mint) == 100


async def test_accounts_are_frozen_at_rest_so_a_certificate_moves_only_through_the_platform(
    chain_env: CertLedgerEnv,
) -> None:
    """A recipient's account used to stay thawed after the platform's transfer: from then on its holder could move or
    burn the certificate with a transaction of their own, and the platform's holdings and retirement register no
    longer matched the chain. Now every account is frozen again in the same transaction that thawed it."""
    prosumer, consumer = Keypair(), Keypair()
    meta = make_meta(energy_wh=1_000)
    mint = await chain_env.ops.issue(meta, prosumer.pubkey())
    wallets = [prosumer.pubkey(), consumer.pubkey()]
    assert to_thaw(await chain_env.ops.holder_accounts(mint, wallets)) == set(wallets)  # issued frozen; a new one too
    await user_submit(chain_env, transfer(chain_env, mint, meta, prosumer, consumer, 400), prosumer)
    assert all(h.account.frozen for h in await chain_env.ops.holdings(mint, wallets))
    for owner, other in ((consumer, prosumer), (prosumer, consumer)):
        with pytest.raises(LedgerError):  # the holder's own transfer, paid and sent by themself
            await self_paid(
                chain_env, owner, transfer(chain_env, mint, meta, owner, other, 1, thaw=False, self_paid=True)
            )
        burn = instructions.retire_instructions(
            mint, certificate_id=meta.certificate_id, owner_wallet=owner.pubkey(), amount_wh=1, retirement=RETIREMENT
        )
        with pytest.raises(LedgerError):  # nor a retirement outside the register
            await self_paid(chain_env, owner, burn)
    assert [await balance(chain_env, w, mint) for w in wallets] == [600, 400]
    # through the platform it still works, and leaves the accounts frozen
    await user_submit(chain_env, transfer(chain_env, mint, meta, consumer, prosumer, 100), consumer)
    assert [await balance(chain_env, w, mint) for w in wallets] == [700, 300]
    assert all(h.account.frozen for h in await chain_env.ops.holdings(mint, wallets))


async def test_user_transaction_must_be_the_one_built_and_signed_by_the_owner(chain_env: CertLedgerEnv) -> None:
    prosumer, thief = Keypair(), Keypair()
    meta = make_meta(energy_wh=500)
    mint = await chain_env.ops.issue(meta, prosumer.pubkey())
    ixs = transfer(chain_env, mint, meta, prosumer, thief, 500)
    message, last_valid = await chain_env.ops.user_message(ixs)
    with pytest.raises(InvalidCertificateError):  # unsigned
        await chain_env.ops.submit_user_transaction(sign_partial(message, []), message, last_valid)
    with pytest.raises(InvalidCertificateError):  # signed by someone else
        await chain_env.ops.submit_user_transaction(sign_partial(message, [thief]), message, last_valid)
    other = MessageV0.try_compile(chain_env.fee_payer.pubkey(), ixs[:1] + ixs[2:3], [], message.recent_blockhash)
    with pytest.raises(InvalidCertificateError):  # not the message we built
        await chain_env.ops.submit_user_transaction(sign_partial(other, [prosumer]), message, last_valid)
    assert await balance(chain_env, prosumer.pubkey(), mint) == 500


async def test_revoke_freezes_holders_and_blocks_transfer_and_retire(chain_env: CertLedgerEnv) -> None:
    prosumer, consumer, third = Keypair(), Keypair(), Keypair()
    meta = make_meta(energy_wh=2_000)
    mint = await chain_env.ops.issue(meta, prosumer.pubkey())
    await user_submit(chain_env, transfer(chain_env, mint, meta, prosumer, consumer, 500), prosumer)
    wallets = [prosumer.pubkey(), consumer.pubkey()]
    assert await chain_env.ops.freeze_holders(mint, wallets) == 0  # frozen at rest already
    await chain_env.ops.mark_revoked(mint, "meter tampering found in audit")
    await chain_env.ops.mark_revoked(mint, "meter tampering found in audit")  # idempotent
    assert await chain_env.ops.freeze_holders(mint, wallets) == 0
    assert all(h.account.frozen for h in await chain_env.ops.holdings(mint, wallets))
    info = await chain_env.ops.read_mint(mint)
    assert info is not None
    assert info.metadata is not None
    extra = dict(info.metadata.additional)
    assert extra[KEY_STATUS] == STATUS_REVOKED
    assert extra[KEY_REVOCATION_REASON] == "meter tampering found in audit"
    account = await chain_env.ledger.get_account(mint)  # still rent-exempt after growing
    assert account is not None
    assert account.lamports >= await chain_env.ledger.get_minimum_balance_for_rent_exemption(len(account.data))

    for owner in (prosumer, consumer):
        with pytest.raises(ChainError):  # the platform thaws nothing of a revoked certificate
            await chain_env.ops.holder_accounts(mint, [owner.pubkey(), third.pubkey()])
        with pytest.raises(ChainError):  # and without a thaw the chain refuses
            await user_submit(chain_env, transfer(chain_env, mint, meta, owner, third, 1, thaw=False), owner)
        with pytest.raises(LedgerError):
            await self_paid(
                chain_env, owner, transfer(chain_env, mint, meta, owner, third, 1, thaw=False, self_paid=True)
            )
    retire = instructions.retire_instructions(
        mint, certificate_id=meta.certificate_id, owner_wallet=consumer.pubkey(), amount_wh=1, retirement=RETIREMENT
    )
    with pytest.raises(ChainError):
        await user_submit(chain_env, retire, consumer)
    # Only the issuer could thaw; a holder cannot.
    thaw = thaw_account(instructions.holder_account(consumer.pubkey(), mint), mint, consumer.pubkey())
    with pytest.raises(LedgerError):
        await self_paid(chain_env, consumer, [thaw])


def test_bad_amounts_and_texts_are_refused() -> None:
    mint, wallet = Keypair().pubkey(), Keypair().pubkey()
    meta = make_meta()
    with pytest.raises(InvalidCertificateError):
        instructions.transfer_instructions(
            mint, certificate_id=meta.certificate_id, owner_wallet=wallet, to_wallet=wallet, fee_payer=wallet,
            amount_wh=0,
        )  # fmt: skip
    with pytest.raises(InvalidCertificateError):
        instructions.Retirement("", "purpose", T0, T0 + timedelta(hours=1))
    with pytest.raises(InvalidCertificateError):
        instructions.Retirement("b", "p", T0, T0)
    with pytest.raises(InvalidCertificateError):
        make_meta(energy_wh=0)
    with pytest.raises(InvalidCertificateError):
        make_meta(period_end=T0)
