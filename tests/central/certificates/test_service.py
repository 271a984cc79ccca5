"""The certificates service on the embedded ledger, with the in-memory stores (the PostgreSQL store has its own
tests): issuance backed by generation, transfer/retire by wallet-signed requests, revoke, expiry, validation."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from uuid import UUID

import pytest
from solders.message import MessageV0
from solders.pubkey import Pubkey
from solders.transaction import VersionedTransaction

from central.accounting.merkle import merkle_root
from central.certificates import instructions
from central.certificates.errors import (
    AlreadyCertifiedError,
    CertificateNotFoundError,
    CertificateStateError,
    InsufficientGenerationError,
    InvalidCertificateError,
    NotOwnerError,
    TooManyWaitingError,
)
from central.certificates.models import CertificateRecord, MeterInfo, Status
from central.certificates.service import MAX_WAITING_REQUESTS
from central.ledger.errors import LedgerError
from tests.central.certificates.support import (
    T0,
    WINDOW,
    ServiceEnv,
    self_paid,
    sign_and_submit,
    sign_partial,
    window_exports,
)

RETIREMENT = instructions.Retirement("Consumer Household 7", "renewable electricity claim", T0, T0 + timedelta(days=30))


async def issue_hour(
    env: ServiceEnv, exports: list[int] | None = None, expected_wh: int | None = None
) -> CertificateRecord:
    p = env.people
    env.generation.windows += window_exports(p.meter_id, T0, exports or [100, 250, 0, 650])
    return await env.service.issue(
        actor_id=p.authority, meter_id=p.meter_id, period_start=T0, period_end=T0 + 4 * WINDOW, expected_wh=expected_wh
    )


async def test_issue_within_available_generation(svc_env: ServiceEnv) -> None:
    record = await issue_hour(svc_env, expected_wh=1000)
    p = svc_env.people
    assert record.status is Status.ACTIVE
    assert record.energy_wh == 1000
    assert record.expires_at == (T0 + 4 * WINDOW).replace(year=2027)
    windows = [w for w in svc_env.generation.windows if w.export_wh > 0]
    assert record.readings_root == merkle_root([w.merkle_root for w in windows])
    assert await svc_env.store.covered_wh(record.id) == 1000
    mint = Pubkey.from_string(record.mint)
    holdings = await svc_env.chain.ops.holdings(mint, [p.prosumer_wallet.pubkey(), p.consumer_wallet.pubkey()])
    assert [(h.account.owner, h.account.amount) for h in holdings] == [(p.prosumer_wallet.pubkey(), 1000)]
    report = await svc_env.validator.by_id(record.id)
    assert report.valid
    assert report.db_agrees, report.mismatches
    assert report.certified_wh == 1000
    assert report.retired_wh == 0
    # One settlement window is the finest granularity.
    svc_env.generation.windows += window_exports(p.meter_id, T0 + 4 * WINDOW, [77])
    small = await svc_env.service.issue(
        actor_id=p.authority, meter_id=p.meter_id, period_start=T0 + 4 * WINDOW, period_end=T0 + 5 * WINDOW
    )
    assert small.energy_wh == 77


async def test_issue_beyond_generation_is_refused(svc_env: ServiceEnv) -> None:
    p = svc_env.people
    with pytest.raises(InsufficientGenerationError):
        await issue_hour(svc_env, expected_wh=1001)
    with pytest.raises(InvalidCertificateError):  # whole windows only
        await svc_env.service.issue(
            actor_id=p.authority, meter_id=p.meter_id, period_start=T0, period_end=T0 + 4 * WINDOW, expected_wh=999
        )
    with pytest.raises(InsufficientGenerationError):  # a window of the period is not final yet
        await svc_env.service.issue(
            actor_id=p.authority, meter_id=p.meter_id, period_start=T0, period_end=T0 + 5 * WINDOW
        )
    with pytest.raises(InsufficientGenerationError):  # final but no export
        await svc_env.service.issue(
            actor_id=p.authority, meter_id=p.meter_id, period_start=T0 + 2 * WINDOW, period_end=T0 + 3 * WINDOW
        )
    with pytest.raises(InvalidCertificateError):  # not on a window boundary
        await svc_env.service.issue(
            actor_id=p.authority, meter_id=p.meter_id, period_start=T0 + timedelta(minutes=1), period_end=T0 + WINDOW
        )
    svc_env.clock.now = T0 + timedelta(days=400)
    with pytest.raises(CertificateStateError):  # production older than the validity period
        await svc_env.service.issue(actor_id=p.authority, meter_id=p.meter_id, period_start=T0, period_end=T0 + WINDOW)
    svc_env.clock.now = T0 + timedelta(days=2)
    svc_env.directory.meters[p.meter_id] = MeterInfo(p.meter_id, "SN-SOLAR-1", None, p.prosumer)
    with pytest.raises(CertificateStateError):  # not a renewable meter
        await svc_env.service.issue(actor_id=p.authority, meter_id=p.meter_id, period_start=T0, period_end=T0 + WINDOW)
    assert svc_env.store.records == {}


async def test_double_issue_refused_including_concurrent(svc_env: ServiceEnv) -> None:
    p = svc_env.people
    svc_env.generation.windows += window_exports(p.meter_id, T0, [100, 200, 300, 400])

    async def attempt(start_index: int) -> CertificateRecord:
        return await svc_env.service.issue(
            actor_id=p.authority,
            meter_id=p.meter_id,
            period_start=T0 + start_index * WINDOW,
            period_end=T0 + (start_index + 2) * WINDOW,
        )

    results = await asyncio.gather(attempt(0), attempt(0), attempt(1), return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert len(ok) == 1
    assert all(isinstance(r, AlreadyCertifiedError) for r in results if isinstance(r, BaseException))
    with pytest.raises(AlreadyCertifiedError):
        await attempt(1)
    assert sum(r.energy_wh for r in svc_env.store.records.values()) == 300  # windows 0 and 1, once


async def test_partial_transfer_then_partial_retire(svc_env: ServiceEnv) -> None:
    p = svc_env.people
    record = await issue_hour(svc_env)
    cid = record.id
    prepared = await svc_env.service.request_transfer(cid, user_id=p.prosumer, to_user_id=p.consumer, amount_wh=400)
    sig = await sign_and_submit(svc_env.service, prepared, p.prosumer_wallet, p.prosumer)
    assert await sign_and_submit(svc_env.service, prepared, p.prosumer_wallet, p.prosumer) == sig  # idempotent
    prepared = await svc_env.service.request_retirement(cid, user_id=p.consumer, amount_wh=150, retirement=RETIREMENT)
    await sign_and_submit(svc_env.service, prepared, p.consumer_wallet, p.consumer)

    info = await svc_env.chain.ops.read_mint(Pubkey.from_string(record.mint))
    assert info is not None
    assert info.supply == 850  # retirement reduces supply
    holdings = {h.wallet: h.amount_wh for h in await svc_env.store.holdings(cid)}
    assert holdings == {str(p.prosumer_wallet.pubkey()): 600, str(p.consumer_wallet.pubkey()): 250}
    assert (await svc_env.store.get(cid)).retired_wh == 150
    assert [r.id for r in await svc_env.service.list_certificates(user_id=p.consumer, is_admin=False)] == [cid]
    report = await svc_env.validator.by_id(cid)
    assert report.valid
    assert report.db_agrees, report.mismatches
    assert report.retired_wh == 150
    assert report.holder_accounts == 2
    # More than held, or someone else's certificate: refused before anything is built.
    with pytest.raises(NotOwnerError):
        await svc_env.service.request_retirement(cid, user_id=p.consumer, amount_wh=251, retirement=RETIREMENT)
    with pytest.raises(CertificateNotFoundError):
        await svc_env.service.get(cid, user_id=p.authority, is_admin=False)


async def test_a_user_may_have_ten_requests_waiting_for_the_wallet(svc_env: ServiceEnv) -> None:
    """Each transfer or retirement asked for is a stored row and a built transaction until it expires; nothing
    capped them, so a script could fill the table. Now the eleventh waiting one is refused with a clear reason; a
    signed one or an expired one makes room."""
    p = svc_env.people
    cid = (await issue_hour(svc_env)).id
    waiting = [
        await svc_env.service.request_transfer(cid, user_id=p.prosumer, to_user_id=p.consumer, amount_wh=1)
        for _ in range(MAX_WAITING_REQUESTS)
    ]
    with pytest.raises(TooManyWaitingError, match="waiting for your wallet's signature"):
        await svc_env.service.request_retirement(cid, user_id=p.prosumer, amount_wh=1, retirement=RETIREMENT)
    await sign_and_submit(svc_env.service, waiting[0], p.prosumer_wallet, p.prosumer)  # signed: room for one
    await svc_env.service.request_retirement(cid, user_id=p.prosumer, amount_wh=1, retirement=RETIREMENT)
    with pytest.raises(TooManyWaitingError):
        await svc_env.service.request_transfer(cid, user_id=p.prosumer, to_user_id=p.consumer, amount_wh=1)
    svc_env.clock.now += timedelta(minutes=5)  # every waiting one expired
    await svc_env.service.request_transfer(cid, user_id=p.prosumer, to_user_id=p.consumer, amount_wh=1)
    assert len(waiting) == MAX_WAITING_REQUESTS


async def test_submission_must_be_signed_by_the_holder(svc_env: ServiceEnv) -> None:
    p = svc_env.people
    record = await issue_hour(svc_env)
    prepared = await svc_env.service.request_transfer(
        record.id, user_id=p.prosumer, to_user_id=p.consumer, amount_wh=10
    )
    tx = prepared.transaction
    with pytest.raises(InvalidCertificateError):  # unsigned
        await svc_env.service.submit(prepared.request.id, bytes(tx), user_id=p.prosumer)
    with pytest.raises(InvalidCertificateError):  # signed by the wrong wallet
        await sign_and_submit(svc_env.service, prepared, p.consumer_wallet, p.prosumer)
    with pytest.raises(CertificateNotFoundError):  # someone else's request
        await svc_env.service.submit(prepared.request.id, bytes(tx), user_id=p.consumer)
    with pytest.raises(InvalidCertificateError):
        await svc_env.service.submit(prepared.request.id, b"garbage", user_id=p.prosumer)
    # a different transaction, even properly signed, is refused
    retire = instructions.retire_instructions(
        Pubkey.from_string(record.mint), certificate_id=record.id, owner_wallet=p.prosumer_wallet.pubkey(),
        amount_wh=10, retirement=RETIREMENT,
    )  # fmt: skip
    message = MessageV0.try_compile(svc_env.chain.fee_payer.pubkey(), retire, [], prepared.message.recent_blockhash)
    other = sign_partial(message, [p.prosumer_wallet])
    with pytest.raises(InvalidCertificateError):
        await svc_env.service.submit(prepared.request.id, bytes(other), user_id=p.prosumer)
    svc_env.clock.now += timedelta(minutes=5)
    with pytest.raises(CertificateStateError):  # request expired
        await sign_and_submit(svc_env.service, prepared, p.prosumer_wallet, p.prosumer)


async def test_revoke_blocks_transfers(svc_env: ServiceEnv) -> None:
    p = svc_env.people
    record = await issue_hour(svc_env)
    cid = record.id
    pending = await svc_env.service.request_transfer(cid, user_id=p.prosumer, to_user_id=p.consumer, amount_wh=5)
    revoked = await svc_env.service.revoke(cid, actor_id=p.authority, reason="meter seal broken")
    assert revoked.status is Status.REVOKED
    with pytest.raises(CertificateStateError):  # the service refuses new requests...
        await svc_env.service.request_transfer(cid, user_id=p.prosumer, to_user_id=p.consumer, amount_wh=5)
    with pytest.raises(CertificateStateError):  # ...and submissions of earlier ones
        await sign_and_submit(svc_env.service, pending, p.prosumer_wallet, p.prosumer)
    # ...and the chain refuses too, even a transaction the holder pays for themself.
    ixs = instructions.transfer_instructions(
        Pubkey.from_string(record.mint), certificate_id=cid, owner_wallet=p.prosumer_wallet.pubkey(),
        to_wallet=p.consumer_wallet.pubkey(), fee_payer=p.prosumer_wallet.pubkey(), amount_wh=5,
    )  # fmt: skip
    with pytest.raises(LedgerError):
        await self_paid(svc_env.chain, p.prosumer_wallet, ixs)
    report = await svc_env.validator.by_id(cid)
    assert report.status == "revoked"
    assert not report.valid
    assert report.db_agrees, report.mismatches
    assert report.revocation_reason == "meter seal broken"
    assert report.frozen_accounts == 1


async def test_expiry_enforced(svc_env: ServiceEnv) -> None:
    p = svc_env.people
    record = await issue_hour(svc_env)
    cid = record.id
    svc_env.clock.now = record.expires_at - timedelta(seconds=1)
    assert await svc_env.service.expire_due() == 0
    await svc_env.service.request_retirement(cid, user_id=p.prosumer, amount_wh=1, retirement=RETIREMENT)
    svc_env.clock.now = record.expires_at
    with pytest.raises(CertificateStateError):
        await svc_env.service.request_retirement(cid, user_id=p.prosumer, amount_wh=1, retirement=RETIREMENT)
    with pytest.raises(CertificateStateError):
        await svc_env.service.request_transfer(cid, user_id=p.prosumer, to_user_id=p.consumer, amount_wh=1)
    assert (await svc_env.validator.by_id(cid)).status == "expired"
    # The sweep freezes holders, so the chain refuses even self-paid retirements.
    assert await svc_env.service.expire_due() == 1
    assert (await svc_env.store.get(cid)).status is Status.EXPIRED
    ixs = instructions.retire_instructions(
        Pubkey.from_string(record.mint), certificate_id=cid, owner_wallet=p.prosumer_wallet.pubkey(),
        amount_wh=1, retirement=RETIREMENT,
    )  # fmt: skip
    with pytest.raises(LedgerError):
        await self_paid(svc_env.chain, p.prosumer_wallet, ixs)


async def test_validate_detects_database_chain_mismatch(svc_env: ServiceEnv) -> None:
    p = svc_env.people
    record = await issue_hour(svc_env)
    cid = record.id
    assert (await svc_env.validator.by_mint(record.mint)).db_agrees
    # 1. The database is tampered with: more energy than the chain certifies.
    svc_env.store.records[cid] = replace(svc_env.store.records[cid], energy_wh=5000)
    report = await svc_env.validator.by_id(cid)
    assert report.valid  # the chain is authoritative and fine...
    assert not report.db_agrees  # ...but the database disagrees
    assert any("energy_wh" in m for m in report.mismatches)
    svc_env.store.records[cid] = record
    # 2. The holder cannot retire on chain behind the service's back (paying their own fee): the account is frozen
    #    at rest. The database claiming a retirement the chain does not show is reported.
    ixs = instructions.retire_instructions(
        Pubkey.from_string(record.mint), certificate_id=cid, owner_wallet=p.prosumer_wallet.pubkey(),
        amount_wh=7, retirement=RETIREMENT,
    )  # fmt: skip
    with pytest.raises(LedgerError):
        await self_paid(svc_env.chain, p.prosumer_wallet, ixs)
    assert (await svc_env.validator.by_id(cid)).db_agrees
    svc_env.store.records[cid] = replace(record, retired_wh=7)
    report = await svc_env.validator.by_id(cid)
    assert report.retired_wh == 0
    assert not report.db_agrees
    assert any("retired" in m for m in report.mismatches)
    svc_env.store.records[cid] = record
    # 3. A mint that is not ours is not authentic; an unknown id is not found.
    foreign = await svc_env.validator.by_mint(str(svc_env.chain.fee_payer.pubkey()))
    assert not foreign.valid
    unknown = await svc_env.validator.by_id(UUID(int=1))
    assert unknown.status == "not_found"
    assert not unknown.exists_on_chain


async def test_submission_retried_after_a_lost_record_completes_once(svc_env: ServiceEnv) -> None:
    """The chain took the transaction but the service died before recording it: the retry finds it landed."""
    p = svc_env.people
    record = await issue_hour(svc_env)
    prepared = await svc_env.service.request_transfer(
        record.id, user_id=p.prosumer, to_user_id=p.consumer, amount_wh=40
    )
    signed = sign_partial(prepared.message, [p.prosumer_wallet])
    request = await svc_env.store.get_request(prepared.request.id)
    tx = VersionedTransaction.from_bytes(bytes(signed))
    sig = await svc_env.chain.ops.submit_user_transaction(
        tx, MessageV0.from_bytes(request.message), request.last_valid_block_height
    )  # sent, but never recorded
    assert await svc_env.service.submit(prepared.request.id, bytes(signed), user_id=p.prosumer) == str(sig)
    holdings = {h.wallet: h.amount_wh for h in await svc_env.store.holdings(record.id)}
    assert holdings[str(p.consumer_wallet.pubkey())] == 40
    assert await svc_env.chain.ops.balance(Pubkey.from_string(record.mint), p.consumer_wallet.pubkey()) == 40


async def test_two_equal_requests_are_two_transactions(svc_env: ServiceEnv) -> None:
    """Same holder, amount and memo, prepared within one slot: still two burns, counted twice on both sides."""
    p = svc_env.people
    record = await issue_hour(svc_env)
    first = await svc_env.service.request_retirement(record.id, user_id=p.prosumer, amount_wh=10, retirement=RETIREMENT)
    second = await svc_env.service.request_retirement(
        record.id, user_id=p.prosumer, amount_wh=10, retirement=RETIREMENT
    )
    s1 = await sign_and_submit(svc_env.service, first, p.prosumer_wallet, p.prosumer)
    s2 = await sign_and_submit(svc_env.service, second, p.prosumer_wallet, p.prosumer)
    assert s1 != s2
    report = await svc_env.validator.by_id(record.id)
    assert report.retired_wh == 20
    assert report.db_agrees, report.mismatches
    register = await svc_env.service.retirements(record.id)
    assert sorted((r.amount_wh, r.signature) for r in register) == sorted([(10, s1), (10, s2)])


async def test_transfer_all_then_retire_all(svc_env: ServiceEnv) -> None:
    p = svc_env.people
    record = await issue_hour(svc_env)
    prepared = await svc_env.service.request_transfer(
        record.id, user_id=p.prosumer, to_user_id=p.consumer, amount_wh=1000
    )
    await sign_and_submit(svc_env.service, prepared, p.prosumer_wallet, p.prosumer)
    with pytest.raises(NotOwnerError):  # nothing left
        await svc_env.service.request_retirement(record.id, user_id=p.prosumer, amount_wh=1, retirement=RETIREMENT)
    prepared = await svc_env.service.request_retirement(
        record.id, user_id=p.consumer, amount_wh=1000, retirement=RETIREMENT
    )
    await sign_and_submit(svc_env.service, prepared, p.consumer_wallet, p.consumer)
    report = await svc_env.validator.by_id(record.id)
    assert report.supply_wh == 0
    assert report.retired_wh == report.certified_wh == 1000
    assert report.valid  # a fully retired certificate is still an authentic record of the claim
    assert report.db_agrees, report.mismatches


async def test_a_gap_window_backs_a_period_it_lies_within(svc_env: ServiceEnv) -> None:
    """Accounting records an outage as one gap window spanning several settlement windows (issue 10, D4): a period
    that contains it whole is covered; a period that cuts it is not (the gap's energy is not split)."""
    p = svc_env.people
    first = window_exports(p.meter_id, T0, [100])[0]
    gap = replace(first, start=T0 + WINDOW, end=T0 + 4 * WINDOW, export_wh=300, merkle_root=b"\x07" * 32)
    svc_env.generation.windows += [first, gap]
    with pytest.raises(InsufficientGenerationError):
        await svc_env.service.issue(
            actor_id=p.authority, meter_id=p.meter_id, period_start=T0, period_end=T0 + 2 * WINDOW
        )
    record = await svc_env.service.issue(
        actor_id=p.authority, meter_id=p.meter_id, period_start=T0, period_end=T0 + 4 * WINDOW, expected_wh=400
    )
    assert record.energy_wh == 400
