"""Stages 2–7 of the demo in order, with the summary. A stage that fails is reported (exact error) and the stages
that depend on it are skipped, never faked."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
import asyncpg
from demo_support import certs, energy, market, people, proof, stack
from demo_support.api import Api, ApiFailure, JsonRpc, RpcFailure
from demo_support.procs import Processes, ProcessFailedError
from demo_support.report import Gaps, elapsed, kwh, quote, say, stage

T = TypeVar("T")
FAILURES = (ApiFailure, RpcFailure, ProcessFailedError, RuntimeError, aiohttp.ClientError, asyncpg.PostgresError,
            OSError, KeyError, ValueError)


@dataclass
class Outcome:
    minted: dict[str, int] = field(default_factory=dict)
    epoch: dict[str, Any] | None = None
    settlement_signatures: list[str] = field(default_factory=list)
    cert: certs.CertOutcome | None = None


async def attempt(gaps: Gaps, what: str, fn: Callable[[], Awaitable[T]]) -> T | None:
    try:
        return await fn()
    except FAILURES as exc:
        gaps.add(what, f"{type(exc).__name__}: {exc}")
        return None


def sim_clock(started: float, speed: int) -> str:
    """The simulator's time of day (its clock starts at real time and runs ``speed`` times faster)."""
    t = started + (time.time() - started) * speed
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M")


async def run_story(s: stack.Settings, procs: Processes, gaps: Gaps, *, quick: bool, keep_running: bool) -> int:
    stage(2, "Processes: broker, meter simulator, central (embedded ledger), edge daemon")
    stack.fresh_state_dir(s.state)
    try:
        dsn = await stack.fresh_database(s.db_name)
        say(f"fresh state in {s.state} and fresh database {s.db_name} (127.0.0.1:5432)")
        st = stack.prepare(s, procs, dsn)
        stack.start_broker(st)
        stack.start_simulator(st)
        sim_started = time.time()
        stack.init_ledger(st, gaps)
        stack.start_central(st)
        stack.init_edge(st)
    except FAILURES as exc:
        gaps.add("stage 2 (processes)", f"{type(exc).__name__}: {exc}")
        print("\nthe demo cannot go on without its processes (run `make setup` first?)")
        return 1
    out = Outcome()
    timeout = aiohttp.ClientTimeout(total=60)
    async with (aiohttp.ClientSession(timeout=timeout) as session,
                asyncpg.create_pool(dsn, min_size=1, max_size=2) as pool):
        api = Api(session, st.base_url)
        cast = people.make_cast(st)

        async def identity() -> bool:
            stage(3, "Identity through the HTTP API: accounts, gateway, meters, wallets, readings")
            await people.accounts(api, st, cast)
            stack.start_edge(st)
            await people.provision_gateway(api, st, cast, await people.read_pairing_code(api, st))
            await people.verify_gateway(api, st, cast)
            await people.claim_and_link(api, cast)
            await people.readings_flowing(api, cast)
            return True

        if not await attempt(gaps, "stage 3 (identity)", identity):
            return finish(st, gaps, out, keep_running, cast)

        info: energy.Mints | None = None

        async def minting() -> bool:
            nonlocal info
            stage(4, "Minting: verified export becomes energy tokens (1 token = 1 kWh, 1 base unit = 1 Wh)")
            info = await energy.ledger_info(api)
            rpc = JsonRpc(session, info.rpc_url)
            say(f"settlement windows of {s.window_s} s; simulated time of day now {sim_clock(sim_started, s.speed)} "
                f"UTC (PV exports from 06:00 to 18:00)")
            await energy.wait_for_mints(api, cast, min_wh=2_000 if quick else 5_000, timeout_s=70)
            say(f"simulated time of day now {sim_clock(sim_started, s.speed)} UTC")
            out.minted = await energy.show_minting(api, rpc, pool, cast, info)
            return True

        async def audit() -> bool:
            assert info is not None
            producer = cast.prosumers[0]
            latest = max(await energy.confirmed_mints(api, producer), key=lambda m: m["window_start_ms"])
            if not await proof.audit_mint(api, JsonRpc(session, info.rpc_url), producer, latest):
                raise RuntimeError(f"the proof of mint {latest['key']} does not check out (see above)")
            return True

        minted_ok = await attempt(gaps, "stage 4 (minting)", minting)
        if minted_ok:
            await attempt(gaps, "stage 4 (mint proof)", audit)
        if minted_ok and info is not None:
            mints = info

            async def trading() -> bool:
                stage(5, f"Market: escrow deposits, orders, clearing of a {s.epoch_s}-second epoch, settlement")
                rpc = JsonRpc(session, mints.rpc_url)
                orders = market.plan_orders(cast, out.minted)
                await market.fund_and_deposit(api, cast, orders)
                await market.wait_for_room(api, need_s=3)
                epoch_start = await market.place_orders(api, orders)
                out.epoch = await market.wait_settled(api, epoch_start, timeout_s=s.epoch_s + 30)
                out.settlement_signatures = await market.show_settlement(api, rpc, cast, mints, out.epoch)
                await market.withdraw_leftovers(api, cast)
                await market.reconciliation(api, cast)
                return True

            await attempt(gaps, "stage 5 (market)", trading)

            async def certificates() -> bool:
                stage(6, "Certificates: issue (REC authority), transfer a slice, retire it, validate publicly")
                out.cert = await certs.certificate_story(api, cast)
                return True

            await attempt(gaps, "stage 6 (certificates)", certificates)
        await attempt(gaps, "edge status page", lambda: edge_status(session, st))
        outcomes = await attempt(gaps, "central /metrics", lambda: people.ingest_outcomes(api))
        if outcomes is not None:
            say(f"central ingest in total: {people.ingest_summary(outcomes)}")
            if set(outcomes) - {"accepted"}:
                say("(records of a gateway not yet verified are refused, kept by the gateway and sent again)")
    return finish(st, gaps, out, keep_running, cast)


