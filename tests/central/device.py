"""Test helper shared by the central tests: an MQTT device client (paho, MQTT v5) that publishes batches and collects
what central sends back."""

from __future__ import annotations

import asyncio
import queue
import threading
import uuid
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class DeviceClient:
    def __init__(self, host: str, port: int, subscribe: list[str]) -> None:
        self.inbox: dict[str, queue.Queue[bytes]] = {t: queue.Queue() for t in subscribe}
        self._subscribed = threading.Event()
        self._pending = len(subscribe)
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"dev-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
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
