"""On-chain certificate operations on the embedded ledger (real Token-2022, ATA and Memo programs in LiteSVM)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction
from spl.token.instructions import mint_to_checked, thaw_account
from spl.token.models import MintToCheckedParams, ThawAccountParams

from central.certificates import chain
from central.certificates.errors import ChainError, InvalidCertificateError
from central.certificates.metadata import KEY_REVOCATION_REASON, KEY_STATUS, STATUS_REVOKED, CertificateMetadata
from central.certificates.token2022 import TOKEN_2022_PROGRAM_ID
from tests.central.certificates.support import T0, Chain, make_meta


async def user_submit(env: Chain, instructions: list, *wallets: Keypair) -> Signature:  # type: ignore[type-arg]
    tx = await env.ops.user_transaction(instructions)
    expected = tx.message
    tx.partial_sign(list(wallets), expected.recent_blockhash)
    return await env.ops.submit_user_transaction(tx, expected)


def logs_of(env: Chain, sig: Signature) -> list[str]:
    result = env.svm.get_transaction(sig)
    assert result is not None
    return list(result.meta().logs()) if hasattr(result, "meta") else list(result.logs())


async def balance(env: Chain, wallet: Pubkey, mint: Pubkey) -> int:
    for h in await env.ops.holdings(mint):
        if h.account.owner == wallet:
            return h.account.amount
    return 0


async def test_issue_creates_sealed_mint_with_metadata(chain_env: Chain) -> None:
    owner = Keypair()
    meta = make_meta(energy_wh=4321)
    mint = await chain_env.ops.issue(meta, owner.pubkey())
    assert mint == chain.mint_address(chain_env.issuer.pubkey(), meta.certificate_id)
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
    extra = mint_to_checked(
        MintToCheckedParams(
            program_id=TOKEN_2022_PROGRAM_ID,
            mint=mint,
            dest=chain.holder_account(owner.pubkey(), mint),
            mint_authority=chain_env.issuer.pubkey(),
            amount=1,
            decimals=3,
        )
    )
    with pytest.raises(ChainError):
        await chain_env.ops._send([extra])
    # Issuing again is a no-op (idempotent), not a second mint of value.
    assert await chain_env.ops.issue(meta, owner.pubkey()) == mint
    assert (await chain_env.ops.read_mint(mint)).supply == 4321  # type: ignore[union-attr]


async def test_issue_resumes_after_a_partial_run(chain_env: Chain) -> None:
    owner = Keypair()
    meta = make_meta()
    rent = await chain_env.ledger.minimum_balance(chain.final_len(meta, chain_env.ops.uri_base))
    plan = chain.issue_plan(
        meta,
        uri_base=chain_env.ops.uri_base,
        issuer=chain_env.issuer.pubkey(),
        fee_payer=chain_env.fee_payer.pubkey(),
        owner_wallet=owner.pubkey(),
        final_rent=rent,
    )
    await chain_env.ops._send(plan.create + plan.fields[:3])  # crash after the first stage and some fields
    mint = await chain_env.ops.issue(meta, owner.pubkey())
    info = await chain_env.ops.read_mint(mint)
    assert info is not None
    assert info.metadata is not None
    assert CertificateMetadata.from_fields(info.metadata.additional) == meta
    assert len(info.metadata.additional) == len(meta.fields())


async def test_every_issue_transaction_fits_the_packet_limit(chain_env: Chain) -> None:
    meta = make_meta(meter_serial="M" * 64, energy_source="S" * 64, issuer="I" * 64)
    plan = chain.issue_plan(
        meta,
        uri_base=chain_env.ops.uri_base,
        issuer=chain_env.issuer.pubkey(),
        fee_payer=chain_env.fee_payer.pubkey(),
        owner_wallet=Keypair().pubkey(),
        final_rent=1,
    )
    payer = chain_env.fee_payer.pubkey()
    for stage in (plan.create, plan.fields, plan.finish):
        for group in chain.pack(stage, payer):
            assert chain.transaction_size(group, payer) <= chain.PACKET_DATA_SIZE
    small = chain.pack(plan.fields, payer, limit=400)  # a tighter limit really splits, keeping order
    assert len(small) > 1
    assert [ix for group in small for ix in group] == plan.fields
    assert all(chain.transaction_size(group, payer) <= 400 for group in small)
    await chain_env.ops.issue(meta, Keypair().pubkey())


async def test_partial_transfer_then_partial_retire(chain_env: Chain) -> None:
    prosumer, consumer = Keypair(), Keypair()
    meta = make_meta(energy_wh=10_000)
    mint = await chain_env.ops.issue(meta, prosumer.pubkey())
    ixs = chain.transfer_instructions(
        mint,
        certificate_id=meta.certificate_id,
        owner_wallet=prosumer.pubkey(),
        to_wallet=consumer.pubkey(),
        fee_payer=chain_env.fee_payer.pubkey(),
        amount_wh=3_000,
    )
    await user_submit(chain_env, ixs, prosumer)
    assert await balance(chain_env, prosumer.pubkey(), mint) == 7_000
    assert await balance(chain_env, consumer.pubkey(), mint) == 3_000
    # Users hold no SOL: the platform paid the fee and the new account's rent.
    assert chain_env.svm.get_balance(prosumer.pubkey()) in (None, 0)

    retirement = chain.Retirement("ACME Ltd", "Scope 2 market-based claim", T0, T0 + timedelta(days=30))
    ixs = chain.retire_instructions(
        mint,
        certificate_id=meta.certificate_id,
        owner_wallet=consumer.pubkey(),
        amount_wh=1_250,
        retirement=retirement,
    )
    sig = await user_submit(chain_env, ixs, consumer)
    assert await balance(chain_env, consumer.pubkey(), mint) == 1_750
    info = await chain_env.ops.read_mint(mint)
    assert info is not None
    assert info.supply == 10_000 - 1_250
    memo_logs = [line for line in logs_of(chain_env, sig) if "ACME Ltd" in line]
    assert memo_logs
    assert '"op":"retire"' in memo_logs[0].replace('\\"', '"')

    # Cannot retire more than held, nor spend someone else's balance.
    too_much = chain.retire_instructions(
        mint,
        certificate_id=meta.certificate_id,
        owner_wallet=consumer.pubkey(),
        amount_wh=1_751,
        retirement=retirement,
    )
    with pytest.raises(ChainError):
        await user_submit(chain_env, too_much, consumer)


async def test_user_transaction_must_be_the_one_built_and_signed_by_the_owner(chain_env: Chain) -> None:
    prosumer, thief = Keypair(), Keypair()
    meta = make_meta(energy_wh=500)
    mint = await chain_env.ops.issue(meta, prosumer.pubkey())
    ixs = chain.transfer_instructions(
        mint,
        certificate_id=meta.certificate_id,
        owner_wallet=prosumer.pubkey(),
        to_wallet=thief.pubkey(),
        fee_payer=chain_env.fee_payer.pubkey(),
        amount_wh=500,
    )
    tx = await chain_env.ops.user_transaction(ixs)
    expected = tx.message
    with pytest.raises(InvalidCertificateError):  # unsigned
        await chain_env.ops.submit_user_transaction(tx, expected)
    other = Message.new_with_blockhash(ixs[:2], chain_env.fee_payer.pubkey(), expected.recent_blockhash)
    forged = Transaction.new_unsigned(other)
    forged.partial_sign([prosumer], expected.recent_blockhash)
    with pytest.raises(InvalidCertificateError):  # not the message we built
        await chain_env.ops.submit_user_transaction(forged, expected)
    assert await balance(chain_env, prosumer.pubkey(), mint) == 500


async def test_revoke_freezes_holders_and_blocks_transfer_and_retire(chain_env: Chain) -> None:
    prosumer, consumer, third = Keypair(), Keypair(), Keypair()
    meta = make_meta(energy_wh=2_000)
    mint = await chain_env.ops.issue(meta, prosumer.pubkey())
    await user_submit(
        chain_env,
        chain.transfer_instructions(
            mint,
            certificate_id=meta.certificate_id,
            owner_wallet=prosumer.pubkey(),
            to_wallet=consumer.pubkey(),
            fee_payer=chain_env.fee_payer.pubkey(),
            amount_wh=500,
        ),
        prosumer,
    )
    assert await chain_env.ops.freeze_holders(mint) == 2
    await chain_env.ops.mark_revoked(mint, "meter tampering found in audit")
    await chain_env.ops.mark_revoked(mint, "meter tampering found in audit")  # idempotent
    assert await chain_env.ops.freeze_holders(mint) == 0
    assert all(h.account.frozen for h in await chain_env.ops.holdings(mint))
    info = await chain_env.ops.read_mint(mint)
    assert info is not None
    assert info.metadata is not None
    extra = dict(info.metadata.additional)
    assert extra[KEY_STATUS] == STATUS_REVOKED
    assert extra[KEY_REVOCATION_REASON] == "meter tampering found in audit"
    # The mint stays rent-exempt after growing.
    data = await chain_env.ledger.account_data(mint)
    assert data is not None
    assert await chain_env.ledger.account_lamports(mint) >= await chain_env.ledger.minimum_balance(len(data))

    for owner, to in ((prosumer, third), (consumer, third)):
        with pytest.raises(ChainError):
            await user_submit(
                chain_env,
                chain.transfer_instructions(
                    mint,
                    certificate_id=meta.certificate_id,
                    owner_wallet=owner.pubkey(),
                    to_wallet=to.pubkey(),
                    fee_payer=chain_env.fee_payer.pubkey(),
                    amount_wh=1,
                ),
                owner,
            )
    with pytest.raises(ChainError):
        await user_submit(
            chain_env,
            chain.retire_instructions(
                mint,
                certificate_id=meta.certificate_id,
                owner_wallet=consumer.pubkey(),
                amount_wh=1,
                retirement=chain.Retirement("x", "y", T0, T0 + timedelta(hours=1)),
            ),
            consumer,
        )
    # Only the issuer could thaw; a holder cannot.
    thaw = thaw_account(
        ThawAccountParams(
            program_id=TOKEN_2022_PROGRAM_ID,
            account=chain.holder_account(consumer.pubkey(), mint),
            mint=mint,
            authority=consumer.pubkey(),
        )
    )
    with pytest.raises(ChainError):
        await user_submit(chain_env, [thaw], consumer)


def test_bad_amounts_and_texts_are_refused() -> None:
    mint, wallet = Keypair().pubkey(), Keypair().pubkey()
    meta = make_meta()
    with pytest.raises(InvalidCertificateError):
        chain.transfer_instructions(
            mint,
            certificate_id=meta.certificate_id,
            owner_wallet=wallet,
            to_wallet=wallet,
            fee_payer=wallet,
            amount_wh=0,
        )
    with pytest.raises(InvalidCertificateError):
        chain.Retirement("", "purpose", T0, T0 + timedelta(hours=1))
    with pytest.raises(InvalidCertificateError):
        chain.Retirement("b", "p", T0, T0)
    with pytest.raises(InvalidCertificateError):
        make_meta(energy_wh=0)
    with pytest.raises(InvalidCertificateError):
        make_meta(period_end=T0)
