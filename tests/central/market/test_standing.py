"""Standing orders: the pure sizing rules and forecast, and a simulated week of 50 households through the real API
(real PostgreSQL, the embedded LiteSVM ledger, escrow deposits signed by each wallet): every epoch each active
standing order places a real order (``/market/orders`` lists it) or records why not, day limits hold, pausing is
honoured and a deleted standing order stops."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from central.app import POOL
from central.http.context import SERVICES
from central.http.roles import Role
from central.market.epochs import Epoch
from central.market.standing import DayUsage, StandingSpec, size, usual_wh
from central.wiring import ledger as ledger_wiring
from central.wiring import market as market_wiring
from central.wiring import readings as readings_wiring
from tests.central.app_env import make_config
from tests.central.market.http_env import Env, auth, deposit, funded_user, serving
from tests.central.market.market_fixtures import Clock
from tests.central.pg import add_device, add_meter

pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
EPOCH_S = 4 * 3600  # six epochs a day: a week is 42 epochs
H = timedelta(hours=1)


# ------------------------------------------------------------------------------------------------- pure rules


def test_usual_is_the_mean_of_the_same_weekday_and_hour_prorated() -> None:
    mon9 = MONDAY + 9 * H
    history = [(mon9 - timedelta(weeks=2), 300), (mon9 - timedelta(weeks=1), 500), (mon9 - timedelta(weeks=1) + H, 80)]
    assert usual_wh(history, Epoch(mon9, mon9 + H)) == 400
    # half of 09:00 (mean 400) and half of 10:00 (only sample 80)
    assert usual_wh(history, Epoch(mon9 + H / 2, mon9 + 3 * H / 2)) == 240
    # Tuesday 09:00 has no same-weekday sample: the same hour on any day (mean 400)
    assert usual_wh(history, Epoch(mon9 + 24 * H, mon9 + 25 * H)) == 400
    assert usual_wh(history, Epoch(mon9 + 3 * H, mon9 + 4 * H)) == 0
    assert usual_wh([], Epoch(mon9, mon9 + H)) is None


@given(
    side=st.sampled_from(["buy", "sell"]),
    price=st.integers(1, 10_000),
    available=st.integers(0, 10**6),
    usual=st.none() | st.integers(0, 10**6),
    max_qty=st.none() | st.integers(1, 10**5),
    daily_wh=st.none() | st.integers(1, 10**6),
    daily_spend=st.none() | st.integers(1, 10**6),
    used_wh=st.integers(0, 10**6),
    used_spend=st.integers(0, 10**6),
)
def test_sizing_never_exceeds_a_limit(
    side: str, price: int, available: int, usual: int | None, max_qty: int | None, daily_wh: int | None,
    daily_spend: int | None, used_wh: int, used_spend: int,
) -> None:
    spec = StandingSpec(side, price, max_qty, daily_wh, daily_spend if side == "buy" else None)
    s = size(spec, available=available, usual=usual, used=DayUsage(used_wh, used_spend))
    if s.reason is not None:
        assert (s.qty, s.lock) == (0, 0)
        return
    assert s.qty >= 1
    assert s.qty <= (available if side == "sell" else (usual or 0))
    assert max_qty is None or s.qty <= max_qty
    assert daily_wh is None or used_wh + s.qty <= daily_wh
    assert s.lock == (s.qty if side == "sell" else s.qty * price // 1000)
    if side == "buy" and daily_spend is not None:
        assert used_spend + s.lock <= daily_spend
        # the largest qty that fits: one Wh more would break a limit
        more = s.qty + 1
        assert (
            used_spend + more * price // 1000 > daily_spend
            or more > (usual or 0)
            or (max_qty is not None and more > max_qty)
            or (daily_wh is not None and used_wh + more > daily_wh)
        )


# ------------------------------------------------------------------------------------------------- a week


@pytest.fixture
async def week_env(pg_dsn: str, tmp_path: Path) -> AsyncIterator[Env]:
    config = make_config(
        pg_dsn, tmp_path,
        database={"pool_max": 10},
        ledger={"create_keys": True, "serve_rpc": False, "slot_ms": 0},
        # The test drives the market's clock and runs the standing-order job's step itself, once per epoch.
        market={"epoch_length_s": EPOCH_S, "fee_bps": 100, "clear_interval_s": 0.2,
                # settlement is tested elsewhere (test_settlement.py); here it would only load the machine
                "settle_interval_s": 3600,
                "reconcile_interval_s": 0, "standing_interval_s": 3600},
    )
    async with serving(config, (ledger_wiring.SUBSYSTEM, readings_wiring.SUBSYSTEM, market_wiring.SUBSYSTEM)) as env:
        yield env


def consumption(household: int, t: datetime) -> int:
    """A household's hourly import (Wh) by weekday and hour."""
    return (40 + 12 * t.hour + 5 * t.weekday()) * (1 + household % 3)


