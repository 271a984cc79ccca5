"""The backup drill (issue 14): traffic (mints, a market settlement), chain work left in flight, ``gridtokenx-central
backup``, the database dropped and the ledger and keys deleted, ``restore``, central resumed, more traffic — then
escrow reconciliation shows no mismatch, the energy mint's on-chain supply equals the database's minted total, no
window is minted twice (on chain, counted from the mint memos), and what was in flight completed exactly once."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from solders.keypair import Keypair

from central import backup as snapshot
from central.accounting.mint_intent import MINT_KIND
from central.accounting.mint_memo import parse_mint_memo
from central.app import POOL, create_app
from central.config import CentralConfig
from central.http.roles import Role
from central.ledger.embedded import EmbeddedLedger
from central.ledger.tokens import parse_mint
from central.market.plan import SETTLEMENT_KIND
from central.minting.queries import minted_wh
from central.minting.service import mint_outbox
from central.wiring import accounting, ledger, market, minting, readings, wallets
from tests.central.accounting.acct_chain import embedded_chain
from tests.central.accounting.acct_mint_env import T0, account_all, feed, seed_site
from tests.central.app_env import ledger_of, make_config, setup_of
from tests.central.market.http_env import auth, deposit, funded_user
from tests.central.market.market_fixtures import make_user
from tests.memo_logs import memo_texts

SUBSYSTEMS = (ledger.SUBSYSTEM, wallets.SUBSYSTEM, readings.SUBSYSTEM, accounting.SUBSYSTEM, minting.SUBSYSTEM,
              market.SUBSYSTEM)
SERIAL = "DRILL-1"
RATE = {SERIAL: 500}  # Wh per 5-minute reading: 1,500 Wh per 15-minute window
STEPS = 3  # readings per window


def _config(pg_dsn: str, tmp_path: Path) -> CentralConfig:
    return make_config(
        pg_dsn, tmp_path,
        database={"pool_max": 8},
        ledger={"create_keys": True, "serve_rpc": False, "slot_ms": 20},
        minting={"accounting_interval_s": 0.2},
        market={"epoch_length_s": 2, "fee_bps": 100, "clear_interval_s": 0.1, "settle_interval_s": 0.1,
                "reconcile_interval_s": 0.5},
    )


@asynccontextmanager
async def _central(config: CentralConfig) -> AsyncIterator[TestClient[Any, Any]]:
    client: TestClient[Any, Any] = TestClient(TestServer(create_app(config, subsystems=SUBSYSTEMS)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def _until(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 60.0) -> None:
    for _ in range(int(timeout_s / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {what}")


async def _cli(config: CentralConfig, *args: str) -> tuple[int, str]:
    """``gridtokenx-central`` in its own process, configured by ``--set`` (the running test's database and
    directories)."""
    sets = [f'database.dsn="{config.database.dsn}"', f'ledger.data_dir="{config.ledger.data_dir}"',
            f'ledger.keys_dir="{config.ledger.keys_dir}"', "mqtt.enabled=false",
            f'auth.jwt_secret="{config.auth.jwt_secret}"']
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "central.cli", *[a for s in sets for a in ("--set", s)], *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, (out + err).decode()


async def _mint_states(conn: asyncpg.Connection) -> dict[str, tuple[str, str | None, int]]:
    rows = await conn.fetch("SELECT key, state, signature, attempts FROM chain_intent WHERE kind = $1", MINT_KIND)
    return {r["key"]: (r["state"], r["signature"], r["attempts"]) for r in rows}


async def _trade(client: TestClient[Any, Any], seller: dict[str, str], buyer: dict[str, str], qty: int,
                 conn: asyncpg.Connection) -> None:
    """One matched pair of GTC orders, settled on chain by central's jobs."""
    settled = await conn.fetchval("SELECT count(*) FROM trades WHERE status = 'settled'")
    for h, side in ((seller, "sell"), (buyer, "buy")):
        r = await client.post("/api/v1/market/orders", json={"side": side, "qty": qty, "price": 100, "tif": "gtc"},
                              headers=h)
        assert r.status in (200, 201), await r.text()

    async def one_more_settled() -> bool:
        n = await conn.fetchval("SELECT count(*) FROM trades WHERE status = 'settled'")
        pending = await conn.fetchval("SELECT count(*) FROM trades WHERE status = 'pending'")
        return bool(n > settled and pending == 0)

    await _until("trade settled", one_more_settled)


