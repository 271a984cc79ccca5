"""Edge daemon benchmark: prints steady-state RSS and CPU, outbox commit rate and backlog drain rate.

    .venv/bin/python bench/edge.py [--duration 60] [--backlog 30000]

1. Steady state: the real daemon (``python -m edge run``) polls 10 simulated SDM630 meters (``python -m
   edge.simulator``, a real pymodbus server) every 10 s, 10 DSMR 5 P1 meters (the same simulator, each pushing
   one telegram a second over its own TCP port, all of which the daemon reads, checks and keeps) and 4 ciphered DLMS
   meters (gurux's secure server: HLS-GMAC, authenticated+encrypted APDUs, frame counters in the state dir) and
   publishes to a private Mosquitto, where a test peer acks as central would. RSS (VmRSS) and CPU (utime+stime from
   /proc) are sampled after a warm-up. Targets: RSS <= 60 MB, CPU <= 3 % of one core (issue 13; 2 % before the P1
   and ciphered DLMS meters).
2. Outbox commit rate: signed readings committed one per transaction (WAL, synchronous=FULL), in the state dir's
   file system, and in batches of 10 (one poll tick of 10 meters per transaction).
3. Backlog drain: an outbox pre-filled with ``--backlog`` signed readings; the daemon starts, connects and drains
   it into Mosquitto; the peer verifies every signature and acks. Target >= 3,000 readings/s.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baseline import print_baseline, ratio  # noqa: E402 - bench/ is the script directory

from edge.keystore import load_or_create_seed  # noqa: E402
from edge.meters.base import MeterSample  # noqa: E402
from edge.outbox import Outbox  # noqa: E402
from edge.signing import ProtocolSigner  # noqa: E402
from protocol.keys import DeviceKey  # noqa: E402
from tests.edge.daemon.central_peer import TEST_CENTRAL_KEY, CentralPeer, wait_until  # noqa: E402
from tests.services import Broker, free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
STATUS_PW = "bench-status-pw"


def fetch_page(port: int, path: str) -> int:
    """A technician looking at the status page (so its memory is part of the figure)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"t:{STATUS_PW}".encode()).decode())
    with urllib.request.urlopen(req, timeout=5) as r:
        return len(r.read())


DLMS_CIPHERED = 4
KEYS = f'ek = "{bytes(range(16)).hex()}"\nak = "{bytes(range(0xD0, 0xE0)).hex()}"\n'  # the simulator's demo keys


def config(
    state: Path, mqtt_port: int, sim_port: int | None, meters: int, interval: int, status_port: int | None = None,
    p1_port: int | None = None, p1_meters: int = 0, dlms_ports: tuple[int, ...] = (), keys_file: Path | None = None,
    **mqtt: object,
) -> str:
    m = {"batch_size": 200, "inflight_batches": 8, "backlog_rate": 5000, "backlog_start_jitter_s": 0, **mqtt}
    text = (
        f'[device]\nstate_dir = "{state}"\n[poll]\nclock_check = "none"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\nreconnect_min_s = 0.2\nreconnect_max_s = 2\n'
        + "".join(f"{k} = {v}\n" for k, v in m.items())
        + f'[central]\npublic_key = "{TEST_CENTRAL_KEY.device_id}"\n'
        + "[outbox]\nmin_free_mb = 0\n"
        + (
            "[status]\nenabled = false\n"
            if status_port is None
            else f'[status]\nbind = "127.0.0.1"\nport = {status_port}\npassword = "{STATUS_PW}"\n'
        )
        + '[logging]\nlevel = "warning"\n'
    )
    if sim_port is not None:
        text += f'[[bus]]\nname = "sim"\nkind = "modbus-tcp"\nhost = "127.0.0.1"\nport = {sim_port}\n'
        for i in range(1, meters + 1):
            text += (
                f'[[meter]]\nserial = "BENCH-{i:02d}"\nbus = "sim"\nmodel = "eastron-sdm630"\nunit_id = {i}\n'
                f"poll_interval_s = {interval}\n"
            )
    for i in range(p1_meters):
        assert p1_port is not None
        text += (
            f'[[bus]]\nname = "p1-{i}"\nkind = "p1-tcp"\nhost = "127.0.0.1"\nport = {p1_port + i}\n'
            f'[[meter]]\nserial = "BENCH-P1-{i:02d}"\nbus = "p1-{i}"\nmodel = "iskraemeco-am550-nl"\n'
            f"poll_interval_s = {interval}\n"
        )
    for i, port in enumerate(dlms_ports, start=1):
        text += (
            f'[[bus]]\nname = "dlms-{i}"\nkind = "dlms-tcp"\nhost = "127.0.0.1"\nport = {port}\n'
            f'[[meter]]\nserial = "BENCH-DLMS-{i}"\nbus = "dlms-{i}"\nmodel = "landis-gyr-e450"\nauth = "hls-gmac"\n'
            f'security = "auth-enc"\nkeys_file = "{keys_file}"\npoll_interval_s = {interval}\n'
        )
    return text


