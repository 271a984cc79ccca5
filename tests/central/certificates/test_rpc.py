"""The certificate lifecycle through the rpc ledger adapter (solana-py against the embedded ledger's JSON-RPC
endpoint), i.e. the code path used with any real cluster; and with a persistent embedded ledger across a restart."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from solders.keypair import Keypair

from central.certificates import instructions
from central.certificates.errors import ChainError
from central.certificates.metadata import CertificateMetadata
from central.certificates.operations import to_thaw
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.jsonrpc import RpcLimits, serve
from central.ledger.rpc import RpcLedger
from tests.central.certificates.support import T0, CertLedgerEnv, cert_ops, make_meta, user_submit


async def test_lifecycle_over_json_rpc(tmp_path: Path) -> None:
    embedded = EmbeddedLedger(EmbeddedConfig(data_dir=tmp_path / "ledger"))
    server = await serve(embedded, "127.0.0.1", 0, limits=RpcLimits(airdrop=True))
    ledger = RpcLedger(server.url)
    try:
        issuer, fee_payer, prosumer, consumer = Keypair(), Keypair(), Keypair(), Keypair()
        await ledger.request_airdrop(fee_payer.pubkey(), 10**10)
        ops = cert_ops(ledger, issuer, fee_payer)
        env = CertLedgerEnv(embedded, issuer, fee_payer, ops)
        meta = make_meta(energy_wh=900)
        mint = await ops.issue(meta, prosumer.pubkey())
        transfer = instructions.transfer_instructions(
            mint, certificate_id=meta.certificate_id, owner_wallet=prosumer.pubkey(), to_wallet=consumer.pubkey(),
            fee_payer=fee_payer.pubkey(), amount_wh=300, issuer=issuer.pubkey(),
            thaw=to_thaw(await ops.holder_accounts(mint, [prosumer.pubkey(), consumer.pubkey()])),
        )  # fmt: skip
        await user_submit(env, transfer, prosumer)
        retire = instructions.retire_instructions(
            mint, certificate_id=meta.certificate_id, owner_wallet=consumer.pubkey(), amount_wh=100,
            retirement=instructions.Retirement("B", "P", T0, T0 + timedelta(days=1)), issuer=issuer.pubkey(),
            thaw=to_thaw(await ops.holder_accounts(mint, [consumer.pubkey()])),
        )  # fmt: skip
        await user_submit(env, retire, consumer)
        info = await ops.read_mint(mint)
        assert info is not None
        assert info.metadata is not None
        assert info.supply == 800
        assert CertificateMetadata.from_fields(info.metadata.additional) == meta
        assert await ops.freeze_holders(mint, [prosumer.pubkey(), consumer.pubkey()]) == 0  # frozen at rest
        await ops.mark_revoked(mint, "test")
        again = instructions.retire_instructions(
            mint, certificate_id=meta.certificate_id, owner_wallet=consumer.pubkey(), amount_wh=100,
            retirement=instructions.Retirement("B", "P", T0, T0 + timedelta(days=1)), reference="second",
        )  # fmt: skip
        with pytest.raises(ChainError):
            await user_submit(env, again, consumer)
    finally:
        await ledger.close()
        await server.close()
        await embedded.close()

    # The embedded ledger persisted everything: reopened, the certificate is still there, sealed and revoked.
    reopened = EmbeddedLedger(EmbeddedConfig(data_dir=tmp_path / "ledger"))
    try:
        ops = cert_ops(reopened, issuer, fee_payer)
        info = await ops.read_mint(mint)
        assert info is not None
        assert info.metadata is not None
        assert info.supply == 800
        assert dict(info.metadata.additional)["status"] == "revoked"
        assert all(h.account.frozen for h in await ops.holdings(mint, [prosumer.pubkey(), consumer.pubkey()]))
    finally:
        await reopened.close()