def _on_chain_mint_windows(chain: EmbeddedLedger) -> list[tuple[str, tuple[int, ...]]]:
    """(signature, window starts) of every landed transaction carrying a GridTokenX mint memo, read from the
    ledger."""
    out: list[tuple[str, tuple[int, ...]]] = []
    for sig in list(chain._txs):  # the embedded ledger's index of every landed transaction
        found = chain.transaction(sig)
        assert found is not None
        rec, _meta = found
        if rec.err is not None:
            continue
        for text in memo_texts(rec.logs):
            try:
                memo = parse_mint_memo(text)
            except ValueError:
                continue
            out.append((str(sig), memo.window_starts_s))
    return out


@pytest.mark.slow
async def test_backup_restore_drill(pg_dsn: str, tmp_path: Path) -> None:
    config = _config(pg_dsn, tmp_path)
    seller_wallet = Keypair()
    conn = await asyncpg.connect(pg_dsn)
    try:
        # ---- 1. traffic: windows minted to the seller, a trade settled on chain
        async with _central(config) as client:
            pool = client.app[POOL]
            setup, chain = setup_of(client.app), ledger_of(client.app).ledger
            seller = await make_user(pool, "prosumer", wallet=seller_wallet)
            buyer, buyer_wallet = await funded_user(client, setup, chain, "consumer", quote=50_000_000)
            hs, hb = auth(client, seller), auth(client, buyer, Role.CONSUMER)
            admin = auth(client, await make_user(pool, "admin"), Role.ADMIN)
            site = await seed_site(pool, [seller], [SERIAL])
            await feed(pool, site, T0, 4 * STEPS + 1, RATE)  # 4 final windows
            await _until("4 windows minted", lambda: _minted(conn, 4 * 1_500))
            await deposit(client, hs, seller_wallet, "energy", 3_000)
            await deposit(client, hb, buyer_wallet, "quote", 10_000_000)
            await _trade(client, hs, hb, 1_000, conn)
            # a running central keeps its ledger locked: the backup refuses rather than copy a moving target
            code, out = await _cli(config, "backup", "--out", str(tmp_path / "refused"))
            assert code == 1, out
            assert "stop central" in out
            assert not (tmp_path / "refused").exists()

        # ---- 2. central stopped with chain work in flight: mints sent but not reconciled, and mints not sent
        async with _direct_pool(pg_dsn) as pool:
            platform = await embedded_chain(config.ledger.keys_dir, config.ledger.data_dir)
            try:
                await feed(pool, site, T0 + (4 * STEPS + 1) * 5 * 60_000, 2 * STEPS, RATE)
                assert await account_all(pool) == 2
                outbox = mint_outbox(pool, platform)
                submitted, sent, _ = await outbox.submit()  # sent and landed; the database says "submitted"
                assert (submitted, sent) == (2, 1)
                await feed(pool, site, T0 + (6 * STEPS + 1) * 5 * 60_000, STEPS, RATE)
                assert await account_all(pool) == 1  # one more window: an intent still pending
            finally:
                await platform.ledger.close()
        in_flight = {k: v for k, v in (await _mint_states(conn)).items() if v[0] != "confirmed"}
        assert sorted(v[0] for v in in_flight.values()) == ["pending", "submitted", "submitted"]

        # ---- 3. back up, destroy, restore
        backup = tmp_path / "backup"
        code, out = await _cli(config, "backup", "--out", str(backup))
        assert code == 0, out
        assert (backup / "manifest.json").stat().st_mode & 0o077 == 0
        await conn.close()
        await _drop_database(pg_dsn)
        shutil.rmtree(config.ledger.data_dir)
        shutil.rmtree(config.ledger.keys_dir)
        code, out = await _cli(config, "restore", "--from", str(backup))
        assert code == 0, out
        # a second restore refuses to overwrite what is there now
        code, out = await _cli(config, "restore", "--from", str(backup))
        assert code == 1
        assert "overwrite" in out or "already holds" in out
        conn = await asyncpg.connect(pg_dsn)

        # ---- 4. resume central, more traffic
        async with _central(config) as client:
            chain_port = ledger_of(client.app).ledger
            assert isinstance(chain_port, EmbeddedLedger)
            setup = setup_of(client.app)

            async def in_flight_done() -> bool:
                states = await _mint_states(conn)
                return all(states[k][0] == "confirmed" for k in in_flight)

            await _until("in-flight mints confirmed", in_flight_done)
            after = await _mint_states(conn)
            for key, (state, sig, attempts) in in_flight.items():
                if state == "submitted":  # found on the restored chain by its signature: not sent again
                    assert after[key] == ("confirmed", sig, attempts)
                else:  # sent once, after the restore
                    assert after[key][0] == "confirmed"
                    assert after[key][2] == 1
            await feed(pool_of(client), site, T0 + (7 * STEPS + 1) * 5 * 60_000, STEPS, RATE)
            await _until("8 windows minted", lambda: _minted(conn, 8 * 1_500))
            await _trade(client, hs, hb, 500, conn)

            # ---- 5. the books agree with the chain
            async def reconciled() -> dict[str, Any]:
                r = await client.get("/api/v1/admin/market/reconciliation", headers=admin)
                assert r.status == 200, await r.text()
                body: dict[str, Any] = await r.json()
                return body

            report = await reconciled()
            assert report["checked"] > 0
            assert report["mismatches"] == []
            mint_acc = await chain_port.get_account(setup.energy_mint)
            assert mint_acc is not None
            info = parse_mint(mint_acc)
            assert info is not None
            minted = await minted_wh(conn)
            assert minted == 8 * 1_500
            assert info.supply == minted
            on_chain = _on_chain_mint_windows(chain_port)
            confirmed = await conn.fetch("SELECT key, signature FROM chain_intent WHERE kind = $1 AND state = "
                                         "'confirmed'", MINT_KIND)
            windows = [w for _sig, starts in on_chain for w in starts]  # one meter: a window is its start
            assert len(windows) == len(set(windows)) == len(confirmed) == 8  # no window minted twice
            assert {s for s, _n in on_chain} == {r["signature"] for r in confirmed}
            assert await conn.fetchval("SELECT count(*) FROM chain_intent WHERE kind = $1 AND state <> 'confirmed'",
                                       SETTLEMENT_KIND) == 0
    finally:
        await conn.close()