async def edge_status(session: aiohttp.ClientSession, st: stack.Stack) -> None:
    url = f"http://127.0.0.1:{st.status_port}/api/status"
    async with session.get(url, auth=aiohttp.BasicAuth("demo", st.status_password)) as r:
        r.raise_for_status()
        raw = await r.read()
    s = json.loads(raw)
    ob, mq, dl = s["outbox"], s["mqtt"], s["dead_letters"]
    say(f"edge gateway (status API): verified by central={s['verified']}, broker link {mq['state']}, "
        f"last seq {ob['last_seq']}, {mq['acked_records']} readings acknowledged, {ob['depth']} waiting in the "
        f"outbox, {dl['count']} dead letters, alarms {[a['key'] for a in s['alarms']] or 'none'}")


def finish(st: stack.Stack, gaps: Gaps, out: Outcome, keep_running: bool, cast: people.Cast) -> int:
    stage(7, "Summary and where to look next")
    total = sum(out.minted.values())
    say(f"minted energy     : {total} Wh ({kwh(total)}) to {len(out.minted)} prosumers, on chain = database")
    if out.epoch is not None and out.epoch.get("price") is not None:
        e = out.epoch
        say(f"clearing price    : {e['price']} quote units/kWh ({quote(e['price'])}/kWh), volume {e['volume']} Wh, "
            f"{e['trade_count']} trades, epoch {e['status']}")
    else:
        say("clearing price    : - (market stage not shown)")
    for sig in out.settlement_signatures:
        say(f"settlement tx     : {sig}")
    if out.cert is not None:
        c = out.cert
        say(f"certificate       : {c.certificate_id} {c.energy_wh} Wh issued, retired {c.retired_wh} Wh, "
            f"valid={c.valid}")
    else:
        say("certificate       : - (certificates stage not shown)")
    say(f"API docs          : {st.base_url}/api/docs   (OpenAPI: {st.base_url}/api/openapi.json)")
    say(f"edge status page  : {st.status_url}   (any user name, password {st.status_password})")
    say(f"Solana JSON-RPC   : http://127.0.0.1:{st.rpc_port}   (e.g. getTokenAccountBalance)")
    say(f"logs and state    : {st.settings.state}/logs, database {st.settings.db_name}")
    if gaps.items:
        say(f"NOT SHOWN ({len(gaps.items)}):")
        for g in gaps.items:
            say(f"  - {g}")
    if gaps.notes:
        say(f"NOTES ({len(gaps.notes)}):")
        for n in gaps.notes:
            say(f"  - {n}")
    say(f"demo time         : {elapsed().strip()}")
    say(f"web app           : {st.base_url}/   (log in as any demo user below; `make demo DEMO_ARGS=--keep-running`)")
    for user in [cast.admin, cast.installer, cast.authority, *cast.owners]:
        say(f"  {user.role:<14} {user.email:<40} password {user.password}")
    if keep_running:
        if sys.stdin.isatty():
            say("everything keeps running; press Ctrl-C to stop")
            try:
                while True:
                    for proc in st.procs.procs:
                        proc.check()
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
            except ProcessFailedError as exc:
                gaps.add("keep running", exc)
        else:
            say("--keep-running ignored: stdin is not a terminal")
    return 1 if gaps.items else 0
