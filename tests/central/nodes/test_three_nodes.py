"""Three independent central nodes (``gridtokenx-central serve`` processes, each with its own config, HTTP port and
database application name) share PostgreSQL, Mosquitto (readings split through the ``$share/central/...``
subscriptions) and one ledger (its own process, reached by JSON-RPC). The accountant is a sticky leadership
(session advisory lock); minting claims intents with SKIP LOCKED on every node.

The leader is SIGKILLed while windows are being settled and minted: another node takes the leadership within twice
the accounting interval and finishes; then the two survivors ingest a second round of readings, whose leader is
killed too. At the end every reading the gateway saw acknowledged is stored once, every final window has one mint
intent, confirmed once, and the energy mint's supply on chain is exactly the sum of the intents (nothing minted
twice)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import aiohttp
import asyncpg
import pytest
from solders.pubkey import Pubkey

from central import locks
from central.accounting.mint_intent import MINT_KIND
from central.ledger.rpc import RpcLedger
from central.ledger.tokens import parse_mint
from central.market.postgres import epoch_lock_key
from protocol import topics
from protocol.batch import encode_batch
from protocol.record import Reading
from tests.central.accounting.acct_mint_env import T0, link_wallet, seed_site, signed_readings
from tests.central.device import DeviceClient, central_ack, write_signing_key
from tests.central.pg import add_user
from tests.services import free_port, terminate

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).parent
ACCOUNTING_INTERVAL_S = 0.5
METERS = 30
EPOCH_S = 2
CLEAR_INTERVAL_S = 0.25

LEADER_SQL = """
SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND ((l.classid::bigint << 32) | l.objid::bigint) = $1
"""


class Node:
    def __init__(self, name: str, cfg: Path, port: int, log: IO[bytes]) -> None:
        self.name, self.port, self.log = name, port, log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "central.cli", "-c", str(cfg), "serve"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def text(self) -> str:
        return Path(self.log.name).read_text()

    def tail(self) -> str:
        return self.text()[-2000:]

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        terminate(self.proc, timeout=30, kill_timeout=None)
        self.log.close()


def node_config(tmp: Path, name: str, pg_dsn: str, broker: Any, port: int, rpc_port: int, jwt: str) -> Path:
    cfg = tmp / f"{name}.toml"
    cfg.write_text(
        f'[database]\ndsn = "{pg_dsn}"\npool_min = 1\npool_max = 6\napplication_name = "{name}"\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nclient_id_prefix = "gtx-{name}"\n'
        f'signing_key_file = "{write_signing_key(tmp / "signing")}"\n'
        f'[auth]\njwt_secret = "{jwt}"\npassword_bcrypt_cost = 4\n'
        f'[mailer]\ndev_dir = "{tmp / "mail"}"\n'
        f'[http]\nhost = "127.0.0.1"\nport = {port}\n'
        '[log]\nlevel = "WARNING"\n'
        f'[minting]\naccounting_interval_s = {ACCOUNTING_INTERVAL_S}\n'
        f'[market]\nepoch_length_s = {EPOCH_S}\nclear_interval_s = {CLEAR_INTERVAL_S}\n'
        # the ledger directory is owned by the ledger host: every node falls back to its JSON-RPC on rpc_port
        f'[ledger]\ndata_dir = "{tmp / "ledger"}"\nkeys_dir = "{tmp / "keys"}"\nrpc_port = {rpc_port}\n'
    )
    cfg.chmod(0o600)
    return cfg


async def wait_ready(node: Node, deadline_s: float = 90) -> None:
    deadline = time.monotonic() + deadline_s
    last: object = None
    async with aiohttp.ClientSession() as http:
        while True:
            assert node.proc.poll() is None, (node.name, node.tail())
            try:
                async with http.get(f"http://127.0.0.1:{node.port}/readyz") as resp:
                    last = await resp.json()
                    checks = last["checks"]  # type: ignore[index]
                    if all(checks.get(k) == "ok" for k in ("database", "broker", "ledger")):
                        return
            except aiohttp.ClientError as exc:
                last = exc
            assert time.monotonic() < deadline, (node.name, last)
            await asyncio.sleep(0.2)


async def leader(pool: asyncpg.Pool, key: locks.LockKey = locks.ACCOUNTANT) -> str | None:
    name = await pool.fetchval(LEADER_SQL, key.key)
    return None if name is None else str(name)


async def kill_during_epoch_close(pool: asyncpg.Pool, dsn: str, nodes: dict[str, Node]) -> None:
    """Hold an order placer's shared lock on an epoch that is about to end, so that the node closing it waits inside
    its close transaction (holding the clearing lock); kill -9 that node there, let go, and check that another node
    closes and clears the epoch, once."""
    now = time.time()
    start = datetime.fromtimestamp(now - now % EPOCH_S + 2 * EPOCH_S, UTC)
    placer = await asyncpg.connect(dsn)
    try:
        await placer.execute("SELECT pg_advisory_lock_shared($1, $2)", *epoch_lock_key(start))

        async def closing() -> bool:
            return await leader(pool, locks.MARKET_CLEARING) is not None and time.time() > start.timestamp() + EPOCH_S

        await wait_for(closing, 30, "a node closing the epoch")
        name = await leader(pool, locks.MARKET_CLEARING)
        assert name in nodes, name
        assert await pool.fetchval("SELECT status FROM epochs WHERE start_at = $1", start) == "open"
        nodes.pop(name).kill9()
        killed = datetime.now(UTC)
    finally:
        await placer.close()

    async def cleared() -> bool:
        return await pool.fetchval("SELECT status FROM epochs WHERE start_at = $1", start) in ("cleared", "settled")

    await wait_for(cleared, 4 * CLEAR_INTERVAL_S + 5, "another node clearing the epoch")
    row = await pool.fetchrow("SELECT closed_at, cleared_at FROM epochs WHERE start_at = $1", start)
    assert row["closed_at"] >= killed  # the killed node's close was rolled back; a survivor closed it, once
    ends = [r["start_at"] for r in await pool.fetch(
        "SELECT start_at FROM epochs WHERE status IN ('cleared', 'settled') ORDER BY start_at")]
    assert len(ends) == len(set(ends))


async def publish(broker: Any, device_id: str, records: list[Reading]) -> int:
    """Publish batches of 10 (QoS 1) and re-send any batch not acknowledged within 5 s, as a gateway does; returns
    the number of readings central acknowledged as accepted."""
    dev = DeviceClient(broker.host, broker.port, [topics.ack(device_id)])
    accepted = 0
    try:
        batches = [records[i : i + 10] for i in range(0, len(records), 10)]
        for b in batches:
            for _ in range(6):
                dev.publish(topics.readings(device_id), encode_batch(b))
                try:
                    ack = central_ack(await dev.next(topics.ack(device_id), 5))
                except Exception:  # noqa: BLE001 - a lost batch is re-sent, as the edge's outbox does
                    continue
                assert ack.rejected == ()
                accepted += ack.accepted + ack.duplicate  # stored now or by an earlier delivery
                break
            else:
                raise AssertionError("a batch was never acknowledged")
        return accepted
    finally:
        dev.close()


async def wait_for(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def supply(rpc_url: str, mint: Pubkey) -> int:
    ledger = RpcLedger(rpc_url)
    try:
        acc = await ledger.get_account(mint)
        assert acc is not None
        info = parse_mint(acc)
        assert info is not None
        return info.supply
    finally:
        await ledger.close()


async def kill_leader_while_busy(pool: asyncpg.Pool, nodes: dict[str, Node], expect_intents: int) -> float:
    """Wait until the accountant has settled part of the windows and minting has started but not finished, kill -9
    the accountant's node, and return how long (s) until another node held the leadership."""
    async def busy() -> bool:
        n = int(await pool.fetchval("SELECT count(*) FROM chain_intent WHERE kind = $1", MINT_KIND))
        unconfirmed = int(await pool.fetchval(
            "SELECT count(*) FROM chain_intent WHERE kind = $1 AND state <> 'confirmed'", MINT_KIND))
        return n > 0 and (n < expect_intents or unconfirmed > 0)

    await wait_for(busy, 60, "accounting and minting under way")
    name = await leader(pool)
    assert name in nodes, name
    nodes[name].kill9()
    killed = time.monotonic()
    await wait_for(lambda: _other_leader(pool, name), 10 * ACCOUNTING_INTERVAL_S, "a new accountant")
    del nodes[name]
    return time.monotonic() - killed


