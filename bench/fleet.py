"""Fleet benchmark: a fleet of meters reading every 15 minutes, time compressed, through a private Mosquitto into the
real central (``gridtokenx-central serve``: ingest → accounting → minting on the embedded ledger) and PostgreSQL.

Each simulated gateway signs one batch per 15-minute tick (one reading per meter) and publishes it; a tick lasts
``--tick-s`` seconds of wall time. The run reports the sustained readings/s, the window-close lag (the reading that
ends a window acked → the window final in ``energy_windows``), the minting lag (window final → its mint confirmed on
chain), central's memory over time, the bytes per stored reading (table + indexes + TOAST), and extrapolates the CPU
cores, machines and storage per day a fleet of 1 M and 10 M meters needs from the measured CPU per reading.

    .venv/bin/python bench/fleet.py                        # short setting (make bench): 200 gateways x 10 meters
    .venv/bin/python bench/fleet.py --gateways 5000 --meters 10 --ticks 12 --tick-s 10 --workers 2   # long setting

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and the ``mosquitto`` binary. Creates and drops its own
database; starts and stops its own broker and central (by PID).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import math
import multiprocessing as mp
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages, not an installed copy

import asyncpg
import paho.mqtt.client as paho
from baseline import print_baseline, ratio
from ingest import PG, Mosquitto, cpu_seconds, free_port, percentile, postgres_cpu, postgres_delta
from paho.mqtt.enums import CallbackAPIVersion

from protocol import topics
from protocol.batch import encode_batch
from protocol.keys import DeviceKey, device_id
from protocol.record import ZERO_HASH, ReadingFields, sign_reading
from protocol.signed import unseal_ack

ROOT = Path(__file__).resolve().parents[1]
TICK_MS = 15 * 60_000  # one reading per meter every 15 minutes (the accounting window)
#: Central's message-signing key in this benchmark (both sides run here; protocol v1.1).
FLEET_CENTRAL = DeviceKey.from_seed(hashlib.sha256(b"gridtokenx bench: fleet central").digest())
DAY_READINGS_PER_METER = 86_400_000 // TICK_MS


# --- pre-signing (in a process pool: gateways are independent) -----------------------------------------------------
def sign_gateway(job: tuple[bytes, int, int, int]) -> tuple[bytes, list[bytes]]:
    """One gateway's batches: tick k holds one reading per meter at ``start_ms + k * 15 min``."""
    seed, meters, ticks, start_ms = job
    key = DeviceKey.from_seed(seed)
    prev, seq = ZERO_HASH, 0
    batches = []
    for k in range(ticks):
        recs = []
        for m in range(meters):
            seq += 1
            rec = sign_reading(key, ReadingFields(
                meter_serial=f"F-{key.device_id[:10]}-{m}", seq=seq, timestamp_ms=start_ms + k * TICK_MS,
                import_wh=1_000_000 + k * 40, export_wh=k * (100 + m), power_w=400, prev_hash=prev))
            prev = rec.hash()
            recs.append(rec)
        batches.append(encode_batch(recs))
    return key.public_key, batches


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _prepare(dsn: str, public_keys: list[bytes], meters: int) -> None:
    """Devices, one owner per gateway (its wallet linked: mints go out at once) and the gateways' meters."""
    from central.db.migrations import migrate_dsn  # noqa: PLC0415

    await migrate_dsn(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        registered = datetime.now(UTC) - timedelta(days=30)
        ids = [device_id(pk) for pk in public_keys]
        owners = [uuid.uuid4() for _ in ids]
        await conn.copy_records_to_table(
            "users", columns=["id", "email", "password_hash", "role", "email_verified_at"],
            records=[(o, f"{o.hex[:16]}@fleet.test", "x", "prosumer", registered) for o in owners])
        wallets = [(o, DeviceKey.generate().device_id, os.urandom(16)) for o in owners]
        await conn.copy_records_to_table(
            "wallet_link_nonces", columns=["nonce", "user_id", "wallet", "expires_at", "used_at"],
            records=[(n, o, w, registered, registered) for o, w, n in wallets])
        await conn.copy_records_to_table(
            "wallets", columns=["user_id", "address", "linked_at", "link_nonce"],
            records=[(o, w, registered, n) for o, w, n in wallets])
        await conn.copy_records_to_table(
            "devices", columns=["device_id", "public_key", "status", "created_at"],
            records=[(d, pk, "verified", registered) for d, pk in zip(ids, public_keys, strict=True)])
        await conn.copy_records_to_table(
            "meters", columns=["id", "serial", "device_id", "model", "protocol", "meter_key_hash", "owner_id",
                               "claimed_at", "source"],
            records=[(uuid.uuid4(), f"F-{d[:10]}-{m}", d, "sim", "modbus", "x", o, registered, "solar")
                     for d, o in zip(ids, owners, strict=True) for m in range(meters)])
        await conn.execute("INSERT INTO meter_ownerships (meter_id, owner_id, claimed_at) "
                           "SELECT id, owner_id, claimed_at FROM meters")
    finally:
        await conn.close()


# --- central ---------------------------------------------------------------------------------------------------------
def start_central(tmp: Path, dsn: str, mqtt_port: int, http_port: int, workers: int) -> subprocess.Popen[bytes]:
    key = tmp / "central-signing.key"
    key.write_text(hashlib.sha256(b"gridtokenx bench: fleet central").hexdigest())
    key.chmod(0o600)
    cfg = tmp / "central.toml"
    cfg.write_text(
        f'[database]\ndsn = "{dsn}"\npool_min = 2\npool_max = 10\napplication_name = "fleet-bench"\n'
        f'[mqtt]\nport = {mqtt_port}\nsigning_key_file = "{key}"\n'
        f'[auth]\njwt_secret = "{secrets.token_urlsafe(40)}"\n'
        f'[mailer]\ndev_dir = "{tmp / "mail"}"\n'
        f'[http]\nport = {http_port}\nworkers = {workers}\n'
        '[log]\nlevel = "WARNING"\naccess_log = false\n'
        '[ingest]\nconcurrency = 16\ndevice_messages_per_s = 0\n'
        '[minting]\naccounting_interval_s = 0.5\n'
        f'[ledger]\ndata_dir = "{tmp / "ledger"}"\nkeys_dir = "{tmp / "keys"}"\ncreate_keys = true\n'
        'serve_rpc = false\nslot_ms = 100\n'
    )
    cfg.chmod(0o600)
    log = (tmp / "central.log").open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "central.cli", "-c", str(cfg), "serve"], cwd=ROOT, stdout=log,
        stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)}, start_new_session=True)


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"central exited:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.3)
    raise RuntimeError(f"central not ready:\n{log.read_text()[-2000:]}")


