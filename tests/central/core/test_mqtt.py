"""The shared MQTT client against a private Mosquitto: routing, handler failures, reconnect after an outage;
and the in-memory fake behaving the same way."""

from __future__ import annotations

import asyncio

import pytest

from central.config import MqttConfig
from central.mqtt import InMemoryMqtt, MqttMessage, PahoMqtt, topic_matches


async def _until(pred, seconds: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.05)):
        if pred():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not reached")


async def test_paho_client_routes_survives_handler_errors_and_reconnects(broker) -> None:
    client = PahoMqtt(MqttConfig(host=broker.host, port=broker.port, reconnect_min_s=0.5, reconnect_max_s=1.0))
    got: list[MqttMessage] = []

    async def handler(msg: MqttMessage) -> None:
        if msg.payload == b"boom":
            raise RuntimeError("handler bug")
        got.append(msg)

    client.subscribe("$share/central/gtx/v1/d/+/status", handler)
    await client.start()
    try:
        await client.wait_connected(5)
        await asyncio.sleep(0.2)
        await client.publish_confirmed("gtx/v1/d/A/status", b"boom")
        await client.publish_confirmed("gtx/v1/d/A/status", b"one")
        await client.publish("gtx/v1/d/A/other", b"ignored")
        await _until(lambda: len(got) == 1)
        assert got[0].topic == "gtx/v1/d/A/status"

        broker.stop()
        await _until(lambda: not client.connected)
        broker.start()
        await client.wait_connected(10)
        await asyncio.sleep(0.2)
        await client.publish_confirmed("gtx/v1/d/B/status", b"two")
        await _until(lambda: len(got) == 2)
        assert got[1].payload == b"two"
    finally:
        await client.stop()


async def test_in_memory_fake_matches_filters_and_keeps_retained() -> None:
    fake = InMemoryMqtt()
    seen: list[str] = []

    async def h(msg: MqttMessage) -> None:
        seen.append(msg.topic)

    await fake.publish("gtx/v1/d/X/status", b"on", retain=True)
    fake.subscribe("gtx/v1/d/+/status", h)
    await fake.start()
    await fake.publish("gtx/v1/d/Y/status", b"on")
    await fake.publish("gtx/v1/d/Y/ack", b"no")
    await fake.drain()
    await fake.stop()
    assert seen == ["gtx/v1/d/X/status", "gtx/v1/d/Y/status"]


@pytest.mark.parametrize(("flt", "topic", "ok"), [
    ("$share/central/gtx/v1/d/+/readings", "gtx/v1/d/abc/readings", True),
    ("gtx/v1/d/+/readings", "gtx/v1/d/abc/ack", False),
    ("gtx/#", "gtx/v1/d/abc/challenge/reply", True),
])
def test_topic_matching(flt: str, topic: str, ok: bool) -> None:
    assert topic_matches(flt, topic) is ok


async def test_overlapping_subscriptions_are_routed_once_each(broker) -> None:
    client = PahoMqtt(MqttConfig(host=broker.host, port=broker.port))
    shared: list[str] = []
    plain: list[str] = []
    plain2: list[str] = []

    async def on_shared(msg: MqttMessage) -> None:
        shared.append(msg.topic)

    async def on_plain(msg: MqttMessage) -> None:
        plain.append(msg.topic)

    async def on_plain2(msg: MqttMessage) -> None:
        plain2.append(msg.topic)

    client.subscribe("$share/central/gtx/v1/d/+/status", on_shared)
    client.subscribe("gtx/v1/d/+/status", on_plain)
    client.subscribe("gtx/v1/d/+/status", on_plain2)
    await client.start()
    try:
        await client.wait_connected(5)
        await asyncio.sleep(0.2)
        for i in range(3):
            await client.publish_confirmed(f"gtx/v1/d/D{i}/status", b"{}")
        await _until(lambda: len(shared) == len(plain) == len(plain2) == 3)
        await asyncio.sleep(0.2)
        assert len(shared) == len(plain) == len(plain2) == 3, "one copy per handler, no duplicates"
    finally:
        await client.stop()


async def test_unacknowledged_messages_are_bounded_by_receive_maximum(broker) -> None:
    client = PahoMqtt(MqttConfig(host=broker.host, port=broker.port, receive_maximum=2))
    release = asyncio.Event()
    started: list[bytes] = []

    async def slow(msg: MqttMessage) -> None:
        started.append(msg.payload)
        await release.wait()

    client.subscribe("slow/#", slow, qos=1, concurrency=5)
    await client.start()
    try:
        await client.wait_connected(5)
        await asyncio.sleep(0.2)
        for i in range(5):
            await client.publish_confirmed(f"slow/{i}", str(i).encode())
        await _until(lambda: len(started) == 2)
        await asyncio.sleep(0.3)
        assert len(started) == 2, "the broker holds back what the handlers have not acknowledged"
        release.set()
        await _until(lambda: len(started) == 5)
        assert sorted(started) == [b"0", b"1", b"2", b"3", b"4"]
    finally:
        release.set()
        await client.stop()


async def test_queued_qos0_messages_are_bounded_and_qos1_never_dropped(broker) -> None:
    """Issue 10 D5: QoS 0 has no broker flow control; beyond ``max_queued_qos0`` waiting messages the client drops
    QoS 0 instead of queueing without bound, while QoS 1 (bounded by Receive Maximum) is never dropped."""
    client = PahoMqtt(MqttConfig(host=broker.host, port=broker.port, max_queued_qos0=3))
    release = asyncio.Event()
    got: list[tuple[int, bytes]] = []

    async def slow(msg: MqttMessage) -> None:
        await release.wait()
        got.append((msg.qos, msg.payload))

    client.subscribe("flood/#", slow, qos=1)
    await client.start()
    try:
        await client.wait_connected(5)
        await asyncio.sleep(0.2)
        for i in range(50):
            await client.publish_confirmed(f"flood/{i}", b"q0-%d" % i, qos=0)
        for i in range(5):
            await client.publish_confirmed(f"flood/x{i}", b"q1-%d" % i, qos=1)
        await _until(lambda: client.dropped_qos0 == 47)
        release.set()
        await _until(lambda: len(got) == 8)
        await asyncio.sleep(0.3)
        assert sorted(p for q, p in got if q == 0) == [b"q0-0", b"q0-1", b"q0-2"]
        assert sorted(p for q, p in got if q == 1) == [b"q1-%d" % i for i in range(5)]
        # The budget is given back once handled: QoS 0 flows again.
        await client.publish_confirmed("flood/again", b"q0-again", qos=0)
        await _until(lambda: len(got) == 9)
        assert client.dropped_qos0 == 47
    finally:
        release.set()
        await client.stop()
