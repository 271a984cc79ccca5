"""A stranger on an open broker publishes a huge message on the gateway's ack topic (real Mosquitto, the daemon
in-process). Central's messages are envelopes of at most 256 KiB (protocol/signed.py); the gateway tells the broker so
(MQTT 5 Maximum Packet Size in CONNECT), and the broker drops anything larger instead of sending it. Without it, paho
read the whole message (up to 256 MB by MQTT) into the Pi's memory, and copied it once more, before the uplink threw it
away as too large."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from edge.config import load_config
from edge.daemon import Daemon
from edge.meters.fake import FakeMeterReader
from protocol import topics
from tests.edge.daemon.daemon_config import config_text
from tests.edge.daemon.in_process import fake_meters, running, until


async def test_a_huge_inbound_message_never_reaches_the_gateway(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "edge.toml"
    src.write_text(config_text(tmp_path / "state", mqtt_port=broker.port))
    daemon = Daemon(load_config(src), fake_meters(FakeMeterReader("BIG-1")), flush_on_stop_s=0)
    attacker = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                           client_id=f"attacker-{secrets.token_hex(4)}", protocol=MQTTProtocolVersion.MQTTv5)
    async with running(daemon) as board:
        try:
            await until(lambda: board.link.state == "connected", 10, "the gateway connected")
            await asyncio.to_thread(attacker.connect, broker.host, broker.port, 10)
            attacker.loop_start()

            async def publish(topic: str, payload: bytes) -> None:
                await asyncio.to_thread(attacker.publish(topic, payload, qos=1).wait_for_publish, 10)

            ack_topic, challenge_topic = topics.ack(board.device_id), topics.challenge(board.device_id)
            while board.ignored.forged["ack"] == 0:  # until the gateway's subscription is in place
                await publish(ack_topic, b"{}")
                await asyncio.sleep(0.05)
            acks = board.ignored.forged["ack"]
            # in order: the huge ack, then a small forged challenge; once that is counted, the ack was handled
            # or dropped
            await publish(ack_topic, b"x" * (2 * 1024 * 1024))
            await publish(challenge_topic, b"{}")
            await until(lambda: board.ignored.forged["challenge"] >= 1, 10, "the marker counted")
            assert board.ignored.forged["ack"] == acks  # the huge one never arrived
        finally:
            attacker.loop_stop()
            attacker.disconnect()
