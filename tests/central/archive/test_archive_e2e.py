"""Archive a period, drop it from PostgreSQL, and everything that proves it still answers (issue 15): through the
real app on the embedded ledger, a mint proof for a window in it verifies down to the signed records, a certificate
issued from it validates, the readings and energy API return its readings, ``archive verify`` passes on the file —
and a flipped bit in the file makes ``archive verify`` fail naming the record."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from solders.keypair import Keypair

from central.accounting.merkle import merkle_root, verify_proof
from central.app import TOKENS, create_app
from central.archive.directory import DirectoryArchiveStore
from central.archive.pg import PgArchive
from central.certificates import client as certificates_client
from central.cli import main as cli_main
from central.http.roles import Role
from central.wiring import accounting, archive, certificates, ledger, minting, readings, wallets
from protocol.record import decode_reading
from tests.central.app_env import make_config
from tests.central.certificates.pg_world import T0, T0_MS, Site, link_wallet
from tests.central.pg import add_user, open_pool

HOUR_MS = 3_600_000


async def poll(check: Callable[[], Any]) -> None:
    async with asyncio.timeout(30):
        while not await check():  # noqa: ASYNC110 - waiting for the app's background jobs through its API
            await asyncio.sleep(0.1)


async def test_archived_period_still_proves(pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pool = await open_pool(pg_dsn, min_size=2, max_size=8)
    try:
        await _scenario(pool, pg_dsn, tmp_path, capsys)
    finally:
        await pool.close()


async def _scenario(pool: asyncpg.Pool, pg_dsn: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prosumer, authority = await add_user(pool, "prosumer"), await add_user(pool, "rec_authority")
    await link_wallet(pool, prosumer, Keypair())
    site = Site(pool, prosumer, "SN-ARCHIVE-1")
    await site.install()
    await site.produce(T0_MS, 60, 50)  # a reading a minute for an hour: 4 final windows of 750 Wh
    originals = [bytes(r["raw"]) for r in await pool.fetch(
        "SELECT raw FROM readings WHERE meter_id = $1 ORDER BY timestamp_ms", site.meter_id)]
    assert len(originals) == 61

    config = make_config(pg_dsn, tmp_path, minting={"accounting_interval_s": 0.1},
                         ledger={"create_keys": True, "serve_rpc": False, "slot_ms": 50})
    app = create_app(config, subsystems=(ledger.SUBSYSTEM, wallets.SUBSYSTEM, accounting.SUBSYSTEM,
                                          minting.SUBSYSTEM, certificates.SUBSYSTEM, readings.SUBSYSTEM,
                                          archive.SUBSYSTEM))
    prosumer_h = {"Authorization": f"Bearer {app[TOKENS].issue(prosumer, Role.PROSUMER)[0]}"}
    authority_token = app[TOKENS].issue(authority, Role.REC_AUTHORITY)[0]
    http: TestClient[Any, Any] = TestClient(TestServer(app))
    await http.start_server()
    try:
        async def minted() -> bool:
            body = await (await http.get("/api/v1/mints", headers=prosumer_h)).json()
            return len(body) == 4 and all(m["status"] == "confirmed" for m in body)

        await poll(minted)
        mints = await (await http.get("/api/v1/mints", headers=prosumer_h)).json()

        # archive every partition holding the period, then drop it (what the reading-archive job does once the
        # period is older than archive.after_days)
        span = await pool.fetchval("SELECT span_ms FROM reading_partitioning")
        last = T0_MS + HOUR_MS
        store = DirectoryArchiveStore(Path(config.archive.directory))
        sums = "SELECT count(*) FROM reading_windows WHERE window_ms >= $1 AND window_ms <= $2"
        assert await pool.fetchval(sums, T0_MS - 900_000, last) >= 4  # ingest kept the dense windows' sums
        manifests = await PgArchive(pool, store).archive_before(last - last % span + span)
        assert sum(m.readings for m in manifests) == 61
        assert await pool.fetchval(sums, T0_MS - 900_000, last) == 0  # and they leave with the partition
        assert await pool.fetchval(
            "SELECT count(*) FROM reading_rows WHERE timestamp_ms BETWEEN $1 AND $2", T0_MS, last) == 0
        assert await pool.fetchval("SELECT count(*) FROM reading_archives") == len(manifests)
        for m in manifests:
            assert m.key.startswith("readings/")
            assert m.key.endswith(f"/{m.from_ms}-{m.to_ms}.parquet")
            assert m.size / m.readings < 600  # tiny file here; the per-reading figure at scale is bench's

        # a mint proof for a window in the archived period: its signed records come back from the archive
        proof = await (await http.get(f"/api/v1/mints/{mints[-1]['key']}/proof", headers=prosumer_h)).json()
        records = [bytes.fromhex(r) for r in proof["records"]]
        hashes = [bytes.fromhex(h) for h in proof["record_hashes"]]
        assert records
        assert [hashlib.sha256(r).digest() for r in records] == hashes
        for raw in records:
            decode_reading(raw, verify=True)  # each one signed by the gateway's key
        assert set(records) <= set(originals)
        assert merkle_root(hashes).hex() == proof["window_root"] == mints[-1]["readings_root"]
        path = [(p["sibling_is_left"], bytes.fromhex(p["sibling"])) for p in proof["path"]]
        assert verify_proof(bytes.fromhex(proof["mint_leaf"]), path, bytes.fromhex(proof["tx_root"]))

        # the readings API: every reading of the period, from the archive, in pages
        got: list[bytes] = []
        cursor = None
        while True:
            q = f"from_ms={T0_MS}&to_ms={last + 1}&limit=25" + (f"&cursor={cursor}" if cursor else "")
            page = await (await http.get(f"/api/v1/meters/{site.meter_id}/readings?{q}", headers=prosumer_h)).json()
            got += [bytes.fromhex(r["record"]) for r in page["readings"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert got == originals
        energy = await (await http.get(
            f"/api/v1/meters/{site.meter_id}/energy?from_ms={T0_MS}&to_ms={last}", headers=prosumer_h)).json()
        assert sum(w["export_wh"] for w in energy["windows"]) == 3000 - 50  # the first reading has no predecessor

        # a certificate issued from the archived period validates
        async with aiohttp.ClientSession(str(http.make_url(""))) as session:
            cert = await certificates_client.issue(session, authority_token, str(site.meter_id), T0,
                                                   T0 + timedelta(hours=1), 3000)
            report = await certificates_client.validate(session, certificate_id=cert["id"])
        assert report["valid"] is True
        assert report["db_agrees"] is True, report["mismatches"]
    finally:
        await http.close()

    # archive verify: every signature and chain of the stored files
    capsys.readouterr()
    for m in manifests:
        assert cli_main(["archive", "verify", str(Path(config.archive.directory) / m.key)]) == 0
        assert "OK: " in capsys.readouterr().out
    victim = decode_reading(originals[30])
    holding = next(m for m in manifests if m.from_ms <= victim.timestamp_ms < m.to_ms)
    file = Path(config.archive.directory) / holding.key
    damaged = tmp_path / "damaged.parquet"
    raw = bytearray(file.read_bytes())
    at = raw.find(victim.signature)
    assert at > 0
    raw[at + 40] ^= 0x04
    damaged.write_bytes(bytes(raw))
    assert cli_main(["archive", "verify", str(damaged)]) == 1
    err = capsys.readouterr().err
    assert f"{victim.device_id} seq {victim.seq}: signature does not verify" in err
    assert "FAILED" in err
