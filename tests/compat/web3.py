"""The web3.js / spl-token compatibility check: serve the JSON-RPC of a ledger a demo run left behind (production
limits: no airdrops), ask it through @solana/web3.js 1.x and @solana/spl-token (``web3_check.mjs``, Node 20, the
packages pinned by ``package-lock.json`` and installed by ``make setup``), and compare each answer with what
PostgreSQL says: minted totals, balances, escrow, settlements, certificates, signatures."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
from solders.keypair import Keypair
from solders.pubkey import Pubkey
from spl.token.instructions import get_associated_token_address

from central.accounting.mint_intent import MINT_KIND
from central.ledger.config import LedgerConfig
from central.ledger.embedded import EmbeddedConfig, EmbeddedLedger
from central.ledger.jsonrpc import RpcLimits, serve
from central.ledger.setup import load_setup
from central.market.postgres import escrow_snapshot

COMPAT = Path(__file__).resolve().parent
SCRIPT = COMPAT / "web3_check.mjs"


def ata(owner: str, mint: str) -> str:
    return str(get_associated_token_address(Pubkey.from_string(owner), Pubkey.from_string(mint)))


async def run_node(url: str, questions: dict[str, Any], work: Path, script: Path = SCRIPT) -> dict[str, Any]:
    if not (COMPAT / "node_modules" / "@solana" / "web3.js").is_dir():
        raise AssertionError("tests/compat/node_modules is missing: run `make setup` (npm ci in tests/compat)")
    node = shutil.which("node")
    assert node is not None, "Node 20 is required (make setup checks it)"
    qpath = work / "questions.json"
    qpath.write_text(json.dumps(questions))
    proc = await asyncio.create_subprocess_exec(node, str(script), url, str(qpath), cwd=COMPAT,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env={**os.environ, "NODE_NO_WARNINGS": "1"})
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, f"{script.name} failed ({proc.returncode}):\n{err.decode()[-4000:]}"
    answers: dict[str, Any] = json.loads(out)
    return answers


async def _database(conn: asyncpg.Connection) -> dict[str, Any]:
    mints = await conn.fetch(
        "SELECT c.signature, w.address, e.export_wh FROM energy_windows e "
        "JOIN chain_intent c ON c.kind = $1 AND c.key = e.meter_id::text || ':' || e.window_start_ms::text "
        "JOIN wallets w ON w.user_id = e.owner_id WHERE c.state = 'confirmed'", MINT_KIND)
    trades = await conn.fetch("SELECT signature, buyer_wallet, seller_wallet, qty, value, fee FROM trades "
                              "WHERE status = 'settled'")
    wallets = [r["address"] for r in await conn.fetch("SELECT address FROM wallets ORDER BY address")]
    certs = await conn.fetch("SELECT id, mint, energy_wh, retired_wh FROM certificates WHERE status = 'active'")
    holdings = await conn.fetch("SELECT certificate_id, wallet, amount_wh FROM certificate_holdings")
    return {"mints": mints, "trades": trades, "wallets": wallets, "certs": certs, "holdings": holdings}


async def check_against_database(state: Path, dsn: str) -> None:
    setup = load_setup(LedgerConfig(keys_dir=state / "keys", data_dir=state / "ledger"))
    energy, quote = str(setup.energy_mint), str(setup.quote_mint)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    ledger = EmbeddedLedger(EmbeddedConfig(data_dir=state / "ledger", slot_ms=100))
    server = await serve(ledger, "127.0.0.1", 0, limits=RpcLimits())  # production limits: no airdrops
    try:
        async with pool.acquire() as conn:
            db = await _database(conn)
        escrows, in_flight = await escrow_snapshot(pool)
        assert not in_flight
        payer = Keypair()
        ledger.airdrop(payer.pubkey(), 10**9)  # in process: the endpoint itself refuses airdrops
        mint_sigs = sorted({r["signature"] for r in db["mints"]})
        trade_sigs = sorted({r["signature"] for r in db["trades"]})
        assert mint_sigs, "the demo run minted nothing"
        assert trade_sigs, "the demo run settled nothing"
        assert db["certs"], "the demo run certified nothing"
        questions = {
            "energyMint": energy, "quoteMint": quote, "wallets": db["wallets"],
            "escrows": [e.address for e in escrows], "signatures": mint_sigs + trade_sigs,
            "blockOf": trade_sigs[:3] + mint_sigs[-2:],
            "certificates": [{"mint": c["mint"], "holders": [h["wallet"] for h in db["holdings"]
                                                             if h["certificate_id"] == c["id"]]}
                             for c in db["certs"]],
            "payerSecret": list(bytes(payer)),
        }
        got = await run_node(server.url, questions, state)
    finally:
        await server.close()
        await ledger.close()
        await pool.close()

    # The node's own answers are well formed.
    assert got["health"] == "ok"
    assert got["blockhashValid"] is True
    assert got["slot"] >= got["epochInfo"]["absoluteSlot"] - 1_000
    assert got["rent165"] > 0
    assert "Minimum context slot has not been reached" in got["minContextSlotError"]
    assert "airdrops are disabled" in got["airdrop"]
    assert got["supply"] >= sum(got["largestAccounts"]) > 0
    assert got["largestAccounts"] == sorted(got["largestAccounts"], reverse=True)
    assert got["clusterNodes"] == 1
    assert got["voteAccounts"] == {"current": [], "delinquent": []}

    # Minted energy: supply = Σ token accounts = Σ confirmed mints in the database.
    minted_total = sum(int(r["export_wh"]) for r in db["mints"])
    e = got["energy"]
    assert int(e["supply"]) == int(e["tokenSupply"]) == int(e["programAccountsSum"]) == minted_total
    assert e["decimals"] == e["tokenSupplyDecimals"] == 3
    assert [int(x["amount"]) for x in e["largest"]] == sorted((int(x["amount"]) for x in e["largest"]), reverse=True)

    # Each confirmed mint transaction minted what the database says into each wallet's token account.
    expected: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in db["mints"]:
        expected[r["signature"]][ata(r["address"], energy)] += int(r["export_wh"])
    for sig, per_account in expected.items():
        tx = got["transactions"][sig]
        assert tx is not None
        assert tx["err"] is None
        assert tx["plainSignature"] == sig
        assert tx["plainSlot"] == tx["slot"]
        minted: dict[str, int] = defaultdict(int)
        for ix in tx["instructions"]:
            if ix["program"] == "spl-token" and ix["type"] in ("mintTo", "mintToChecked"):
                info = ix["info"]
                amount = info["amount"] if ix["type"] == "mintTo" else info["tokenAmount"]["amount"]
                assert info["mint"] == energy
                minted[info["account"]] += int(amount)
        assert minted == per_account, sig
        assert any(ix["program"] == "spl-memo" and "gtx:mint" in ix["info"] for ix in tx["instructions"])

    # Each settled trade: energy to the buyer, quote net of fee to the seller, in the signature the database holds.
    for t in db["trades"]:
        tx = got["transactions"][t["signature"]]
        assert tx is not None
        assert tx["err"] is None
        moves = [(ix["info"]["mint"], ix["info"]["destination"], int(ix["info"]["tokenAmount"]["amount"]))
                 for ix in tx["instructions"] if ix["type"] == "transferChecked"]
        assert (energy, ata(t["buyer_wallet"], energy), int(t["qty"])) in moves
        assert (quote, ata(t["seller_wallet"], quote), int(t["value"]) - int(t["fee"])) in moves

    # Every signature the database holds is known, confirmed or finalized, without error.
    for sig in mint_sigs + trade_sigs:
        st = got["statuses"][sig]
        assert st is not None, sig
        assert st["err"] is None, sig
        assert st["confirmationStatus"] in ("confirmed", "finalized"), sig
    history = {h["signature"] for h in got["energyMintSignatures"]}
    assert set(mint_sigs) | set(trade_sigs) <= history
    slots = [h["slot"] for h in got["energyMintSignatures"]]
    assert slots == sorted(slots, reverse=True)
    for sig, block in got["blocks"].items():
        assert sig in block["signatures"]
        assert sig in block["parsedSignatures"]
        assert block["listed"]
        assert block["blockTime"] is not None
        assert block["parentSlot"] <= block["slot"]

    # Wallets: the parsed owner view and the spl-token account view agree.
    for w, view in got["wallets"].items():
        if view["energyAccount"] is not None:
            assert view["energyAccount"] == view["energyParsed"], w
    # Escrow: on chain = available + locked, and owned by the escrow authority.
    for row in escrows:
        view = got["escrows"][row.address]
        if view is None:  # never funded: no token account on chain
            assert row.available + row.locked == 0, row
            continue
        assert int(view["balance"]) == int(view["account"]) == row.available + row.locked, row
        assert view["owner"] == str(setup.escrow_authority.pubkey)

    # Certificates (Token-2022 with metadata): supply = issued − retired; each holder's balance as recorded.
    for c in db["certs"]:
        view = got["certificates"][c["mint"]]
        assert int(view["supply"]) == int(c["energy_wh"]) - int(c["retired_wh"])
        assert view["decimals"] == 3
        assert {"metadataPointer", "tokenMetadata"} <= set(view["parsedExtensions"])
        assert str(c["id"]) in json.dumps(view["additionalMetadata"]) + view["name"] + view["uri"]
        for h in db["holdings"]:
            if h["certificate_id"] == c["id"]:
                assert int(view["holdings"][h["wallet"]]) == int(h["amount_wh"]), h

    # A write through the standard client: simulated, sent with preflight, found in the payer's history.
    assert got["simulate"]["err"] is None
    assert got["feeForMessage"] == 5000
    sent = got["sent"]
    assert sent["err"] is None
    assert sent["status"] in ("confirmed", "finalized")
    assert sent["parsedMemo"] == sent["memo"]
    assert sent["history"][0] == sent["signature"]
