"""paho-mqtt 2.x adapter for the uplink's ``Link`` port.

One network thread owns the connection. Every attempt uses a fresh paho client with clean start, so nothing
paho queued for a dead connection is replayed behind the uplink's back (the uplink resends from the outbox).
Reconnects back off exponentially with jitter. Events are handed to the asyncio loop thread-safely.

Only the network thread touches the socket. paho, driven by ``loop()`` from a thread of our own (not its
``loop_start``), writes a packet at once from whichever thread calls ``publish()``; the event loop's publishes then
raced the network thread's reads and acknowledgements on the same TLS connection, the broker got corrupted records
("decryption failed or bad record mac", logged as "disconnected: Protocol error") and dropped the session, losing
the challenge answer in it (issue 12). A ``on_socket_register_write`` callback makes paho only queue the packet and
wake the network thread, which writes it.

MQTT 5 flow control: at most the broker's Receive Maximum (CONNACK) QoS 1 publishes are in flight; paho 2.2 does not
read it, so the link sets paho's in-flight limit to it (20, Mosquitto's default, until a CONNACK says otherwise;
paho cannot change it during a session, so a lower value applies from the next one).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import ssl
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.config import MqttConfig
from edge.status import LinkState
from protocol.signed import MAX_ENVELOPE
from protocol.status import OFFLINE_STATUS

log = logging.getLogger(__name__)


class LinkEvents(Protocol):
    def on_connected(self) -> None: ...

    def on_disconnected(self) -> None: ...

    def on_message(self, topic: str, payload: bytes) -> None: ...


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the TLS handshake fails (a broker certificate the gateway does not trust): paho leaves the
    failed socket to the garbage collector, one per reconnect attempt."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


def tls_context(ca_file: str, cert_file: str | None, key_file: str | None) -> ssl.SSLContext:
    """TLS client context: the broker's certificate must chain to ``ca_file`` and name the host connected to."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verify_mode CERT_REQUIRED, check_hostname on
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=ca_file)
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    ctx.sslsocket_class = _ClosingSSLSocket
    return ctx


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


#: MQTT 5 Receive Maximum assumed until the broker's CONNACK gives one: Mosquitto's default ``max_inflight_messages``.
DEFAULT_RECEIVE_MAXIMUM = 20
#: The protocol's value when a CONNACK carries no Receive Maximum.
UNLIMITED_RECEIVE_MAXIMUM = 65535
#: MQTT 5 Maximum Packet Size sent in CONNECT: central's largest envelope plus the PUBLISH header (topic, properties).
#: The broker drops larger messages instead of sending them, so a stranger on an open broker cannot make the gateway
#: read a message of up to 256 MB into memory only to throw it away.
MAX_INBOUND_PACKET = MAX_ENVELOPE + 4096


