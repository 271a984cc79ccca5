"""Beyond Mosquitto: ejabberd's MQTT 5 service (Debian's ejabberd 23.01, ``mod_mqtt``). It refuses shared
subscriptions (CONNACK ``SharedSubscriptionAvailable = 0``; a ``$share/...`` SUBSCRIBE is answered by DISCONNECT
0x9E), which central uses to split device messages between processes; with ``mqtt.shared_subscriptions = false`` one
central process ingests through it: signed readings in, signed acks out, duplicates recognised."""

from __future__ import annotations

import asyncio
import queue
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from central.app import POOL
from central.wiring import ingest as ingest_wiring
from protocol import topics
from protocol.batch import encode_batch
from tests.central.app_env import make_config, running_app
from tests.central.device import DeviceClient, central_ack
from tests.central.gateway import Gateway
from tests.central.ingest.ingest_db import Seed
from tests.central.nodes.ejabberd import Ejabberd, ejabberd

METER = "EJ-1"


@pytest.fixture(scope="module")
def broker_ej() -> Iterator[Ejabberd]:
    with ejabberd() as ej:
        yield ej


@pytest.mark.slow
def test_ejabberd_refuses_shared_subscriptions(broker_ej: Ejabberd) -> None:
    events: queue.Queue[tuple[str, str]] = queue.Queue()
    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"p-{uuid.uuid4().hex[:8]}",
                    protocol=paho.MQTTv5)
    c.username_pw_set(broker_ej.username, broker_ej.password)
    c.on_connect = lambda _c, _u, _f, rc, props: events.put(
        ("connack", f"{rc}; shared={getattr(props, 'SharedSubscriptionAvailable', 1)}"))
    c.on_disconnect = lambda _c, _u, _f, rc, _p: events.put(("disconnect", str(rc)))
    c.connect(broker_ej.host, broker_ej.port)
    c.loop_start()
    try:
        assert events.get(timeout=10) == ("connack", "Success; shared=0")
        c.subscribe(topics.SHARED_READINGS, qos=1)
        assert events.get(timeout=10) == ("disconnect", "Shared subscription not supported")
    finally:
        c.loop_stop()


@pytest.mark.slow
async def test_ingest_through_ejabberd_without_shared_subscriptions(
    pg_dsn: str, tmp_path: Path, broker_ej: Ejabberd,
) -> None:
    secret = tmp_path / "mqtt.password"
    secret.write_text(broker_ej.password)
    secret.chmod(0o600)
    config = make_config(pg_dsn, tmp_path, broker_ej, mqtt={
        "username": broker_ej.username, "password_file": str(secret), "shared_subscriptions": False})
    async with running_app(config, (ingest_wiring.SUBSYSTEM,)) as central:
        seed = Seed(central.app[POOL])
        gw = Gateway(now_ms=time.time_ns() // 1_000_000)
        await seed.device(gw, "verified", METER)
        await asyncio.sleep(0.5)  # central's SUBACKs
        dev = DeviceClient(broker_ej.host, broker_ej.port, [topics.ack(gw.device_id)],
                           username=broker_ej.username, password=broker_ej.password)
        try:
            batches = [gw.many(METER, 5) for _ in range(4)]
            for b in batches:
                dev.publish(topics.readings(gw.device_id), encode_batch(b))
            acks = [central_ack(await dev.next(topics.ack(gw.device_id), 15)) for _ in batches]
            assert sum(a.accepted for a in acks) == 20
            assert all(a.rejected == () for a in acks)
            dev.publish(topics.readings(gw.device_id), encode_batch(batches[0]))  # a redelivery
            again = central_ack(await dev.next(topics.ack(gw.device_id), 15))
            assert (again.accepted, again.duplicate) == (0, 5)
            assert await seed.stored(gw.device_id) == list(range(1, 21))
        finally:
            dev.close()


