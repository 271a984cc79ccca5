"""The edge's MQTT link (``edge.mqtt_link.MqttLink``) over TLS to the broker started from the shipped configuration,
under the traffic of a gateway's first session: a burst of publishes larger than the broker's Receive Maximum (20)
while central's messages arrive and each is answered at once from the event loop, as the uplink answers a challenge.

Issue 12: the answer used to be written to the TLS socket from the event loop's thread while the link's network
thread was reading the next message or acknowledging it; the two threads' TLS records interleaved, the broker saw
"decryption failed or bad record mac" and dropped the session ("disconnected: Protocol error"), and the challenge
answer was lost. Every write now happens on the network thread: the session must stay up and nothing be lost."""

from __future__ import annotations

import asyncio
import subprocess
import threading
from pathlib import Path

from central.broker.dynsec import DynsecAccess
from edge.config import MqttConfig, TlsConfig
from edge.mqtt_link import MqttLink
from edge.status import LinkState
from protocol import topics
from protocol.broker import broker_password
from protocol.keys import DeviceKey
from protocol.signed import pairing_code
from tests.central.broker.mqtt_client import Client, wait_for
from tests.locked_broker import LockedBroker
from tests.services import MOSQUITTO, Broker, free_port, wait_port

BURST = 100  # readings the gateway publishes at once, five times the broker's Receive Maximum
MESSAGES = 300  # messages central sends the gateway, each answered at once


class _Answering:
    """Link events: every message from central is answered at once on the event loop's thread."""

    def __init__(self, link: MqttLink, device_id: str) -> None:
        self.link = link
        self.reply_topic = topics.challenge_reply(device_id)
        self.connected = threading.Event()
        self.disconnects = 0
        self.unsent: list[bytes] = []

    def on_connected(self) -> None:
        self.connected.set()

    def on_disconnected(self) -> None:
        self.disconnects += 1

    def on_message(self, _topic: str, payload: bytes) -> None:
        if not self.link.publish(self.reply_topic, b"re:" + payload):
            self.unsent.append(payload)


async def test_a_gateway_session_answering_central_during_a_burst_stays_up_and_loses_nothing(
    tmp_path: Path, locked: LockedBroker, access: DynsecAccess
) -> None:
    assert locked.pki is not None
    key = DeviceKey.generate()
    device_id = key.device_id
    password = broker_password(pairing_code(key.seed), device_id)
    await access.grant(device_id, password)

    central = Client(locked.port, locked.central_username, locked.central_password).start_and_wait()
    state = LinkState(broker=f"mqtts://127.0.0.1:{locked.tls_port}")
    cfg = MqttConfig(host="127.0.0.1", port=locked.tls_port, username=device_id, password=password,
                     tls=TlsConfig(ca_file=locked.pki.ca), inflight_batches=64, reconnect_min_s=0.05)
    link = MqttLink(cfg, client_id=device_id, status_topic=topics.status(device_id),
                    subscriptions=(topics.ack(device_id), topics.challenge(device_id)),
                    loop=asyncio.get_running_loop(), state=state)
    events = _Answering(link, device_id)
    try:
        assert central.connected, central.connect_results
        for kind in (topics.TopicKind.READINGS, topics.TopicKind.CHALLENGE_REPLY):
            assert not central.subscribe(topics.topic(device_id, kind))[0].is_failure
        link.start(events)
        assert await asyncio.to_thread(events.connected.wait, 10), state.last_error
        await asyncio.sleep(0.2)  # the link's SUBSCRIBE is answered

        burst = [f"reading {i}".encode() for i in range(BURST)]
        sent = [link.publish(topics.readings(device_id), p) for p in burst]
        asked = [f"{'challenge' if i % 2 else 'ack'} {i}".encode() for i in range(MESSAGES)]
        await asyncio.to_thread(_send_all, central, device_id, asked)

        want_replies = {b"re:" + p for p in asked}
        assert await asyncio.to_thread(wait_for, lambda: (
            want_replies <= set(central.got(topics.challenge_reply(device_id)))
            and set(burst) <= set(central.got(topics.readings(device_id)))
        ) or events.disconnects > 0, 30)
        problems = [line for line in locked.log.splitlines() if device_id in line and (
            "disconnected" in line or "closed its connection" in line)]
        assert (events.disconnects, state.connects, problems, events.unsent) == (0, 1, [], [])
        assert "bad record mac" not in locked.log
        assert all(sent)
        assert set(central.got(topics.readings(device_id))) == set(burst)
        assert set(central.got(topics.challenge_reply(device_id))) == want_replies
    finally:
        await link.stop()
        central.stop()


def _send_all(central: Client, device_id: str, payloads: list[bytes]) -> None:
    """Central's messages to the gateway, acks and challenges alternating, as fast as the broker takes them."""
    infos = [central.c.publish(topics.ack(device_id) if p.startswith(b"ack") else topics.challenge(device_id), p,
                               qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(10)


class _FewInflightBroker(Broker):
    """A private anonymous Mosquitto that receives at most 5 QoS 1 messages at once (CONNACK Receive Maximum 5)."""

    def start(self) -> None:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        "max_inflight_messages 5\nlog_dest none\n")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.host, self.port)


async def test_the_link_keeps_to_the_brokers_receive_maximum(tmp_path: Path) -> None:
    """paho 2.2 ignores the CONNACK's Receive Maximum: the link caps paho's in-flight limit at it (20 until a CONNACK
    says otherwise; paho cannot change it within a session, so a lower one applies from the next session)."""
    broker = _FewInflightBroker(free_port(), tmp_path)
    state = LinkState(broker=f"mqtt://127.0.0.1:{broker.port}")
    cfg = MqttConfig(host="127.0.0.1", port=broker.port, inflight_batches=64, reconnect_min_s=0.05,
                     reconnect_max_s=0.1)
    link = MqttLink(cfg, client_id="receive-max", status_topic="gtx/v1/d/receive-max/status",
                    subscriptions=("gtx/v1/d/receive-max/ack",), loop=asyncio.get_running_loop(), state=state)
    broker.start()
    try:
        link.start(_Answering(link, "receive-max"))
        assert await asyncio.to_thread(wait_for, lambda: state.connects == 1, 10), state.last_error
        assert _inflight_limit(link) == 20  # the first session: Mosquitto's default, not inflight_batches + 4
        broker.stop()
        broker.start()
        assert await asyncio.to_thread(wait_for, lambda: state.connects == 2, 15), state.last_error
        assert _inflight_limit(link) == 5
    finally:
        await link.stop(wait_s=1)
        broker.stop()


def _inflight_limit(link: MqttLink) -> int:
    client = link._client  # the current session's paho client
    assert client is not None
    return client.max_inflight_messages
