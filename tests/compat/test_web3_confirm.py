"""@solana/web3.js and @solana/spl-token against the embedded ledger's JSON-RPC and PubSub websocket, as a dApp or a
wallet uses them (``confirm_check.mjs``): sendAndConfirmTransaction / confirmTransaction wait on signatureSubscribe,
onAccountChange, and a holder's own Token-2022 transfer of a certificate slice (refused: accounts are frozen at
rest)."""

from __future__ import annotations

from pathlib import Path

from solders.keypair import Keypair
from solders.signature import Signature

from central.certificates import instructions
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.jsonrpc import RpcLimits, serve
from central.ledger.rpc import RpcLedger
from tests.central.certificates.support import CertLedgerEnv, cert_ops, make_meta, user_submit
from tests.compat.web3 import COMPAT, run_node

SCRIPT = COMPAT / "confirm_check.mjs"


async def test_web3_confirms_through_the_websocket_and_a_holder_moves_a_certificate(tmp_path: Path) -> None:
    embedded = EmbeddedLedger(EmbeddedConfig(data_dir=tmp_path / "ledger", slot_ms=20))
    server = await serve(embedded, "127.0.0.1", 0, limits=RpcLimits())
    ledger = RpcLedger(server.url)
    try:
        issuer, fee_payer, holder, other, payer = Keypair(), Keypair(), Keypair(), Keypair(), Keypair()
        for kp in (fee_payer, holder, payer):
            embedded.airdrop(kp.pubkey(), 10**10)
        ops = cert_ops(ledger, issuer, fee_payer)
        meta = make_meta(energy_wh=900)
        mint = await ops.issue(meta, holder.pubkey())
        # Through the platform first (as the web app does): the accounts are thawed for the transfer and frozen
        # again in the same transaction.
        await user_submit(CertLedgerEnv(embedded, issuer, fee_payer, ops), instructions.transfer_instructions(
            mint, certificate_id=meta.certificate_id, owner_wallet=holder.pubkey(), to_wallet=other.pubkey(),
            fee_payer=fee_payer.pubkey(), amount_wh=300, issuer=issuer.pubkey(),
            thaw=[holder.pubkey(), other.pubkey()],
        ), holder)  # fmt: skip
        questions = {"wsEndpoint": server.url.replace("http", "ws", 1), "payerSecret": list(bytes(payer)),
                     "holderSecret": list(bytes(holder)), "certMint": str(mint), "to": str(other.pubkey()),
                     "amount": 100}
        got = await run_node(server.url, questions, tmp_path, SCRIPT)
    finally:
        await ledger.close()
        await server.close()
        await embedded.close()

    confirmed = embedded.status(Signature.from_string(got["confirmed"]))
    assert confirmed is not None
    assert confirmed.err is None
    assert got["v0"]["err"] is None
    assert got["watchedLamports"] == 5_000_000
    # The holder's own transfer, built by spl-token and sent by web3.js, is refused by the chain: certificate accounts
    # are frozen at rest, so a certificate moves only through the platform's register (Token error 0x11: frozen).
    cert = got["certificate"]
    assert cert["error"] is not None, cert
    assert "0x11" in cert["error"] or "frozen" in cert["error"].lower(), cert
    assert (int(cert["before"]), int(cert["after"]), int(cert["received"])) == (600, 600, 300)