async def _other_leader(pool: asyncpg.Pool, dead: str) -> bool:
    name = await leader(pool)
    return name is not None and name != dead


async def check_exactly_once(pool: asyncpg.Pool, rpc_url: str, mint: Pubkey, readings: int, intents: int) -> None:
    async def minted() -> bool:
        done = await pool.fetchval(
            "SELECT count(*) FROM chain_intent WHERE kind = $1 AND state = 'confirmed'", MINT_KIND)
        return int(done) == intents

    await wait_for(minted, 90, "every intent confirmed")
    assert await pool.fetchval("SELECT count(*) FROM readings") == readings  # every acknowledged reading, once
    assert await pool.fetchval("SELECT count(*) FROM reading_gaps") == 0
    states = dict(await pool.fetch("SELECT state, count(*) FROM chain_intent WHERE kind = $1 GROUP BY 1", MINT_KIND))
    assert states == {"confirmed": intents}  # one intent per final (meter, window), none twice (unique key)
    expected = int(await pool.fetchval(
        "SELECT sum((payload->>'wh')::bigint) FROM chain_intent WHERE kind = $1", MINT_KIND))
    assert await supply(rpc_url, mint) == expected  # nothing minted twice on chain


@pytest.mark.slow
async def test_three_nodes_survive_their_leaders_kill(pg_dsn: str, tmp_path: Path, broker: Any) -> None:
    rpc_port = free_port()
    host_log = (tmp_path / "ledger.log").open("wb")
    host = start_ledger_host(tmp_path, rpc_port, host_log)
    nodes: dict[str, Node] = {}
    started: list[Node] = []
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=3)
    assert pool is not None
    try:
        deadline = time.monotonic() + 60
        while not (ready := _ready_line(tmp_path / "ledger.log")):
            assert host.poll() is None, (tmp_path / "ledger.log").read_text()
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        mint = Pubkey.from_string(ready.split()[-1])
        owners = [await add_user(pool) for _ in range(METERS)]
        site = await seed_site(pool, owners, [f"N-{i}" for i in range(METERS)])
        for owner in owners:
            await link_wallet(pool, owner)
        jwt = secrets.token_urlsafe(40)
        for i in (1, 2, 3):
            name, port = f"node-{i}", free_port()
            cfg = node_config(tmp_path, name, pg_dsn, broker, port, rpc_port, jwt)
            nodes[name] = Node(name, cfg, port, (tmp_path / f"{name}.log").open("wb"))
            started.append(nodes[name])
        for node in nodes.values():
            await wait_ready(node)
        await asyncio.sleep(1.0)  # every node subscribed
        rates = {s: 10 + i for i, s in enumerate(site.meters)}
        rpc_url = f"http://127.0.0.1:{rpc_port}"

        # Round 1: 13 readings per meter (4 final windows each), through the broker to whichever node; the
        # accountant is killed while windows are settled and minted.
        recs = signed_readings(site, T0, 13, rates)
        assert await publish(broker, site.gateway.device_id, recs) == len(recs)
        took = await kill_leader_while_busy(pool, nodes, 4 * METERS)
        print(f"accountant taken over {took:.2f} s after kill -9 (interval {ACCOUNTING_INTERVAL_S} s)")
        assert took <= 2 * ACCOUNTING_INTERVAL_S  # the bound: twice the duty's interval
        await check_exactly_once(pool, rpc_url, mint, len(recs), 4 * METERS)

        # The node closing a market epoch is killed in the middle of the close.
        await kill_during_epoch_close(pool, pg_dsn, nodes)

        # Round 2: the last node ingests 12 more readings per meter (4 more final windows) and mints them.
        more = signed_readings(site, T0 + 13 * 5 * 60_000, 12, rates)
        assert await publish(broker, site.gateway.device_id, more) == len(more)
        await check_exactly_once(pool, rpc_url, mint, len(recs) + len(more), 8 * METERS)
        assert len(nodes) == 1
        keys = await pool.fetchval("SELECT count(DISTINCT key) FROM chain_intent WHERE kind = $1", MINT_KIND)
        assert keys == 8 * METERS
    finally:
        await pool.close()
        for node in started:
            node.stop()
        terminate(host, timeout=20, kill_timeout=None)
        host_log.close()
    for node in started:
        assert "Traceback" not in node.text(), (node.name, node.tail())


def start_ledger_host(tmp: Path, rpc_port: int, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, str(HERE / "ledger_host.py"), str(tmp / "ledger"), str(tmp / "keys"), str(rpc_port)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _ready_line(log: Path) -> str:
    return next((x for x in log.read_text().splitlines() if x.startswith("ledger ready")), "")

