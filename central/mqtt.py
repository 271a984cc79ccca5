"""The MQTT port and its adapters: one shared client per process that every subsystem publishes and subscribes
through.

``PahoMqtt`` wraps paho-mqtt 2.x (MQTT v5, its own network thread with automatic reconnect) for asyncio. The
network thread never waits for the event loop (paho holds its callback lock while delivering, and the loop needs
that lock to publish): incoming messages are handed over with ``call_soon_threadsafe`` and queued per subscription;
each subscription has ``concurrency`` consumer tasks awaiting its handler. QoS 1 messages are acknowledged (PUBACK)
only after every matching handler has finished, and the client announces an MQTT v5 Receive Maximum, so the broker
never has more than ``mqtt.receive_maximum`` unacknowledged messages in flight to this process: a slow handler
slows the broker down instead of growing a queue. QoS 0 messages have no such flow control, so the network thread
counts the QoS 0 messages (and their bytes) handed over and not yet handled, and drops new ones beyond
``mqtt.max_queued_qos0`` / ``mqtt.max_queued_qos0_bytes`` (counted in ``dropped_qos0``, logged at most every 10 s);
the announced Maximum Packet Size keeps any single message below ``mqtt.max_packet_bytes``. Memory therefore stays
bounded under any flood. Handler exceptions are logged and the next message is processed.
``InMemoryMqtt`` is the fake for unit tests (same interface, in-process routing, MQTT topic-filter rules).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from central.config import MqttConfig
from central.errors import CentralError
from central.secretfile import check_secret_file

log = logging.getLogger(__name__)


class MqttError(CentralError):
    """Publishing or subscribing failed (not connected in time, broker refused)."""


@dataclass(frozen=True)
class MqttMessage:
    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


Handler = Callable[[MqttMessage], Awaitable[None]]


def set_nodelay(_client: paho.Client, _userdata: Any, sock: Any) -> None:
    """paho ``on_socket_open`` callback: disable Nagle on the broker connection, so small acks and publishes go out
    at once instead of waiting for the peer's delayed ACK (halved publish→ack p50 in the ingest benchmark)."""
    if isinstance(sock, socket.socket):  # also ssl.SSLSocket; not paho's websocket wrapper
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def strip_share(topic_filter: str) -> str:
    """``$share/group/a/b`` → ``a/b`` (the filter messages are matched against)."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        if len(parts) == 3:
            return parts[2]
    return topic_filter


def topic_matches(topic_filter: str, topic: str) -> bool:
    """MQTT topic-filter matching (``+``, ``#``, shared-subscription prefix ignored)."""
    return bool(paho.topic_matches_sub(strip_share(topic_filter), topic))


class Mqtt(Protocol):
    """What subsystems use. Subscriptions may be added before or after the client starts."""

    @property
    def connected(self) -> bool: ...

    def subscribe(self, topic_filter: str, handler: Handler, *, qos: int = 1, concurrency: int = 1) -> None: ...

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None: ...

    async def publish_confirmed(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, wait_s: float = 10.0
    ) -> None: ...

    async def wait_connected(self, wait_s: float) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class _Subscription:
    topic_filter: str
    handler: Handler
    qos: int
    concurrency: int
    queue: asyncio.Queue[tuple[MqttMessage, _Ack | None]] = field(default_factory=asyncio.Queue)
    workers: list[asyncio.Task[None]] = field(default_factory=list)


async def _consume(sub: _Subscription) -> None:
    while True:
        msg, ack = await sub.queue.get()
        try:
            await sub.handler(msg)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("mqtt handler failed", extra={"topic": msg.topic, "filter": sub.topic_filter})
        finally:
            sub.queue.task_done()
            if ack is not None:
                ack.handled()


class _Ack:
    """Acknowledges a received message (PUBACK) once the last of its matching handlers is done."""

    __slots__ = ("_fn", "_remaining")

    def __init__(self, remaining: int, fn: Callable[[], None]) -> None:
        self._remaining = remaining
        self._fn = fn

    def handled(self) -> None:
        self._remaining -= 1
        if self._remaining == 0:
            self._fn()


class _Base:
    def __init__(self) -> None:
        self._subs: list[_Subscription] = []
        self._started = False

    def _start_workers(self, sub: _Subscription) -> None:
        for i in range(sub.concurrency):
            sub.workers.append(asyncio.create_task(_consume(sub), name=f"mqtt:{sub.topic_filter}:{i}"))

    async def _stop_workers(self) -> None:
        tasks = [t for s in self._subs for t in s.workers]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        for s in self._subs:
            s.workers.clear()

    def _add(self, topic_filter: str, handler: Handler, qos: int, concurrency: int) -> _Subscription:
        if qos not in (0, 1, 2):
            raise ValueError("qos must be 0, 1 or 2")
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        sub = _Subscription(topic_filter, handler, qos, concurrency)
        self._subs.append(sub)
        if self._started:
            self._start_workers(sub)
        return sub

    def _matching(self, topic: str) -> list[_Subscription]:
        return [s for s in self._subs if topic_matches(s.topic_filter, topic)]


class PahoMqtt(_Base):
    """paho-mqtt 2.x client bridged to asyncio. ``await start()`` / ``await stop()``; reconnects on its own."""

    def __init__(self, config: MqttConfig, *, client_id: str | None = None) -> None:
        super().__init__()
        self._config = config
        self._client_id = client_id or f"{config.client_id_prefix}-{uuid.uuid4().hex[:12]}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = threading.Event()
        #: Bumped on every (re)connect: a message id is only meaningful on the connection it arrived on.
        self._generation = 0
        #: Distinct topic filter → MQTT v5 subscription identifier.
        self._filter_ids: dict[str, int] = {}
        self._client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=paho.MQTTv5,
            manual_ack=True,
        )
        self._client.reconnect_delay_set(
            min_delay=max(1, round(config.reconnect_min_s)), max_delay=max(1, round(config.reconnect_max_s))
        )
        if config.username:
            password = None
            if config.password_file:
                check_secret_file(config.password_file, "mqtt.password_file")
                password = Path(config.password_file).read_text(encoding="utf-8").strip()
            self._client.username_pw_set(config.username, password)
        if config.tls:
            self._client.tls_set(ca_certs=config.ca_file or None)
        self._client.on_socket_open = set_nodelay
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        #: QoS 0 messages handed to the loop and not yet handled (count, payload bytes); guarded by ``_qos0_lock``.
        self._qos0_lock = threading.Lock()
        self._qos0_queued = 0
        self._qos0_bytes = 0
        self._dropped_qos0 = 0
        self._dropped_logged_at = 0.0

    @property
    def dropped_qos0(self) -> int:
        """QoS 0 messages dropped because too many were already waiting for their handlers."""
        return self._dropped_qos0

    @property
    def client_id(self) -> str:
        return self._client_id

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._started = True
        for sub in self._subs:
            self._start_workers(sub)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.ReceiveMaximum = self._config.receive_maximum
        props.MaximumPacketSize = self._config.max_packet_bytes
        self._client.connect_async(self._config.host, self._config.port, keepalive=self._config.keepalive_s,
                                   properties=props)
        self._client.loop_start()

    async def stop(self) -> None:
        self._started = False
        with contextlib.suppress(Exception):
            self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)
        await self._stop_workers()
        with self._qos0_lock:
            self._qos0_queued = self._qos0_bytes = 0

    async def wait_connected(self, wait_s: float) -> None:
        ok = await asyncio.to_thread(self._connected.wait, wait_s)
        if not ok:
            raise MqttError(f"not connected to the MQTT broker at {self._config.host}:{self._config.port} within "
                            f"{wait_s:g} s (is it running? mqtt.host, mqtt.port, mqtt.username/password_file)")

    def subscribe(self, topic_filter: str, handler: Handler, *, qos: int = 1, concurrency: int = 1) -> None:
        self._add(topic_filter, handler, qos, concurrency)
        if topic_filter not in self._filter_ids:
            self._filter_ids[topic_filter] = len(self._filter_ids) + 1
        if self.connected:
            self._subscribe_filter(self._client, topic_filter)

    def _subscribe_filter(self, client: paho.Client, topic_filter: str) -> None:
        """One broker subscription per distinct filter, tagged with an MQTT v5 subscription identifier so an
        incoming message is routed to exactly the filters it was delivered for (a message matching a shared and a
        plain subscription arrives twice, once per subscription)."""
        qos = max(s.qos for s in self._subs if s.topic_filter == topic_filter)
        props = Properties(PacketTypes.SUBSCRIBE)  # type: ignore[no-untyped-call]
        props.SubscriptionIdentifier = self._filter_ids[topic_filter]
        wire = topic_filter if self._config.shared_subscriptions else strip_share(topic_filter)
        client.subscribe(wire, qos=qos, properties=props)

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Hand the message to the client (queued while disconnected; QoS >= 1 is retried by paho)."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise MqttError(f"publish to {topic} failed: {paho.error_string(info.rc)}")

    async def publish_confirmed(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                                wait_s: float = 10.0) -> None:
        """Publish and wait for the broker's acknowledgement (PUBACK / PUBCOMP; for QoS 0: until written)."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (paho.MQTT_ERR_SUCCESS, paho.MQTT_ERR_NO_CONN):
            raise MqttError(f"publish to {topic} failed: {paho.error_string(info.rc)}")
        deadline = time.monotonic() + wait_s
        pause = 0.001
        while not info.is_published():
            if time.monotonic() > deadline:
                raise MqttError(f"publish to {topic} not acknowledged within {wait_s:g} s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    # --- paho thread callbacks -------------------------------------------------------------------------------
    def _on_connect(self, client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any) -> None:
        if reason.is_failure:
            log.warning("mqtt connect refused", extra={"reason": str(reason)})
            return
        self._generation += 1
        for topic_filter in list(self._filter_ids):
            self._subscribe_filter(client, topic_filter)
        self._connected.set()
        log.info("mqtt connected", extra={"client_id": self._client_id})

    def _on_disconnect(self, _c: paho.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self._connected.clear()
        if self._started:
            log.warning("mqtt disconnected", extra={"reason": str(reason)})

    def _on_message(self, _c: paho.Client, _u: Any, message: paho.MQTTMessage) -> None:
        # Runs on paho's network thread while paho holds its callback lock: hand over, never wait.
        loop = self._loop
        if loop is None or loop.is_closed() or not self._started:
            return
        size = len(message.payload)
        if message.qos == 0 and not self._take_qos0(size):
            return
        ids = getattr(message.properties, "SubscriptionIdentifier", None) if message.properties else None
        try:
            loop.call_soon_threadsafe(self._dispatch, message.topic, bytes(message.payload), message.qos,
                                      bool(message.retain), message.mid, self._generation, ids)
        except RuntimeError:  # the loop closed meanwhile; unacknowledged, so the broker may deliver it again
            if message.qos == 0:
                self._release_qos0(size)
            return

    def _take_qos0(self, size: int) -> bool:
        """Reserve room for one more queued QoS 0 message (any thread); False (and counted) when there is none."""
        with self._qos0_lock:
            if (self._qos0_queued < self._config.max_queued_qos0
                    and self._qos0_bytes + size <= self._config.max_queued_qos0_bytes):
                self._qos0_queued += 1
                self._qos0_bytes += size
                return True
            self._dropped_qos0 += 1
            now = time.monotonic()
            report = now - self._dropped_logged_at >= 10.0
            if report:
                self._dropped_logged_at = now
        if report:
            log.warning("mqtt: QoS 0 messages dropped, too many waiting for their handlers",
                        extra={"dropped_total": self._dropped_qos0, "max_queued": self._config.max_queued_qos0})
        return False

    def _release_qos0(self, size: int) -> None:
        with self._qos0_lock:
            self._qos0_queued = max(0, self._qos0_queued - 1)
            self._qos0_bytes = max(0, self._qos0_bytes - size)

    def _dispatch(self, topic: str, payload: bytes, qos: int, retain: bool, mid: int, generation: int,
                  ids: list[int] | int | None) -> None:
        if ids:
            wanted = {f for f, i in self._filter_ids.items() if i in (ids if isinstance(ids, list) else [ids])}
            subs = [s for s in self._subs if s.topic_filter in wanted]
        else:
            subs = self._matching(topic)

        def ack() -> None:
            if qos == 0:
                self._release_qos0(len(payload))
            elif generation == self._generation and self._started:
                self._client.ack(mid, qos)

        if not subs:
            ack()
            return
        msg = MqttMessage(topic, payload, qos, retain)
        tracker = _Ack(len(subs), ack)
        for sub in subs:
            sub.queue.put_nowait((msg, tracker))


class InMemoryMqtt(_Base):
    """In-process fake of :class:`Mqtt` for unit tests: publishes are routed to matching subscriptions and
    recorded in ``published``; retained messages are kept and delivered to later subscribers."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[MqttMessage] = []
        self.retained: dict[str, MqttMessage] = {}
        self._ids = itertools.count()

    @property
    def connected(self) -> bool:
        return True

    async def start(self) -> None:
        self._started = True
        for sub in self._subs:
            self._start_workers(sub)

    async def stop(self) -> None:
        self._started = False
        await self._stop_workers()

    async def wait_connected(self, wait_s: float) -> None:  # noqa: ARG002 - the fake is always connected
        return

    def subscribe(self, topic_filter: str, handler: Handler, *, qos: int = 1, concurrency: int = 1) -> None:
        sub = self._add(topic_filter, handler, qos, concurrency)
        for msg in self.retained.values():
            if topic_matches(topic_filter, msg.topic):
                sub.queue.put_nowait((msg, None))

    async def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        msg = MqttMessage(topic, payload, qos, retain)
        self.published.append(msg)
        if retain:
            if payload:
                self.retained[topic] = msg
            else:
                self.retained.pop(topic, None)
        for sub in self._matching(topic):
            await sub.queue.put((msg, None))

    async def publish_confirmed(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False,
                                wait_s: float = 10.0) -> None:  # noqa: ARG002 - delivery is immediate
        await self.publish(topic, payload, qos=qos, retain=retain)

    async def drain(self) -> None:
        """Wait until every queued message has been handled."""
        for sub in self._subs:
            await sub.queue.join()
