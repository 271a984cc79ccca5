"""The certificate API end to end: the central app (PostgreSQL, JWT roles) over the embedded ledger, driven with the
API client and wallets signing transaction requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer
from solders.keypair import Keypair

from central.app import TOKENS, create_app
from central.bootstrap import build_certificates
from central.certificates import client
from central.certificates.client import ApiCallError
from central.http.roles import Role
from central.services import Services
from central.wiring import certificates as certificates_wiring
from central.wiring import ledger as ledger_wiring
from tests.central.app_env import make_config
from tests.central.certificates.pg_world import HOUR, T0, T0_MS, Site, link_wallet
from tests.central.certificates.support import CertLedgerEnv
from tests.central.pg import add_user, open_pool


@dataclass
class Api:
    http: TestClient  # type: ignore[type-arg]
    tokens: dict[str, str]
    wallets: dict[str, Keypair]
    meter_id: UUID
    pool: asyncpg.Pool


@pytest.fixture
async def api(pg_dsn: str, chain_env: CertLedgerEnv, tmp_path: Path) -> AsyncIterator[Api]:
    pool = await open_pool(pg_dsn, min_size=2, max_size=8)
    users = {role: await add_user(pool, role) for role in ("rec_authority", "prosumer", "consumer")}
    wallets = {"prosumer": Keypair(), "consumer": Keypair()}
    for name, wallet in wallets.items():
        await link_wallet(pool, users[name], wallet)
    site = Site(pool, users["prosumer"], "SN-HTTP-1")
    await site.install()
    await site.produce(T0_MS, 60, 50)  # 3000 Wh in the first hour
    config = make_config(
        pg_dsn, tmp_path, certificates={"issuer_name": "GridTokenX REC Authority", "expiry_sweep_s": 3600}
    )

    def over_test_chain(services: Services) -> Services:
        certs = build_certificates(services.pool, chain_env.ops, services.config.certificates)
        return replace(services, certificates=certs)

    app = create_app(config, subsystems=(certificates_wiring.SUBSYSTEM,), customise=over_test_chain)
    tokens = {name: app[TOKENS].issue(uid, Role(name))[0] for name, uid in users.items()}
    test_client = TestClient(TestServer(app))
    await test_client.start_server()
    try:
        yield Api(test_client, tokens, wallets, site.meter_id, pool)
    finally:
        await test_client.close()
        await pool.close()


async def test_certificate_lifecycle_over_http(api: Api) -> None:
    session = aiohttp.ClientSession(str(api.http.make_url("")))
    try:
        with pytest.raises(ApiCallError) as denied:  # only the REC authority issues
            await client.issue(session, api.tokens["prosumer"], str(api.meter_id), T0, T0 + HOUR)
        assert denied.value.status == 403
        cert = await client.issue(session, api.tokens["rec_authority"], str(api.meter_id), T0, T0 + HOUR, 3000)
        assert cert["energy_wh"] == 3000
        assert cert["status"] == "active"
        with pytest.raises(ApiCallError) as again:
            await client.issue(session, api.tokens["rec_authority"], str(api.meter_id), T0, T0 + HOUR)
        assert again.value.code == "already_certified"
        assert [c["id"] for c in await client.list_mine(session, api.tokens["prosumer"])] == [cert["id"]]
        assert await client.list_mine(session, api.tokens["consumer"]) == []

        consumer_wallet = str(api.wallets["consumer"].pubkey())
        await client.transfer(session, api.tokens["prosumer"], api.wallets["prosumer"], cert["id"], 1200,
                              to_wallet=consumer_wallet)  # fmt: skip
        await client.retire(
            session, api.tokens["consumer"], api.wallets["consumer"], cert["id"], 400,
            beneficiary="Consumer household", purpose="renewable electricity claim",
            consumption_start=T0, consumption_end=T0 + timedelta(days=30),
        )  # fmt: skip
        register = await client.retirements(session, cert["id"])  # public: no token
        assert [(r["amount_wh"], r["beneficiary"]) for r in register] == [(400, "Consumer household")]
        report = await client.validate(session, mint=cert["mint"])  # public: no token
        assert report["valid"] is True
        assert report["db_agrees"] is True, report["mismatches"]
        assert report["retired_wh"] == 400
        assert report["supply_wh"] == 2600
        assert report["metadata"]["meter_serial"] == "SN-HTTP-1"

        with pytest.raises(ApiCallError) as not_authority:
            await client.revoke(session, api.tokens["consumer"], cert["id"], "no")
        assert not_authority.value.status == 403
        revoked = await client.revoke(session, api.tokens["rec_authority"], cert["id"], "audit finding")
        assert revoked["status"] == "revoked"
        with pytest.raises(ApiCallError) as blocked:
            await client.transfer(session, api.tokens["consumer"], api.wallets["consumer"], cert["id"], 1,
                                  to_wallet=str(api.wallets["prosumer"].pubkey()))  # fmt: skip
        assert blocked.value.code == "certificate_state"
        report = await client.validate(session, certificate_id=cert["id"])
        assert report["status"] == "revoked"
        assert report["frozen_accounts"] == 2

        async with session.get("/api/openapi.json") as resp:
            paths = (await resp.json())["paths"]
        assert "/api/v1/certificates/{certificate_id}/retire" in paths
        assert "/api/v1/certificates/validate" in paths
        async with session.get("/metrics") as resp:
            text = await resp.text()
        assert "gtx_certificates_retired_wh_total" in text
        assert 'gtx_certificates_issue_refused_total{reason="AlreadyCertifiedError"}' in text
    finally:
        await session.close()


async def test_demo_flow(api: Api) -> None:
    async with aiohttp.ClientSession(str(api.http.make_url(""))) as session:
        out = await client.demo_flow(
            session, authority_token=api.tokens["rec_authority"], prosumer_token=api.tokens["prosumer"],
            prosumer_wallet=api.wallets["prosumer"], consumer_token=api.tokens["consumer"],
            consumer_wallet=api.wallets["consumer"], meter_id=str(api.meter_id), period_start=T0,
            period_end=T0 + HOUR, slice_wh=750,
        )  # fmt: skip
    assert out["certificate"]["energy_wh"] == 3000
    assert out["validation"]["valid"] is True
    assert out["validation"]["retired_wh"] == 750
    assert out["validation"]["db_agrees"] is True


async def test_wired_through_the_ledger(pg_dsn: str, tmp_path: Path) -> None:
    """No test-provided chain: the composition root builds it from the ledger and its platform setup."""
    pool = await open_pool(pg_dsn, min_size=2, max_size=8)
    try:
        authority, prosumer = await add_user(pool, "rec_authority"), await add_user(pool, "prosumer")
        await link_wallet(pool, prosumer, Keypair())
        site = Site(pool, prosumer, "SN-WIRED-1")
        await site.install()
        await site.produce(T0_MS, 15, 10)
        config = make_config(pg_dsn, tmp_path, ledger={"create_keys": True, "serve_rpc": False})
        app = create_app(config, subsystems=(ledger_wiring.SUBSYSTEM, certificates_wiring.SUBSYSTEM))
        token = app[TOKENS].issue(authority, Role.REC_AUTHORITY)[0]
        test_client = TestClient(TestServer(app))
        await test_client.start_server()
        try:
            async with aiohttp.ClientSession(str(test_client.make_url(""))) as session:
                cert = await client.issue(session, token, str(site.meter_id), T0, T0 + timedelta(minutes=15))
                report = await client.validate(session, certificate_id=cert["id"])
        finally:
            await test_client.close()
        assert cert["energy_wh"] == 150
        assert report["valid"] is True
        assert (tmp_path / "keys" / "rec_issuer.json").exists()
    finally:
        await pool.close()