def proc_stat(pid: int) -> tuple[float, int]:
    """(cpu seconds, rss bytes) of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return cpu, rss


def start(cfg: Path) -> subprocess.Popen[bytes]:
    # The same malloc setting as systemd/gridtokenx-edge.service (fewer glibc arenas for the MQTT thread).
    env = {**os.environ, "MALLOC_ARENA_MAX": "2"}
    return subprocess.Popen([sys.executable, "-m", "edge", "--config", str(cfg), "run"], cwd=ROOT, env=env)


def stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        os.kill(p.pid, signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait()


P1_METERS = 10


def free_port_run(n: int) -> int:
    """The first of ``n`` consecutive free TCP ports (one per P1 meter: each P1 port carries one meter)."""
    while True:
        first = free_port()
        if first + n < 65536 and all(_free(first + i) for i in range(1, n)):
            return first


def _free(port: int) -> bool:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def steady_state(work: Path, broker: Broker, duration: float) -> None:
    sim_port, p1_port = free_port(), free_port_run(P1_METERS)
    dlms_ports = tuple(free_port() for _ in range(DLMS_CIPHERED))
    keys_file = work / "dlms.keys.toml"
    keys_file.write_text(KEYS)
    keys_file.chmod(0o600)
    sim = subprocess.Popen(
        [sys.executable, "-m", "edge.simulator", "--port", str(sim_port), "--count", "10",
         "--p1-port", str(p1_port), "--p1-count", str(P1_METERS), "--p1-period", "1",
         *[a for p in dlms_ports for a in ("--dlms-ciphered-port", str(p))]],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert sim.stdout is not None
    sim.stdout.readline()
    cfg = work / "steady.toml"
    status_port = free_port()
    cfg.write_text(config(work / "steady", broker.port, sim_port, 10, 10, status_port=status_port, p1_port=p1_port,
                          p1_meters=P1_METERS, dlms_ports=dlms_ports, keys_file=keys_file))
    cfg.chmod(0o600)  # it holds the status password inline: a secret file (edge/secretfile.py)
    with CentralPeer(broker.host, broker.port, verify=True) as central:
        daemon = start(cfg)
        try:
            warmup = 25.0
            time.sleep(warmup - 5)
            fetch_page(status_port, "/")
            fetch_page(status_port, "/api/status")
            time.sleep(5)
            cpu0, _ = proc_stat(daemon.pid)
            t0 = time.monotonic()
            n0 = len(central.records)
            rss_max = 0
            while time.monotonic() - t0 < duration:
                time.sleep(1)
                rss_max = max(rss_max, proc_stat(daemon.pid)[1])
                if int(time.monotonic() - t0) % 10 == 0:
                    fetch_page(status_port, "/")  # the page refreshes itself every 10 s
            cpu1, rss = proc_stat(daemon.pid)
            elapsed = time.monotonic() - t0
            n = len(central.records) - n0
        finally:
            stop(daemon)
            os.kill(sim.pid, signal.SIGTERM)
            sim.wait(10)
            sim.stdout.close()
    print(f"steady state, 10 Modbus + {P1_METERS} P1 meters (1 telegram/s each) + {DLMS_CIPHERED} ciphered DLMS "
          f"meters read every 10 s, {elapsed:.0f} s after {warmup:.0f} s warm-up:")
    print(f"  RSS            {rss / 1e6:6.1f} MB (max {rss_max / 1e6:.1f} MB)   target <= 60 MB")
    print(f"  CPU            {100 * (cpu1 - cpu0) / elapsed:6.2f} % of one core          target <= 3 %")
    print(f"  readings acked {n} ({n / elapsed:.2f}/s, expected {(10 + P1_METERS + DLMS_CIPHERED) / 10:.2f}/s)")


def commit_rate(work: Path, n: int = 2000) -> None:
    key = DeviceKey.generate()
    signer = ProtocolSigner(key)
    ob = Outbox.open(work / "commit" / "outbox.sqlite", new_device=True)
    try:
        t0 = time.perf_counter()
        for i in range(n):
            ob.append("BENCH-01", MeterSample(1_700_000_000_000 + i, i, i, 100), 0, signer)
        single = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for j in range(n // 10):
            ob.append_many(
                [(f"BENCH-{k:02d}", MeterSample(1_700_000_000_000 + n + j, n + j, n + j, 1), 0) for k in range(10)],
                signer,
            )
        batched = n / (time.perf_counter() - t0)
    finally:
        ob.close()
    print("outbox commit rate (signed, WAL, synchronous=FULL):")
    print(f"  one reading per transaction   {single:8.0f} readings/s   {ratio(single)}")
    print(f"  10 readings per transaction   {batched:8.0f} readings/s   {ratio(batched)}")


def drain_rate(work: Path, broker: Broker, backlog: int) -> None:
    state = work / "drain"
    loaded = load_or_create_seed(state / "device.key")
    signer = ProtocolSigner(DeviceKey.from_seed(loaded.seed))
    ob = Outbox.open(state / "outbox.sqlite", new_device=True)
    try:
        for start_i in range(0, backlog, 1000):
            ob.append_many(
                [
                    (f"BENCH-{i % 4:02d}", MeterSample(1_700_000_000_000 + i * 15_000, i, i // 2, 500), 0)
                    for i in range(start_i, min(backlog, start_i + 1000))
                ],
                signer,
            )
    finally:
        ob.close()
    cfg = work / "drain.toml"
    cfg.write_text(config(state, broker.port, None, 0, 10, batch_size=500, inflight_batches=16, backlog_rate=100000))
    cfg.chmod(0o600)
    with CentralPeer(broker.host, broker.port, verify=True) as central:
        daemon = start(cfg)
        try:
            wait_until(lambda: len(central.records) >= 1, 30, "first batch", step=0.001)
            t0 = central.arrivals[0][0]
            wait_until(lambda: len(central.records) >= backlog, 120, "backlog drained", step=0.01)
            t1 = central.arrivals[-1][0]
            wait_until(lambda: central.batches and _depth(state) == 0, 30, "acks applied", step=0.05)
        finally:
            stop(daemon)
    assert central.conflicts == []
    assert central.errors == []
    central.check_chain()
    print(f"backlog drain into Mosquitto ({backlog} readings, each verified and acked by a central peer):")
    rate = backlog / (t1 - t0)
    print(f"  {rate:8.0f} readings/s                     target >= 3,000/s   {ratio(rate)}")


def _depth(state: Path) -> int:
    import sqlite3  # noqa: PLC0415

    conn = sqlite3.connect(f"file:{state / 'outbox.sqlite'}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    finally:
        conn.close()


def main() -> int:
    print_baseline("bench/edge.py")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=60.0, help="steady-state measuring time in seconds")
    ap.add_argument("--backlog", type=int, default=30000, help="readings in the drained backlog")
    ap.add_argument("--skip-steady", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gtx-bench-edge-", dir=os.environ.get("GTX_BENCH_DIR")) as d:
        work = Path(d)
        broker = Broker(port=free_port(), workdir=work)
        broker.start()
        try:
            commit_rate(work)
            drain_rate(work, broker, args.backlog)
            if not args.skip_steady:
                steady_state(work, broker, args.duration)
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