async def add_history(pool: asyncpg.Pool, household: int, owner: uuid.UUID) -> None:
    """Two weeks of hourly accounting windows before the simulated week (the forecast's input)."""
    device = f"gw-{owner.hex[:12]}"
    await add_device(pool, device, uuid.uuid4().bytes * 2)
    meter = await add_meter(pool, device, f"m-{owner.hex[:12]}", owner, source="grid")
    rows: list[tuple[Any, ...]] = []
    for k in range(14 * 24):
        t = MONDAY - timedelta(days=14) + k * H
        ms = int(t.timestamp() * 1000)
        rows.append((meter, ms, ms + 3_600_000, owner, consumption(household, t), 0, 0, 0, 0, 0, [], bytes(32)))
    await pool.executemany(
        "INSERT INTO energy_windows (meter_id, window_start_ms, window_end_ms, owner_id, import_wh, export_wh, "
        "start_import, start_export, end_import, end_export, record_hashes, merkle_root) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        rows,
    )


def usual_in(household: int, start: datetime) -> int:
    return sum(consumption(household, start + i * H) for i in range(EPOCH_S // 3600))


SELL_MAX, SELL_DAY, SELL_PRICE = 300, 1000, 100
BUY_PRICE, BUY_SPEND = 200, 1000
UNFUNDED = {1, 3, 5}  # buyers who deposit almost nothing: their runs are skipped with the reason
PAUSED = set(range(10))  # paused Wednesday 00:00, resumed Friday 00:00
DELETED = 10  # deleted Saturday 00:00


@pytest.mark.slow
async def test_a_week_of_standing_orders_for_50_households(week_env: Env) -> None:
    client, setup, ledger = week_env
    pool = client.app[POOL]
    market = client.app[SERVICES].market.market
    clock = Clock(MONDAY)
    market.book.now = clock  # one clock for placing, clearing and the standing orders (time compressed)
    job = next(j for j in market_wiring.jobs(client.app[SERVICES]) if j.name == "market-standing")
    assert job.lock is not None

    heads: dict[int, dict[str, str]] = {}
    ids: dict[int, int] = {}
    for n in range(50):
        if n % 2 == 0:  # prosumers selling what they deposited
            uid, wallet = await funded_user(client, setup, ledger, "prosumer", energy=8000)
            h = heads[n] = auth(client, uid)
            await deposit(client, h, wallet, "energy", 8000)
            body: dict[str, Any] = {"side": "sell", "price": SELL_PRICE, "max_qty_wh": SELL_MAX,
                                    "daily_energy_wh": SELL_DAY}
        else:  # consumers buying their usual consumption
            uid, wallet = await funded_user(client, setup, ledger, "consumer", quote=1_000_000)
            h = heads[n] = auth(client, uid, Role.CONSUMER)
            await deposit(client, h, wallet, "quote", 10 if n in UNFUNDED else 100_000)
            await add_history(pool, n, uid)
            body = {"side": "buy", "price": BUY_PRICE, "daily_spend": BUY_SPEND}
        r = await client.post("/api/v1/market/standing", json=body, headers=h)
        assert r.status == 201, await r.text()
        ids[n] = (await r.json())["id"]
    bad = await client.post("/api/v1/market/standing", json={"side": "sell", "price": 5, "daily_spend": 9},
                            headers=heads[0])
    assert bad.status == 400
    other = await client.get(f"/api/v1/market/standing/{ids[0]}", headers=heads[1])
    assert other.status == 404  # not yours

    async def command(ns: set[int], verb: str) -> None:
        for n in ns:
            url = f"/api/v1/market/standing/{ids[n]}"
            r = await (client.delete(url, headers=heads[n]) if verb == "delete"
                       else client.post(f"{url}/{verb}", headers=heads[n]))
            assert r.status == (204 if verb == "delete" else 200), await r.text()

    epoch = timedelta(seconds=EPOCH_S)
    for k in range(7 * 24 * 3600 // EPOCH_S):
        start = MONDAY + k * epoch
        clock.t = start + timedelta(seconds=30)
        if start == MONDAY + timedelta(days=2):
            await command(PAUSED, "pause")
        if start == MONDAY + timedelta(days=4):
            await command(PAUSED, "resume")
        if start == MONDAY + timedelta(days=5):
            await command({DELETED}, "delete")
        async with job.lock.hold() as leader:
            assert leader
            await job.step()
        clock.t = start + epoch
        await market.book.clear_due()

    # Everything below is read back through the API.
    placed_by_side: dict[str, set[datetime]] = {"buy": set(), "sell": set()}
    for n in range(50):
        h = heads[n]
        r = await client.get(f"/api/v1/market/standing/{ids[n]}/runs?limit=1000", headers=h)
        if n == DELETED:
            assert r.status == 404
            runs = [dict(r) for r in await pool.fetch(
                "SELECT epoch_start, outcome, reason, order_id, qty, lock FROM standing_runs WHERE standing_id = $1",
                ids[n])]
        else:
            assert r.status == 200
            runs = await r.json()
            for run in runs:
                run["epoch_start"] = datetime.fromisoformat(run["epoch_start"])
        by_epoch = {run["epoch_start"]: run for run in runs}
        expected = [
            MONDAY + k * epoch for k in range(42)
            if not (n in PAUSED and MONDAY + timedelta(days=2) <= MONDAY + k * epoch < MONDAY + timedelta(days=4))
            and not (n == DELETED and MONDAY + k * epoch >= MONDAY + timedelta(days=5))
        ]
        assert sorted(by_epoch) == expected, n  # a run every active epoch, none while paused or deleted
        orders = {}
        if n != DELETED:
            r = await client.get("/api/v1/market/orders?limit=1000", headers=h)
            orders = {o["id"]: o for o in await r.json()}
            placed = {run["order_id"] for run in runs if run["outcome"] == "placed"}
            assert set(orders) == placed  # every order it placed is a real order of the user's, and nothing else
        per_day: dict[datetime, list[dict[str, Any]]] = defaultdict(list)
        for t in expected:
            per_day[t.replace(hour=0)].append(by_epoch[t])
        for day, day_runs in per_day.items():
            for run in day_runs:
                assert run["outcome"] in ("placed", "skipped")
                if run["outcome"] == "skipped":
                    assert run["reason"]
                    assert (run["qty"], run["order_id"]) == (0, None)
                else:
                    placed_by_side["sell" if n % 2 == 0 else "buy"].add(run["epoch_start"])
                if run["outcome"] == "placed" and orders:
                    o = orders[run["order_id"]]
                    assert (o["qty"], o["tif"]) == (run["qty"], "epoch")
                    assert datetime.fromisoformat(o["epoch_start"]) == run["epoch_start"]
                    assert o["side"] == ("sell" if n % 2 == 0 else "buy")
                    assert o["price"] == (SELL_PRICE if n % 2 == 0 else BUY_PRICE)
            qtys = [run["qty"] for run in day_runs]
            if n % 2 == 0:
                # 300, 300, 300, then the 100 Wh left of the day's 1000, then skipped for the day's limit
                full = [300, 300, 300, 100, 0, 0][: len(day_runs)] if len(day_runs) == 6 else None
                if full is not None:
                    assert qtys == full, (n, day)
                assert sum(qtys) <= SELL_DAY
                assert all(run["reason"] == "daily energy limit reached" for run in day_runs if run["qty"] == 0)
            elif n in UNFUNDED:
                assert sum(qtys) == 0
                assert all(run["reason"].startswith("insufficient_escrow") for run in day_runs)
            else:
                assert sum(run["lock"] for run in day_runs) <= BUY_SPEND  # the day's spend limit
                spent = 0
                for run in day_runs:
                    usual = usual_in(n, run["epoch_start"])
                    fits = ((BUY_SPEND - spent + 1) * 1000 - 1) // BUY_PRICE
                    want = min(usual, fits)
                    if BUY_SPEND - spent <= 0 or want <= 0:
                        assert run["reason"] == "daily spend limit reached", (n, run)
                    else:
                        assert run["qty"] == want, (n, run)  # the forecast, or what is left of the spend
                    spent += run["lock"]
                day_usual = sum(usual_in(n, run["epoch_start"]) for run in day_runs)
                if len(day_runs) == 6 and day_usual * BUY_PRICE // 1000 > BUY_SPEND:
                    # the day's usual consumption costs more than the limit: some run was cut short or skipped
                    assert any(run["qty"] < usual_in(n, run["epoch_start"]) for run in day_runs)
    sides_met = placed_by_side["buy"] & placed_by_side["sell"]
    assert len(sides_met) == 4 * 7  # the sellers' day limit lets them sell in the first four epochs of each day
    r = await client.get(f"/api/v1/market/standing/{ids[1]}", headers=heads[1])
    assert (await r.json())["last_reason"].startswith("insufficient_escrow")
    epochs = await (await client.get("/api/v1/market/epochs?limit=100")).json()
    traded = {datetime.fromisoformat(e["start"]) for e in epochs if e["trade_count"] > 0}
    assert traded == sides_met  # the standing orders traded whenever both sides placed
