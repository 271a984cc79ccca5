"""A blocking MQTT v5 test client (paho, its own network thread) that records what happens to it: connect results,
SUBACK reason codes, PUBACK reason codes, messages and disconnects."""

from __future__ import annotations

import ssl
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode


def wait_for(pred: Callable[[], object], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return bool(pred())


class Client:
    def __init__(self, port: int, username: str | None = None, password: str | None = None, *,
                 ca: str | None = None, reconnect: bool = False) -> None:
        self.port = port
        self.connect_results: list[ReasonCode] = []
        self.disconnects: list[ReasonCode] = []
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.pubacks: dict[int, ReasonCode] = {}
        self.messages: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:10]}",
                             protocol=paho.MQTTv5)
        if username is not None:
            self.c.username_pw_set(username, password)
        if ca is not None:
            self.c.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = self._on_disconnect
        self.c.on_subscribe = self._on_subscribe
        self.c.on_publish = self._on_publish
        self.c.on_message = self._on_message
        self._reconnect = reconnect

    # paho callbacks (network thread)
    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.connect_results.append(reason)

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self.disconnects.append(reason)

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, codes: list[ReasonCode], _p: Any) -> None:
        self.subacks[mid] = codes

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        self.pubacks[mid] = reason

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))

    # ---
    @property
    def connected(self) -> bool:
        return bool(self.connect_results) and not self.connect_results[-1].is_failure and self.c.is_connected()

    def start(self) -> Client:
        if not self._reconnect:
            self.c.reconnect_delay_set(60, 60)
        self.c.connect_async("127.0.0.1", self.port, keepalive=30)
        self.c.loop_start()
        return self

    def start_and_wait(self) -> Client:
        self.start()
        assert wait_for(lambda: self.connect_results or self.disconnects), "no answer to CONNECT"
        return self

    def stop(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()

    def subscribe(self, topic_filter: str) -> list[ReasonCode]:
        _rc, sub_mid = self.c.subscribe(topic_filter, qos=1)
        assert sub_mid is not None
        mid: int = sub_mid
        assert wait_for(lambda: mid in self.subacks), f"no SUBACK for {topic_filter}"
        return self.subacks[mid]

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.c.publish(topic, payload, qos=1)
        assert wait_for(lambda: info.mid in self.pubacks), f"no PUBACK for {topic}"
        return self.pubacks[info.mid]

    def got(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.messages if t == topic]