class MqttLink:
    def __init__(
        self,
        cfg: MqttConfig,
        *,
        client_id: str,
        status_topic: str,
        subscriptions: Sequence[str],
        loop: asyncio.AbstractEventLoop,
        state: LinkState,
        rng: random.Random | None = None,
    ) -> None:
        self._cfg = cfg
        self._client_id = client_id
        self._status_topic = status_topic
        self._subs = tuple(subscriptions)
        self._loop = loop
        self._state = state
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._events: LinkEvents | None = None
        self._lock = threading.Lock()
        self._client: mqtt.Client | None = None
        self._connected = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._receive_maximum = DEFAULT_RECEIVE_MAXIMUM

    # ---- public API (event loop thread) ---------------------------------------------------------------------------

    def configure_topics(self, status_topic: str, subscriptions: Sequence[str]) -> None:
        """Set the last-will/status topic and the subscriptions (before ``start``)."""
        self._status_topic = status_topic
        self._subs = tuple(subscriptions)

    def start(self, events: LinkEvents) -> None:
        self._events = events
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> bool:
        with self._lock:
            client = self._client if self._connected else None
        if client is None:
            return False
        info = client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == mqtt.MQTT_ERR_SUCCESS

    async def stop(self, final_status: bytes = OFFLINE_STATUS, wait_s: float = 5.0) -> None:
        """Publish the final (offline) status, disconnect cleanly (the network thread sends the DISCONNECT), join
        the network thread."""
        with self._lock:
            client = self._client if self._connected else None
        if client is not None:
            info = client.publish(self._status_topic, final_status, qos=1, retain=True)
            await asyncio.to_thread(_wait_published, info, wait_s)
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, wait_s + 2)
        self._state.state = "stopped"
        self._state.since_ms = _now_ms()

    # ---- network thread ------------------------------------------------------------------------------------------

    def _emit(self, name: str, *args: Any) -> None:
        events = self._events
        if events is None or self._loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # loop closed during shutdown
            self._loop.call_soon_threadsafe(getattr(events, name), *args)

    def _make_client(self) -> mqtt.Client:
        cfg = self._cfg
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        # a batch window plus status, challenge answer and sync request, within what the broker receives at once;
        # publishes beyond it wait in paho's queue (unbounded) until a PUBACK frees a slot
        client.max_inflight_messages_set(min(max(20, cfg.inflight_batches + 4), self._receive_maximum))
        client.max_queued_messages_set(0)
        client.will_set(self._status_topic, OFFLINE_STATUS, qos=1, retain=True)
        if cfg.username:
            client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls is not None:
            client.tls_set_context(tls_context(
                str(cfg.tls.ca_file),
                str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                str(cfg.tls.key_file) if cfg.tls.key_file else None,
            ))
        client.on_socket_open = _set_nodelay
        client.on_socket_register_write = _written_by_network_thread
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        if reason.is_failure:
            self._state.last_error = f"broker refused connection: {reason}"
            log.error("broker refused connection", extra={"reason": str(reason)})
            return
        self._note_receive_maximum(client, _p)
        client.subscribe([(t, 1) for t in self._subs])
        with self._lock:
            self._connected = True
        st = self._state
        st.state, st.since_ms, st.last_error = "connected", _now_ms(), None
        st.connects += 1
        self._emit("on_connected")

    def _note_receive_maximum(self, client: mqtt.Client, properties: Any) -> None:
        """Remember the broker's Receive Maximum for the next sessions' paho clients."""
        value = getattr(properties, "ReceiveMaximum", UNLIMITED_RECEIVE_MAXIMUM) if properties is not None else (
            UNLIMITED_RECEIVE_MAXIMUM)
        if not isinstance(value, int) or value < 1:
            return
        self._receive_maximum = value
        if client.max_inflight_messages > value:
            log.warning("broker receives fewer messages at once than this session may send; the next session keeps "
                        "to it", extra={"receive_maximum": value, "inflight": client.max_inflight_messages})

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        with self._lock:
            was = self._connected
            self._connected = False
        if was:
            st = self._state
            st.state, st.since_ms = "disconnected", _now_ms()
            if not self._stop.is_set():  # a deliberate stop is not news for the uplink
                st.last_error = f"connection lost: {reason}"
                self._emit("on_disconnected")

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._emit("on_message", msg.topic, bytes(msg.payload))

    def _run(self) -> None:
        cfg = self._cfg
        delay = cfg.reconnect_min_s
        while not self._stop.is_set():
            client = self._make_client()
            with self._lock:
                self._client = client
            st = self._state
            st.state, st.since_ms = "connecting", _now_ms()
            try:
                props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                props.MaximumPacketSize = MAX_INBOUND_PACKET
                client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s, clean_start=True, properties=props)
            except (OSError, ssl.SSLError, ValueError) as e:
                st.state, st.last_error = "disconnected", f"cannot connect to {cfg.host}:{cfg.port}: {e}"
                log.warning("cannot connect to broker", extra={"error": str(e), "retry_in_s": round(delay, 2)})
            else:
                while not self._stop.is_set():
                    rc = client.loop(timeout=0.1)
                    if self._connected:
                        delay = cfg.reconnect_min_s
                    if rc != mqtt.MQTT_ERR_SUCCESS:
                        break
                self._on_disconnect(client, None, None, "network loop ended")
                if self._stop.is_set():
                    # a clean DISCONNECT (the broker drops the will), written here like every other packet
                    with contextlib.suppress(Exception):
                        client.disconnect()
                        client.loop(timeout=0.2)
            if self._stop.is_set():
                break
            # exponential back-off with jitter: between half and all of the current delay
            wait = delay * (0.5 + self._rng.random() / 2)
            self._stop.wait(wait)
            delay = min(cfg.reconnect_max_s, delay * 2)
        with self._lock:
            self._client = None
            self._connected = False


def _wait_published(info: mqtt.MQTTMessageInfo, timeout: float) -> None:
    with contextlib.suppress(RuntimeError, ValueError):
        info.wait_for_publish(timeout)


def _written_by_network_thread(_client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
    """paho ``on_socket_register_write`` callback. Its presence alone matters: paho then only queues a packet and
    wakes ``loop()`` (through its socket pair) instead of writing it from the calling thread, so the network thread
    is the only one that reads or writes the (TLS) socket."""


def _set_nodelay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    """paho ``on_socket_open`` callback: disable Nagle on the broker connection (small publishes and acks go out at
    once instead of waiting for the broker's delayed ACK)."""
    if isinstance(sock, socket.socket):  # also ssl.SSLSocket
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
