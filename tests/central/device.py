"""Test helper shared by the central tests: an MQTT device client (paho, MQTT v5) that publishes batches and collects
what central sends back."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from protocol.ack import Ack
from protocol.errors import BadSignatureError
from protocol.keys import DeviceKey
from protocol.signed import PairedChallenge, pairing_code, unseal_ack, unseal_challenge, unseal_sync_reply
from protocol.sync import SyncReply


class DeviceClient:
    def __init__(self, host: str, port: int, subscribe: list[str], *, username: str = "", password: str = "") -> None:
        self.inbox: dict[str, queue.Queue[bytes]] = {t: queue.Queue() for t in subscribe}
        self._subscribed = threading.Event()
        self._pending = len(subscribe)
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"dev-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        if username:
            self.client.username_pw_set(username, password)
        self.client.connect(host, port)
        self.client.loop_start()
        for t in subscribe:
            self.client.subscribe(t, qos=1)
        if not self._subscribed.wait(10):
            raise TimeoutError("device subscriptions not confirmed")

    def _on_subscribe(self, *_args: Any) -> None:
        self._pending -= 1
        if self._pending <= 0:
            self._subscribed.set()

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        for t, q in self.inbox.items():
            if paho.topic_matches_sub(t, msg.topic):
                q.put(bytes(msg.payload))

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    async def next(self, topic: str, wait_s: float = 10.0) -> bytes:
        return await asyncio.to_thread(self.inbox[topic].get, True, wait_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


#: Central's message-signing key in every test that runs central with a broker (protocol v1.1).
CENTRAL_KEY = DeviceKey.from_seed(bytes(range(200, 232)))


def write_signing_key(directory: Path) -> str:
    """Write ``CENTRAL_KEY``'s seed as a mode-600 key file in ``directory``; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "central-signing.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(CENTRAL_KEY.seed.hex() + "\n")
    return str(path)


def _device_of(data: bytes) -> str:
    device_id: str = json.loads(data)["device"]
    return device_id


def central_ack(data: bytes) -> Ack:
    """An ack central published, its envelope checked under ``CENTRAL_KEY``."""
    return unseal_ack(data, CENTRAL_KEY.public_key, _device_of(data))


def central_sync_reply(data: bytes) -> SyncReply:
    return unseal_sync_reply(data, CENTRAL_KEY.public_key, _device_of(data))


def central_challenge(data: bytes, device_seed: bytes) -> PairedChallenge:
    """A challenge central published, checked like a gateway does (central's signature and the pairing MAC);
    ``ProtocolError`` otherwise."""
    key = DeviceKey.from_seed(device_seed)
    challenge = unseal_challenge(data, CENTRAL_KEY.public_key, key.device_id)
    if not challenge.matches(pairing_code(device_seed), key.public_key):
        raise BadSignatureError("pairing MAC does not match this device's code")
    return challenge


def pairing(holder: Any) -> str:
    """The pairing code of a ``DeviceKey`` or of anything with a ``key`` (test gateways), as its status page shows
    it."""
    key = holder if isinstance(holder, DeviceKey) else holder.key
    return pairing_code(key.seed)


def registration(holder: Any) -> dict[str, str]:
    """The identifying part of a device registration body: device id and pairing code."""
    key = holder if isinstance(holder, DeviceKey) else holder.key
    return {"device_id": key.device_id, "pairing_code": pairing_code(key.seed)}
