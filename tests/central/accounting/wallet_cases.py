"""The wallet-linking cases, run on the in-memory store (test_wallet_link) and on PostgreSQL (test_wallet_pg)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from central.wallets.errors import (
    BadWalletAddressError,
    LinkExpiredError,
    LinkRejectedError,
    NonceRejectedError,
    TooManyLinkRequestsError,
    WalletTakenError,
)
from central.wallets.service import WalletService
from central.wallets.store import WalletStore
from protocol.keys import DeviceKey
from protocol.wallet_link import WalletLink
from tests.central.clock import Clock


async def check_wallet_linking(store: WalletStore, alice: uuid.UUID, mallory: uuid.UUID) -> None:
    clock = Clock(datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC))
    svc = WalletService(store, clock=clock)
    wallet, other = DeviceKey.generate(), DeviceKey.generate()

    assert await svc.wallet_of(alice) is None
    link = await svc.start_link(alice, wallet.device_id)
    assert link.expires == clock.now + timedelta(minutes=10)
    msg = link.message()
    sig = wallet.sign(msg.encode())

    # mallory cannot submit alice's signed message for herself, nor a message naming her that alice's wallet signed
    with pytest.raises(LinkRejectedError):
        await svc.complete_link(mallory, msg, sig)
    # a signature by another key (mallory's wallet) over alice's message is rejected
    with pytest.raises(LinkRejectedError):
        await svc.complete_link(alice, msg, other.sign(msg.encode()))
    with pytest.raises(LinkRejectedError):
        await svc.complete_link(alice, "hello", sig)

    linked = await svc.complete_link(alice, msg, sig)
    assert linked.address == wallet.device_id
    assert (await svc.wallet_of(alice)) == linked

    # single use: the same signed message cannot be replayed
    with pytest.raises(NonceRejectedError):
        await svc.complete_link(alice, msg, sig)

    # a message with a nonce central never issued, correctly signed, is rejected
    forged = WalletLink(alice, other.device_id, b"\x07" * 16, link.expires)
    with pytest.raises(NonceRejectedError):
        await svc.complete_link(alice, forged.message(), other.sign(forged.message().encode()))

    # a nonce issued for one wallet cannot be used for another
    link_w = await svc.start_link(alice, wallet.device_id)
    swapped = WalletLink(alice, other.device_id, link_w.nonce, link_w.expires)
    with pytest.raises(NonceRejectedError):
        await svc.complete_link(alice, swapped.message(), other.sign(swapped.message().encode()))

    # mallory cannot link alice's wallet: she cannot sign with it, and a nonce issued to her needs its signature
    link_m = await svc.start_link(mallory, wallet.device_id)
    with pytest.raises(LinkRejectedError):
        await svc.complete_link(mallory, link_m.message(), other.sign(link_m.message().encode()))
    # even with the wallet's signature (say the wallet owner was tricked) the wallet stays with its first user
    with pytest.raises(WalletTakenError):
        await svc.complete_link(mallory, link_m.message(), wallet.sign(link_m.message().encode()))
    assert (await svc.wallet_of(alice)) == linked
    assert await svc.wallet_of(mallory) is None

    # expiry
    link2 = await svc.start_link(alice, other.device_id)
    clock.now += timedelta(minutes=11)
    with pytest.raises(LinkExpiredError):
        await svc.complete_link(alice, link2.message(), other.sign(link2.message().encode()))

    # re-link to a new wallet needs a new signature by the new wallet
    link3 = await svc.start_link(alice, other.device_id)
    relinked = await svc.complete_link(alice, link3.message(), other.sign(link3.message().encode()))
    assert relinked.address == other.device_id
    assert (await svc.wallet_of(alice)) == relinked

    with pytest.raises(BadWalletAddressError):
        await svc.start_link(alice, "not-a-wallet")

    # link requests are bounded per user while unexpired
    for _ in range(svc.max_open_links - await store.open_nonces(mallory, clock.now)):
        await svc.start_link(mallory, other.device_id)
    with pytest.raises(TooManyLinkRequestsError):
        await svc.start_link(mallory, other.device_id)
    clock.now += timedelta(minutes=11)
    await svc.start_link(mallory, other.device_id)
