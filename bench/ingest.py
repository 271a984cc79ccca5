"""Ingest benchmark: N simulated gateways publish pre-signed reading batches through a private Mosquitto into the
real ingest (worker processes sharing ``$share/central/gtx/v1/d/+/readings``) → PostgreSQL; prints the sustained
verified readings per second and the publish → ack latency (p50/p99); then what a stored reading costs: bytes per
reading in PostgreSQL (table + indexes over every partition) and, after archiving every partition
(``central.archive``: export, read back, compare, drop), bytes per reading in the archive files (signatures included).

    .venv/bin/python bench/ingest.py                       # 10,000 readings/s offered for 20 s, 2 workers
    .venv/bin/python bench/ingest.py --rate 0              # closed loop: as fast as acks come back (saturation)
    .venv/bin/python bench/ingest.py --workers 1 --batch 100 --devices 400

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust) and the ``mosquitto`` binary. Creates and drops its own
database; starts and stops its own broker (by PID).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import math
import multiprocessing as mp
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's packages, not an installed copy

import asyncpg
import paho.mqtt.client as paho
from baseline import print_baseline, ratio
from paho.mqtt.enums import CallbackAPIVersion

from protocol import topics
from protocol.batch import encode_batch
from protocol.keys import DeviceKey
from protocol.record import ZERO_HASH, ReadingFields, sign_reading
from protocol.signed import unseal_ack

PG = "postgresql://postgres@127.0.0.1:5432"
METER_PREFIX = "BENCH-"

#: Central's message-signing key in this benchmark (both sides run here; protocol v1.1).
BENCH_CENTRAL = DeviceKey.from_seed(hashlib.sha256(b"gridtokenx bench: central").digest())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    def __init__(self, no_delay: bool) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="gtx-bench-mqtt-")
        self.port = free_port()
        conf = Path(self.dir.name) / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 0\nmax_inflight_messages 0\nlog_dest none\n"
            + ("set_tcp_nodelay true\n" if no_delay else "")
        )
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.dir.cleanup()


# --- pre-signing (in a process pool: devices are independent) ------------------------------------------------------
def sign_device(args: tuple[bytes, int, int, int]) -> tuple[bytes, list[bytes]]:
    seed, batches, batch_size, start_ms = args
    key = DeviceKey.from_seed(seed)
    prev, imp, exp = ZERO_HASH, 1_000_000, 0
    payloads = []
    seq = 0
    for _ in range(batches):
        recs = []
        for _ in range(batch_size):
            seq += 1
            imp += 7
            exp += 3
            rec = sign_reading(
                key,
                ReadingFields(
                    meter_serial=f"{METER_PREFIX}{key.device_id[:12]}",
                    seq=seq,
                    timestamp_ms=start_ms + seq * 1000,
                    import_wh=imp,
                    export_wh=exp,
                    power_w=420,
                    prev_hash=prev,
                ),
            )
            prev = rec.hash()
            recs.append(rec)
        payloads.append(encode_batch(recs))
    return key.public_key, payloads


# --- ingest worker process -----------------------------------------------------------------------------------------
def nodelay(client: paho.Client) -> None:
    """Disable Nagle's algorithm on a connected paho client's socket (paho leaves it on)."""
    sock = client.socket()
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def worker_main(dsn: str, port: int, concurrency: int, ready: Any, stop: Any, timings: Any, no_delay: bool,
                profile: str = "") -> None:
    if not profile:
        asyncio.run(_worker(dsn, port, concurrency, ready, stop, timings, no_delay))
        return
    import cProfile  # noqa: PLC0415
    import pstats  # noqa: PLC0415

    prof = cProfile.Profile(time.thread_time)  # CPU of the event-loop thread, not wall time
    prof.enable()
    asyncio.run(_worker(dsn, port, concurrency, ready, stop, timings, no_delay))
    prof.disable()
    with open(profile, "w") as out:
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(30)


async def _worker(dsn: str, port: int, concurrency: int, ready: Any, stop: Any, timings: Any, no_delay: bool) -> None:
    from central.config import MqttConfig  # noqa: PLC0415 - imported in the worker process
    from central.ingest.metrics import IngestMetrics  # noqa: PLC0415
    from central.ingest.mqtt import IngestMqtt  # noqa: PLC0415
    from central.ingest.postgres import PgIngestStore  # noqa: PLC0415
    from central.ingest.service import IngestService  # noqa: PLC0415
    from central.ingest.settings import IngestSettings  # noqa: PLC0415
    from central.mqtt import PahoMqtt  # noqa: PLC0415

    pool = await asyncpg.create_pool(dsn, min_size=2, max_size=4)
    assert pool is not None
    mqtt = PahoMqtt(MqttConfig(host="127.0.0.1", port=port, client_id_prefix="gtx-bench-ingest"))
    metrics = IngestMetrics.for_registry()
    service = IngestService(PgIngestStore(pool), metrics=metrics)
    durations: list[float] = []
    handle = service.handle_readings

    async def timed(device_id: str, payload: bytes) -> Any:
        t = time.perf_counter()
        try:
            return await handle(device_id, payload)
        finally:
            durations.append(time.perf_counter() - t)

    service.handle_readings = timed  # type: ignore[method-assign]
    IngestMqtt(mqtt, service, metrics, signer=BENCH_CENTRAL).register(
        IngestSettings(concurrency=concurrency, device_messages_per_s=0))
    await mqtt.start()
    await mqtt.wait_connected(10)
    if no_delay:
        nodelay(mqtt._client)  # experiment only: central.mqtt does not expose its socket
    await asyncio.sleep(0.5)  # SUBACKs
    ready.set()
    await asyncio.to_thread(stop.wait)
    await mqtt.stop()
    await pool.close()
    timings.put(durations)


# --- load generator ------------------------------------------------------------------------------------------------
@dataclass
class Results:
    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: dict[tuple[str, int], float] = field(default_factory=dict)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, latency s)
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    last_ack: float = 0.0
    acked: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.acked = threading.Condition(self.lock)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> dict[int, float]:
    """CPU time per postgres process on the machine (includes other users of the server, if any)."""
    found: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    found[int(entry.name)] = cpu_seconds(int(entry.name))
    return found


def postgres_delta(before: dict[int, float]) -> float:
    """CPU used by postgres processes since ``before`` (new backends count from zero; exited ones are lost)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in postgres_cpu().items())


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def run(args: argparse.Namespace) -> None:
    db = f"gtx_bench_{uuid.uuid4().hex[:10]}"
    broker = Mosquitto(args.nodelay)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    timings = ctx.Queue()
    procs: list[mp.Process] = []
    try:
        asyncio.run(_admin(f"CREATE DATABASE {db}"))
        dsn = f"{PG}/{db}"
        per_device = (
            max(1, math.ceil(args.rate * args.duration / (args.devices * args.batch)))
            if args.rate
            else (args.closed_batches)
        )
        start_ms = time.time_ns() // 1_000_000 - 2 * 3600 * 1000 - per_device * args.batch * 1000
        t = time.perf_counter()
        with ctx.Pool(os.cpu_count() or 2) as p:
            signed = p.map(
                sign_device, [(os.urandom(32), per_device, args.batch, start_ms) for _ in range(args.devices)]
            )
        print(f"pre-signed {args.devices * per_device * args.batch:,} readings in {time.perf_counter() - t:.1f} s")
        asyncio.run(_prepare(dsn, [pk for pk, _ in signed]))

        readies = []
        for n in range(args.workers):
            ready = ctx.Event()
            proc = ctx.Process(
                target=worker_main,
                args=(dsn, broker.port, args.concurrency, ready, stop, timings, args.nodelay,
                      args.profile if n == 0 else ""),
            )
            proc.start()
            procs.append(proc)
            readies.append(ready)
        for r in readies:
            if not r.wait(30):
                raise RuntimeError("an ingest worker did not start")
        pids = {
            "ingest workers": [p.pid for p in procs if p.pid],
            "mosquitto": [broker.proc.pid],
            "load generator": [os.getpid()],
        }
        before = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}
        pg_before = postgres_cpu()
        load_before = os.getloadavg()[0]
        res = _drive(args, broker.port, signed)
        used = {k: sum(cpu_seconds(p) for p in v) - before[k] for k, v in pids.items()}
        used["postgres (all users)"] = postgres_delta(pg_before)
        stop.set()
        server: list[float] = []
        for _ in procs:
            with contextlib.suppress(Exception):
                server.extend(timings.get(timeout=15))
        count = asyncio.run(_count(dsn))
        _report(args, res, count)
        asyncio.run(_storage(dsn))
        span = res.last_ack - res.started  # type: ignore[attr-defined]
        print(
            "  CPU seconds during the run ("
            + f"{span:.1f} s wall): "
            + ", ".join(f"{k} {v:.1f}" for k, v in used.items())
            + f"; µs CPU per reading in ingest workers: {used['ingest workers'] / max(res.accepted, 1) * 1e6:.0f}"
        )
        print(
            f"  inside the workers (batch received -> ack ready): p50 {percentile(server, 50) * 1000:.1f} ms, "
            f"p99 {percentile(server, 99) * 1000:.1f} ms"
        )
        print(
            f"  machine load average (1 min) before / after: {load_before:.2f} / {os.getloadavg()[0]:.2f} "
            f"on {os.cpu_count()} CPUs (other users of the machine compete for the same cores)"
        )
    finally:
        stop.set()
        for proc in procs:
            proc.join(10)
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.join(5)
        broker.stop()
        with contextlib.suppress(Exception):
            asyncio.run(_admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _prepare(dsn: str, public_keys: list[bytes]) -> None:
    from central.db.migrations import migrate_dsn  # noqa: PLC0415

    await migrate_dsn(dsn)
    conn = await asyncpg.connect(dsn)
    try:
        devices = [(DeviceKey_id(pk), pk) for pk in public_keys]
        # registered a day before the pre-signed readings start (ingest rejects readings older than registration)
        registered = datetime.now(UTC) - timedelta(days=1)
        await conn.copy_records_to_table(
            "devices", columns=["device_id", "public_key", "status", "created_at"],
            records=[(d, pk, "verified", registered) for d, pk in devices],
        )
        await conn.copy_records_to_table(
            "meters",
            columns=["id", "serial", "device_id", "model", "protocol", "meter_key_hash"],
            records=[(uuid.uuid4(), f"{METER_PREFIX}{d[:12]}", d, "sim", "modbus", "x") for d, _ in devices],
        )
    finally:
        await conn.close()


def DeviceKey_id(public_key: bytes) -> str:  # noqa: N802 - reads as the protocol function it wraps
    from protocol.keys import device_id  # noqa: PLC0415

    return device_id(public_key)


async def _count(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM reading_rows"))
    finally:
        await conn.close()


HOT_BYTES = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint AS bytes, count(*) AS partitions
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'reading_rows'::regclass
"""


async def _storage(dsn: str) -> None:
    """Bytes per stored reading, hot (PostgreSQL) and archived (after archiving every partition of the run)."""
    from central.archive.directory import DirectoryArchiveStore  # noqa: PLC0415
    from central.archive.pg import PgArchive  # noqa: PLC0415

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        rows = int(await pool.fetchval("SELECT count(*) FROM reading_rows"))
        hot = await pool.fetchrow(HOT_BYTES)
        heap = int(await pool.fetchval(
            "SELECT coalesce(sum(pg_relation_size(i.inhrelid)), 0)::bigint FROM pg_inherits i "
            "WHERE i.inhparent = 'reading_rows'::regclass"))
        if not rows:
            print("  storage: no readings stored")
            return
        windows = int(await pool.fetchval("SELECT pg_total_relation_size('reading_windows')"))
        print(f"  hot storage: {(hot['bytes'] + windows) / rows:.0f} B per stored reading (table + indexes; table "
              f"alone {heap / rows:.0f} B; per-window sums {windows / rows:.1f} B) over {rows:,} readings in "
              f"{hot['partitions']} partition(s); budget 300 B")
        with tempfile.TemporaryDirectory(prefix="gtx-bench-archive-") as tmp:
            store = DirectoryArchiveStore(Path(tmp))
            await PgArchive(pool, store).pack_before(2**62)
            packed = await pool.fetchrow(HOT_BYTES)
            print(f"  hot storage once a partition is closed and packed (the archive job's REINDEX): "
                  f"{(packed['bytes'] + windows) / rows:.0f} B per stored reading")
            t = time.perf_counter()
            manifests = await PgArchive(pool, store).archive_before(2**62, Path(tmp))
            took = time.perf_counter() - t
            archived = sum(m.readings for m in manifests)
            data = sum(m.size for m in manifests)
            index = sum((Path(tmp) / k).stat().st_size for k in store.keys("readings/") if k.endswith(".index.parquet"))
            print(f"  archived: {(data + index) / max(archived, 1):.1f} B per reading incl. its 64-byte signature "
                  f"(file {data / max(archived, 1):.1f} B + meter index {index / max(archived, 1):.1f} B) over "
                  f"{archived:,} readings in {len(manifests)} file(s); exported, read back, compared and dropped at "
                  f"{archived / took:,.0f} readings/s; budget 100 B")
    finally:
        await pool.close()


def _drive(args: argparse.Namespace, port: int, signed: list[tuple[bytes, list[bytes]]]) -> Results:
    res = Results()
    devices = [(DeviceKey_id(pk), payloads) for pk, payloads in signed]
    next_batch = dict.fromkeys((d for d, _ in devices), 0)
    by_id = dict(devices)
    subscribed = threading.Event()
    client = paho.Client(
        callback_api_version=CallbackAPIVersion.VERSION2, client_id="gtx-bench-devices", protocol=paho.MQTTv5
    )
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)

    def publish(device: str) -> None:
        i = next_batch[device]
        payloads = by_id[device]
        if i >= len(payloads):
            return
        next_batch[device] = i + 1
        with res.lock:
            res.sent[(device, i * args.batch + 1)] = time.perf_counter()
        client.publish(topics.readings(device), payloads[i], qos=1)

    def on_message(_c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        now = time.perf_counter()
        device, _kind = topics.parse(msg.topic)
        ack = unseal_ack(bytes(msg.payload), BENCH_CENTRAL.public_key, device)  # central-signed (protocol v1.1)
        with res.lock:
            sent = res.sent.pop((device, ack.first), None)
            if sent is not None:
                res.latencies.append((sent, now - sent))
            res.accepted += ack.accepted
            res.duplicate += ack.duplicate
            res.rejected += len(ack.rejected)
            res.last_ack = now
            res.acked.notify_all()
        if not args.rate:
            publish(device)  # closed loop: the device sends its next batch once this one is acked

    client.on_message = on_message
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect("127.0.0.1", port)
    if args.nodelay:
        nodelay(client)
    client.loop_start()
    try:
        client.subscribe(f"{topics.PREFIX}/+/ack", qos=1)
        if not subscribed.wait(10):
            raise RuntimeError("no SUBACK")
        res.started = time.perf_counter()  # type: ignore[attr-defined]
        total = sum(len(p) for _, p in devices)
        if args.rate:
            interval = args.batch / args.rate
            order = [d for i in range(max(len(p) for _, p in devices)) for d, p in devices if i < len(p)]
            t0 = time.perf_counter()
            for n, device in enumerate(order):
                delay = t0 + n * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                publish(device)
        else:
            for device, _ in devices:
                publish(device)
        deadline = time.perf_counter() + args.duration + 60
        with res.lock:
            while len(res.latencies) < total and time.perf_counter() < deadline:
                res.acked.wait(1.0)
    finally:
        client.disconnect()
        client.loop_stop()
    return res


def _report(args: argparse.Namespace, res: Results, stored: int) -> None:
    started = res.started  # type: ignore[attr-defined]
    span = res.last_ack - started
    lats = [lat for sent, lat in res.latencies if sent - started >= args.warmup]
    steady = [lat for sent, lat in res.latencies]
    mode = f"offered {args.rate:,} readings/s" if args.rate else "closed loop (next batch on ack)"
    print(
        f"ingest bench: {args.devices} devices x batches of {args.batch}, {args.workers} worker process(es) x "
        f"concurrency {args.concurrency}, {mode}, {os.cpu_count()} CPUs"
    )
    print(
        f"  batches acked: {len(res.latencies):,}  readings accepted: {res.accepted:,}  duplicate: {res.duplicate}"
        f"  rejected: {res.rejected}  rows in PostgreSQL: {stored:,}"
    )
    print(f"  sustained verified readings/s into PostgreSQL: {res.accepted / span:,.0f}  (over {span:.1f} s; "
          f"{ratio(res.accepted / span)})")
    print(
        f"  publish->ack latency after {args.warmup:g} s warm-up: p50 {percentile(lats, 50) * 1000:.1f} ms, "
        f"p99 {percentile(lats, 99) * 1000:.1f} ms, max {max(lats, default=math.nan) * 1000:.1f} ms "
        f"(all batches: p50 {percentile(steady, 50) * 1000:.1f} ms, p99 {percentile(steady, 99) * 1000:.1f} ms,"
        f" mean {statistics.fmean(steady) * 1000 if steady else math.nan:.1f} ms)"
    )


def main() -> None:
    print_baseline("bench/ingest.py")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=200)
    ap.add_argument("--batch", type=int, default=50, help="records per MQTT message")
    ap.add_argument("--rate", type=int, default=10_000, help="offered readings/s (0 = closed loop)")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of offered load")
    ap.add_argument("--closed-batches", type=int, default=20, help="batches per device in closed-loop mode")
    ap.add_argument("--workers", type=int, default=2, help="ingest worker processes sharing the subscription")
    ap.add_argument("--concurrency", type=int, default=16, help="batches in flight per worker")
    ap.add_argument("--nodelay", action="store_true",
                    help="TCP_NODELAY on broker, device and worker sockets (experiment: Nagle vs small MQTT packets)")
    ap.add_argument("--profile", default="", help="write a cProfile summary of worker 0's event-loop thread here")
    ap.add_argument("--warmup", type=float, default=3.0, help="seconds excluded from the latency percentiles")
    run(ap.parse_args())


if __name__ == "__main__":
    main()
