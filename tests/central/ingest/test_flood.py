"""Flood resistance (issue 10, D5): a QoS 0 flood of forged 1000-record batches through a private Mosquitto into the
real central app must neither grow central's memory without bound nor starve it: ``/healthz`` keeps answering, a
legitimate device's QoS 1 batch is still acknowledged during and after the flood."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY

from central.app import MQTT, POOL
from central.mqtt import PahoMqtt
from central.wiring import ingest as ingest_wiring
from central.wiring import readings as readings_wiring
from protocol import topics
from protocol.batch import encode_batch
from tests.central.app_env import make_config, running_app
from tests.central.device import DeviceClient, central_ack
from tests.central.gateway import Gateway, forge
from tests.central.ingest.ingest_db import Seed

SUBSYSTEMS = (ingest_wiring.SUBSYSTEM, readings_wiring.SUBSYSTEM)
FLOODER = Path(__file__).with_name("flooder.py")
ROOT = Path(__file__).resolve().parents[3]
FLOOD_MESSAGES = 1500  # x ~200 kB: ~300 MB if central queued them all
MB = 1024 * 1024


def rss_bytes() -> int:
    """Resident set size of this process, which is where the central app under test runs."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
async def central(pg_dsn: str, broker: Any, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    config = make_config(pg_dsn, tmp_path, broker, ingest={"share_group": "central", "concurrency": 2})
    async with running_app(config, SUBSYSTEMS) as client:
        yield client


@pytest.mark.slow
async def test_qos0_flood_keeps_memory_bounded_and_central_serving(
    central: TestClient[Any, Any], broker: Any, tmp_path: Path
) -> None:
    seed = Seed(central.app[POOL])
    owner = await seed.user("prosumer")
    now = time.time_ns() // 1_000_000  # the real app's clock bounds readings' age (ingest.max_age_ms)
    honest, attacker = Gateway(now_ms=now), Gateway(now_ms=now)
    await seed.device(honest, "verified", "FLOOD-OK-1", owner=owner)
    await seed.device(attacker, "verified", "FLOOD-BAD-1", owner=owner)
    # 1000 records on a registered device's topic, each with a flipped signature bit: the costliest forgery.
    payload = tmp_path / "flood.bin"
    payload.write_bytes(encode_batch([forge(attacker.read("FLOOD-BAD-1")) for _ in range(1000)]))
    dev = DeviceClient(broker.host, broker.port, [topics.ack(honest.device_id)])
    proc: asyncio.subprocess.Process | None = None
    try:
        # Warm up (first batch through every code path), then take the baseline.
        dev.publish(topics.readings(honest.device_id), encode_batch(honest.many("FLOOD-OK-1", 3)))
        assert central_ack(await dev.next(topics.ack(honest.device_id))).accepted == 3
        before = rss_bytes()
        refused_before = REGISTRY.get_sample_value(
            "gtx_ingest_messages_total", {"kind": "readings", "result": "qos0"}) or 0
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(FLOODER), broker.host, str(broker.port), topics.readings(attacker.device_id),
            str(payload), "20", str(FLOOD_MESSAGES),
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        peak = before
        health_checks = 0
        legit_sent = False
        while proc.returncode is None:
            async with asyncio.timeout(1.0):  # the bar: /healthz answers within 1 s during the flood
                resp = await central.get("/healthz")
                assert resp.status == 200
                await resp.read()
            health_checks += 1
            peak = max(peak, rss_bytes())
            if not legit_sent:  # a legitimate QoS 1 batch in the middle of the flood
                dev.publish(topics.readings(honest.device_id), encode_batch(honest.many("FLOOD-OK-1", 2)))
                legit_sent = True
            await asyncio.sleep(0.2)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        sent = int(out.decode().strip() or 0)
        peak = max(peak, rss_bytes())
        assert sent > 100, f"the flood did not happen (sent {sent})"
        assert legit_sent
        assert health_checks > 0
        ack = central_ack(await dev.next(topics.ack(honest.device_id), wait_s=30))
        assert (ack.first, ack.last, ack.accepted, ack.rejected) == (4, 5, 2, ())
        # After the flood, too.
        dev.publish(topics.readings(honest.device_id), encode_batch(honest.many("FLOOD-OK-1", 1)))
        assert central_ack(await dev.next(topics.ack(honest.device_id), wait_s=30)).accepted == 1
        assert await seed.stored(honest.device_id) == [1, 2, 3, 4, 5, 6]
        assert await seed.stored(attacker.device_id) == []
        growth = peak - before
        assert growth < 100 * MB, f"RSS grew {growth // MB} MB during a flood of {sent} x {len(payload.read_bytes())} B"
        mqtt = central.app[MQTT]
        assert isinstance(mqtt, PahoMqtt)
        refused = (REGISTRY.get_sample_value("gtx_ingest_messages_total", {"kind": "readings", "result": "qos0"})
                   or 0) - refused_before
        assert refused + mqtt.dropped_qos0 > 0, "the flood never reached central"
    finally:
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        dev.close()