def tree_rss(pid: int) -> int:
    """Resident memory (bytes) of a process and its children (serve --workers N: the workers)."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids.extend(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    for p in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return total


def tree_cpu(pid: int) -> float:
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return sum(cpu_seconds(p) for p in pids)


# --- the fleet -------------------------------------------------------------------------------------------------------
class Fleet:
    """One MQTT connection publishing every gateway's batch of a tick, spread over ``tick_s``; counts acks."""

    def __init__(self, port: int, gateways: list[tuple[str, list[bytes]]]) -> None:
        self.gateways = gateways
        self.lock = threading.Condition()
        self.acked: dict[int, int] = {}  # tick -> readings acknowledged
        self.acked_at: dict[int, float] = {}  # tick -> wall time its last batch was acked
        self.device_acked_at: dict[tuple[str, int], float] = {}  # (gateway, tick) -> wall time of its ack
        self.rejected = 0
        self.expected_per_tick = sum(_batch_len(b[0]) for _, b in gateways)
        self.tick_of: dict[tuple[str, int], int] = {}
        subscribed = threading.Event()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="gtx-fleet",
                                  protocol=paho.MQTTv5)
        self.client.max_inflight_messages_set(0)
        self.client.max_queued_messages_set(0)
        self.client.on_message = self._on_ack
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe(f"{topics.PREFIX}/+/ack", qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("no SUBACK")

    def _on_ack(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        device, _ = topics.parse(msg.topic)
        ack = unseal_ack(bytes(msg.payload), FLEET_CENTRAL.public_key, device)
        with self.lock:
            tick = self.tick_of.get((device, ack.first), -1)
            self.acked[tick] = self.acked.get(tick, 0) + ack.accepted + ack.duplicate
            self.device_acked_at[(device, tick)] = time.time()
            self.rejected += len(ack.rejected)
            if self.acked[tick] >= self.expected_per_tick:
                self.acked_at[tick] = time.time()
            self.lock.notify_all()

    def publish_tick(self, tick: int, tick_s: float) -> None:
        t0 = time.perf_counter()
        n = len(self.gateways)
        for i, (dev, batches) in enumerate(self.gateways):
            first = tick * _batch_len(batches[0]) + 1
            with self.lock:
                self.tick_of[(dev, first)] = tick
            self.client.publish(topics.readings(dev), batches[tick], qos=1)
            delay = t0 + (i + 1) * tick_s / n - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    def wait_acked(self, tick: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self.lock:
            while self.acked.get(tick, 0) < self.expected_per_tick and time.monotonic() < deadline:
                self.lock.wait(0.5)
            return self.acked.get(tick, 0) >= self.expected_per_tick

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _batch_len(payload: bytes) -> int:
    from protocol.batch import decode_batch  # noqa: PLC0415

    return len(decode_batch(payload))


async def _lags(
    dsn: str, acked_at: dict[tuple[str, int], float], start_ms: int,
) -> tuple[list[float], list[float], int, int, int]:
    """Window-close lags (s) per final window, minting lags (s) per confirmed mint, windows final, mints confirmed,
    and the bytes of the readings relation(s) (table + indexes + TOAST, every partition)."""
    conn = await asyncpg.connect(dsn)
    try:
        windows = await conn.fetch(
            "SELECT m.device_id, w.window_start_ms, extract(epoch FROM w.finalised_at) AS at "
            "FROM energy_windows w JOIN meters m ON m.id = w.meter_id")
        close: list[float] = []
        for w in windows:
            # the window [s, s + 15 min) becomes final with the reading at its end: tick (s - start) / 15 min + 1
            tick = (int(w["window_start_ms"]) - start_ms) // TICK_MS + 1
            acked = acked_at.get((w["device_id"], tick))
            if acked is not None:
                close.append(max(0.0, float(w["at"]) - acked))
        mints = await conn.fetch(
            "SELECT extract(epoch FROM c.updated_at) - extract(epoch FROM w.finalised_at) AS lag FROM chain_intent c "
            "JOIN energy_windows w ON c.key = w.meter_id::text || ':' || w.window_start_ms::text "
            "WHERE c.kind = 'energy-mint' AND c.state = 'confirmed'")
        size = await conn.fetchval(  # every partition of the hot readings table (table + indexes + TOAST), and the
            # per-window sums of dense windows (migration 0108)
            "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint "
            "+ pg_total_relation_size('reading_windows') FROM pg_partition_tree('reading_rows'::regclass)")
        return close, [float(m["lag"]) for m in mints], len(windows), len(mints), int(size)
    finally:
        await conn.close()


async def _scalar(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


def run(args: argparse.Namespace) -> None:
    db = f"gtx_fleet_{uuid.uuid4().hex[:10]}"
    broker = Mosquitto(False)
    tmp = Path(tempfile.mkdtemp(prefix="gtx-fleet-"))
    central: subprocess.Popen[bytes] | None = None
    fleet: Fleet | None = None
    meters = args.gateways * args.meters
    try:
        asyncio.run(_admin(f"CREATE DATABASE {db}"))
        dsn = f"{PG}/{db}"
        now_ms = time.time_ns() // 1_000_000
        start_ms = now_ms - now_ms % TICK_MS - 3 * 86_400_000  # window-aligned, days ago (time compressed)
        t = time.perf_counter()
        with mp.get_context("spawn").Pool(os.cpu_count() or 2) as pool:
            signed = pool.map(sign_gateway, [(os.urandom(32), args.meters, args.ticks, start_ms)
                                             for _ in range(args.gateways)])
        print(f"  pre-signed {meters * args.ticks:,} readings ({args.gateways:,} gateways x {args.meters} meters x "
              f"{args.ticks} ticks) in {time.perf_counter() - t:.1f} s")
        asyncio.run(_prepare(dsn, [pk for pk, _ in signed], args.meters))
        http_port = free_port()
        central = start_central(tmp, dsn, broker.port, http_port, args.workers)
        wait_ready(central, http_port, tmp / "central.log")
        fleet = Fleet(broker.port, [(device_id(pk), b) for pk, b in signed])
        cpu0, pg0 = tree_cpu(central.pid) + cpu_seconds(broker.proc.pid), postgres_cpu()
        memory: list[tuple[float, int]] = []
        sampling = threading.Event()

        pid = central.pid

        def sample() -> None:
            t0 = time.monotonic()
            while not sampling.wait(1.0):
                memory.append((time.monotonic() - t0, tree_rss(pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        t_start = time.time()
        for tick in range(args.ticks):
            fleet.publish_tick(tick, args.tick_s)
        complete = all(fleet.wait_acked(tick, 60) for tick in range(args.ticks))
        t_acked = max(fleet.acked_at.values(), default=time.time())
        expected_windows = meters * (args.ticks - 1)
        deadline = time.monotonic() + args.drain_s
        while time.monotonic() < deadline:
            done = asyncio.run(_scalar(dsn, "SELECT count(*) FROM chain_intent WHERE state = 'confirmed'"))
            if done >= expected_windows:
                break
            time.sleep(0.5)
        sampling.set()
        sampler.join()
        cpu = tree_cpu(central.pid) + cpu_seconds(broker.proc.pid) - cpu0
        pg_cpu = postgres_delta(pg0)
        close, mint, n_windows, n_mints, size = asyncio.run(_lags(dsn, fleet.device_acked_at, start_ms))
        stored = asyncio.run(_scalar(dsn, "SELECT count(*) FROM reading_rows"))
        acked = sum(fleet.acked.values())
        span = t_acked - t_start
        rate = acked / span
        print(f"fleet bench: {meters:,} meters ({args.gateways:,} gateways x {args.meters}), {args.ticks} ticks of "
              f"15 min compressed to {args.tick_s:g} s each (a {TICK_MS / 1000 / args.tick_s:,.0f}x fleet of "
              f"{meters * TICK_MS / 1000 / args.tick_s:,.0f} meters), serve --workers {args.workers}, "
              f"{os.cpu_count()} CPUs")
        print(f"  readings acked {acked:,} of {meters * args.ticks:,} ({'all' if complete else 'NOT all'}), "
              f"rejected {fleet.rejected}, rows stored {stored:,}")
        print(f"  sustained readings/s through broker, ingest and PostgreSQL: {rate:,.0f} ({ratio(rate)})")
        print(f"  window-close lag (the gateway's window-ending batch acked -> window final): "
              f"p50 {percentile(close, 50):.2f} s, "
              f"p99 {percentile(close, 99):.2f} s, max {max(close, default=math.nan):.2f} s over {n_windows:,} windows")
        print(f"  minting lag (window final -> mint confirmed on chain): p50 {percentile(mint, 50):.2f} s, "
              f"p99 {percentile(mint, 99):.2f} s, max {max(mint, default=math.nan):.2f} s; {n_mints:,} of "
              f"{expected_windows:,} windows minted")
        if memory:
            marks = [memory[int(i * (len(memory) - 1) / 4)] for i in range(5)]
            peak = max(r for _, r in memory) / 2**20
            print("  central RSS over time (all processes): "
                  + ", ".join(f"{s:.0f} s {r / 2**20:.0f} MiB" for s, r in marks) + f"; peak {peak:.0f} MiB")
        per_reading = size / max(stored, 1)
        print(f"  bytes per stored reading (reading_rows partitions + indexes + TOAST, per-window sums, as written): "
              f"{per_reading:,.0f} B")
        cpu_per_reading = (cpu + pg_cpu) / max(acked, 1)
        print(f"  CPU per reading, whole pipeline (central incl. accounting and minting, broker, PostgreSQL): "
              f"{cpu_per_reading * 1e6:,.0f} µs ({cpu:.1f} s central + broker, {pg_cpu:.1f} s PostgreSQL)")
        for fleet_meters in (1_000_000, 10_000_000):
            per_s = fleet_meters / (TICK_MS / 1000)
            cores = per_s * cpu_per_reading
            machines = math.ceil(cores / (args.cores_per_machine * args.target_utilisation))
            per_day = fleet_meters * DAY_READINGS_PER_METER * per_reading
            print(f"  {fleet_meters / 1e6:g} M meters: {per_s:,.0f} readings/s, {cores:,.1f} cores of this machine "
                  f"-> {machines} machine(s) of {args.cores_per_machine} cores at "
                  f"{args.target_utilisation:.0%}; hot storage {per_day / 1e9:,.1f} GB/day "
                  f"({fleet_meters * DAY_READINGS_PER_METER / 1e6:,.0f} M rows/day)")
    finally:
        if fleet is not None:
            fleet.close()
        if central is not None and central.poll() is None:
            os.kill(central.pid, signal.SIGTERM)
            try:
                central.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(central.pid, signal.SIGKILL)
                central.wait(5)
        broker.stop()
        with contextlib.suppress(Exception):
            asyncio.run(_admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        import shutil  # noqa: PLC0415

        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    print_baseline("bench/fleet.py")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateways", type=int, default=200)
    ap.add_argument("--meters", type=int, default=10, help="meters per gateway")
    ap.add_argument("--ticks", type=int, default=5, help="15-minute ticks simulated")
    ap.add_argument("--tick-s", type=float, default=2.0, help="wall seconds per simulated 15-minute tick")
    ap.add_argument("--workers", type=int, default=1, help="serve --workers")
    ap.add_argument("--drain-s", type=float, default=60.0, help="how long to wait for the last mints")
    ap.add_argument("--cores-per-machine", type=int, default=16)
    ap.add_argument("--target-utilisation", type=float, default=0.5)
    run(ap.parse_args())


if __name__ == "__main__":
    main()
