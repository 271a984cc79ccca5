"""``gridtokenx-central serve --workers 2``: both worker processes share the readings subscription (MQTT v5 shared
subscription) and the per-device locks keep every device's chain exact while batches of one device land in
different processes (Mosquitto hands shared-subscription messages round-robin)."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import aiohttp
import pytest

from protocol import topics
from protocol.batch import encode_batch
from tests.central.device import DeviceClient, central_ack, write_signing_key
from tests.central.gateway import Gateway
from tests.central.ingest.ingest_db import Seed
from tests.services import free_port, terminate

ROOT = Path(__file__).resolve().parents[3]


def start_serve(cfg: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "central.cli", "-c", str(cfg), "serve", "--workers", "2"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def stop_serve(proc: subprocess.Popen[bytes]) -> None:
    terminate(proc, timeout=30, kill_timeout=None)


@pytest.mark.slow
async def test_two_serve_workers_split_the_readings(pg_dsn: str, tmp_path: Path, broker: Any, seed: Seed) -> None:
    port = free_port()
    cfg = tmp_path / "central.toml"
    cfg.write_text(
        f'[database]\ndsn = "{pg_dsn}"\npool_min = 1\npool_max = 10\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        f'signing_key_file = "{write_signing_key(tmp_path / "signing")}"\n'
        f'[auth]\njwt_secret = "{secrets.token_urlsafe(40)}"\npassword_bcrypt_cost = 4\n'
        f'[mailer]\ndev_dir = "{tmp_path / "mail"}"\n'
        f'[http]\nhost = "127.0.0.1"\nport = {port}\n'
        '[log]\nlevel = "WARNING"\n'
        '[ingest]\nconcurrency = 4\n'
        # Other subsystems load too under `serve`: keep their state in this test's directory, off shared ports.
        f'[ledger]\ndata_dir = "{tmp_path / "ledger"}"\nkeys_dir = "{tmp_path / "keys"}"\nserve_rpc = false\n'
    )
    cfg.chmod(0o600)  # it holds the JWT secret inline: a secret file (central.secretfile)
    gateways = [Gateway(now_ms=time.time_ns() // 1_000_000) for _ in range(4)]  # readings' age is bounded
    for gw in gateways:
        await seed.device(gw, "verified", f"W-{gw.device_id[:8]}")
    log = (tmp_path / "serve.log").open("wb")
    proc = start_serve(cfg, log)
    devices = []
    try:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            last: object = None
            while True:  # database and broker reachable (other subsystems' readiness is not this test's concern)
                try:
                    async with http.get(f"http://127.0.0.1:{port}/readyz") as resp:
                        last = await resp.json()
                        checks = last["checks"]  # type: ignore[index]
                        if checks.get("database") == "ok" and checks.get("broker") == "ok":
                            break
                except aiohttp.ClientError as exc:
                    last = exc
                assert time.monotonic() < deadline, (last, (tmp_path / "serve.log").read_text()[:3000])
                await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # both workers subscribed
        devices = [DeviceClient(broker.host, broker.port, [topics.ack(gw.device_id)]) for gw in gateways]
        # 10 batches of 5 per device, all published at once: consecutive batches of a device go to either worker.
        for _ in range(10):
            for gw, dev in zip(gateways, devices, strict=True):
                dev.publish(topics.readings(gw.device_id), encode_batch(gw.many(f"W-{gw.device_id[:8]}", 5)))
        for gw, dev in zip(gateways, devices, strict=True):
            acks = [central_ack(await dev.next(topics.ack(gw.device_id), 30)) for _ in range(10)]
            assert sum(a.accepted for a in acks) == 50
            assert all(a.rejected == () for a in acks)
            assert await seed.stored(gw.device_id) == list(range(1, 51))
        assert await seed.pool.fetchval("SELECT count(*) FROM reading_gaps") == 0
    finally:
        for dev in devices:
            dev.close()
        stop_serve(proc)
        log.close()
    text = (tmp_path / "serve.log").read_text()
    assert "Traceback" not in text, text[-3000:]