def pool_of(client: TestClient[Any, Any]) -> asyncpg.Pool:
    return client.app[POOL]


async def _minted(conn: asyncpg.Connection, wh: int) -> bool:
    return await minted_wh(conn) >= wh


@asynccontextmanager
async def _direct_pool(dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


async def _drop_database(dsn: str) -> None:
    name = dsn.rsplit("/", 1)[1].split("?", 1)[0]
    admin = await asyncpg.connect(dsn.rsplit("/", 1)[0] + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()



def test_a_damaged_backup_is_refused(tmp_path: Path) -> None:
    backup = tmp_path / "b"
    (backup / "keys").mkdir(parents=True)
    key = backup / "keys" / "fee_payer.json"
    key.write_bytes(b"[1,2,3]")
    manifest = {"format": snapshot.FORMAT, "files": [snapshot._entry(backup, key).__dict__]}
    (backup / snapshot.MANIFEST).write_text(json.dumps(manifest))
    assert snapshot.read_manifest(backup)["files"][0]["path"] == "keys/fee_payer.json"
    key.write_bytes(b"[1,2,4]")  # same size, other bytes
    with pytest.raises(snapshot.BackupError, match="checksum"):
        snapshot.read_manifest(backup)
    key.unlink()
    with pytest.raises(snapshot.BackupError, match="missing"):
        snapshot.read_manifest(backup)
