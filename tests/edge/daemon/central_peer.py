"""A test subscriber that acts as central would on the broker: verifies every record, keeps them by seq,
acks each batch, answers chain-resync requests and can send challenges — every answer sealed with the test central
key (protocol §10) that the daemon configs of these tests pin (``TEST_CENTRAL_KEY``)."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from protocol import topics
from protocol.ack import Ack
from protocol.batch import decode_batch
from protocol.challenge import ChallengeReply, verify_challenge
from protocol.errors import ProtocolError
from protocol.keys import DeviceKey, public_key_from_device_id
from protocol.record import ZERO_HASH, record_hash
from protocol.signed import PairedChallenge, seal_ack, seal_challenge, seal_sync_reply
from protocol.sync import SyncReply, SyncRequest

#: Central's signing key in the edge tests (a fixed test key; the daemon configs pin its public key).
TEST_CENTRAL_KEY = DeviceKey.from_seed(hashlib.sha256(b"gridtokenx edge tests: central").digest())


@dataclass
class CentralPeer:
    host: str
    port: int
    ack: bool = True
    verify: bool = True
    records: dict[int, bytes] = field(default_factory=dict)
    conflicts: list[int] = field(default_factory=list)
    arrivals: list[tuple[float, int]] = field(default_factory=list)  # (monotonic time, seq) of first arrival
    batches: int = 0
    errors: list[str] = field(default_factory=list)
    challenge_replies: list[tuple[str, bool]] = field(default_factory=list)
    status: dict[str, bytes] = field(default_factory=dict)
    device_ids: set[str] = field(default_factory=set)
    tls: tuple[str, str, str] | None = None  # (ca file, client cert, client key)
    username: str | None = None
    password: str | None = None
    online_count: int = 0  # "online" status messages seen (one per daemon (re)connect)
    key: DeviceKey = TEST_CENTRAL_KEY  # central's signing key
    sync_answer: tuple[int, bytes] | None = None  # (last seq, head) to answer sync requests with, instead of the truth
    sent: list[tuple[str, bytes]] = field(default_factory=list)  # (topic, payload) of every sealed message sent

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._challenges: dict[bytes, PairedChallenge] = {}
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"central-peer-{secrets.token_hex(4)}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        self._client.reconnect_delay_set(0.1, 0.5)
        if self.tls is not None:
            self._client.tls_set(ca_certs=self.tls[0], certfile=self.tls[1], keyfile=self.tls[2])
        if self.username is not None:
            self._client.username_pw_set(self.username, self.password)
        self.connected = threading.Event()

    # -- lifecycle
    def start(self) -> CentralPeer:
        self._client.connect(self.host, self.port, keepalive=10)
        self._client.loop_start()
        assert self.connected.wait(10), "central peer could not connect"
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()

    def __enter__(self) -> CentralPeer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- callbacks
    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object = None) -> None:
        client.subscribe(
            [(f"{topics.PREFIX}/+/readings", 1), (f"{topics.PREFIX}/+/sync", 1),
             (f"{topics.PREFIX}/+/challenge/reply", 1), (f"{topics.PREFIX}/+/status", 1)]
        )
        self.connected.set()

    def _on_message(self, client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            device_id, kind = topics.parse(msg.topic)
        except ProtocolError as e:
            self.errors.append(f"bad topic {msg.topic}: {e}")
            return
        payload = bytes(msg.payload)
        if kind is topics.TopicKind.READINGS:
            self._on_readings(client, device_id, payload)
        elif kind is topics.TopicKind.SYNC:
            req = SyncRequest.from_json(payload)
            with self._lock:
                last = max(self.records, default=0)
                head = record_hash(self.records[last]) if last else ZERO_HASH
            if self.sync_answer is not None:
                last, head = self.sync_answer
            answer = SyncReply(req.nonce, last, head)
            self._send(topics.sync_reply(device_id), seal_sync_reply(self.key, device_id, answer))
        elif kind is topics.TopicKind.CHALLENGE_REPLY:
            reply = ChallengeReply.from_json(payload)
            ch = self._challenges.get(reply.nonce)
            ok = False
            if ch is not None:
                try:
                    verify_challenge(public_key_from_device_id(device_id), ch.nonce, ch.expires_ms, reply.signature)
                    ok = True
                except ProtocolError:
                    ok = False
            self.challenge_replies.append((device_id, ok))
        elif kind is topics.TopicKind.STATUS:
            self.status[device_id] = payload
            if b'"online":true' in payload:
                self.online_count += 1

    def _on_readings(self, client: mqtt.Client, device_id: str, payload: bytes) -> None:
        try:
            recs = decode_batch(payload, verify=self.verify)
        except ProtocolError as e:
            self.errors.append(f"bad batch: {e}")
            return
        now = time.monotonic()
        accepted = duplicate = 0
        with self._lock:
            self.batches += 1
            self.device_ids.add(device_id)
            for r in recs:
                if r.device_id != device_id:
                    self.errors.append(f"record of {r.device_id} on topic of {device_id}")
                raw = r.encode()
                old = self.records.get(r.seq)
                if old is None:
                    self.records[r.seq] = raw
                    self.arrivals.append((now, r.seq))
                    accepted += 1
                else:
                    duplicate += 1
                    if old != raw:
                        self.conflicts.append(r.seq)
        if self.ack:
            ack = Ack(recs[0].seq, recs[-1].seq, accepted, duplicate)
            self._send(topics.ack(device_id), seal_ack(self.key, device_id, ack))

    # -- actions and checks
    def _send(self, topic: str, payload: bytes) -> None:
        with self._lock:
            self.sent.append((topic, payload))
        self._client.publish(topic, payload, qos=1)

    def publish_raw(self, topic: str, payload: bytes) -> None:
        """Publish exactly ``payload`` (a forgery, a replay) on ``topic``."""
        self._client.publish(topic, payload, qos=1)

    def challenge(self, device_id: str, pairing_code: str) -> None:
        """A sealed challenge for the pairing code the installer typed (right or wrong)."""
        nonce = secrets.token_bytes(32)
        ch = PairedChallenge.issue(
            pairing_code, nonce, public_key_from_device_id(device_id), int(time.time() * 1000) + 60_000
        )
        self._challenges[ch.nonce] = ch
        self._send(topics.challenge(device_id), seal_challenge(self.key, device_id, ch))

    def sent_on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [p for t, p in self.sent if t == topic]

    def seqs(self) -> list[int]:
        with self._lock:
            return sorted(self.records)

    def check_chain(self) -> int:
        """Every seq 1..N present, each record's prev_hash = hash of the one before. Returns N."""
        with self._lock:
            seqs = sorted(self.records)
            assert seqs == list(range(1, len(seqs) + 1)), f"gaps: {sorted(set(range(1, max(seqs) + 1)) - set(seqs))}"
            prev = ZERO_HASH
            for s in seqs:
                raw = self.records[s]
                assert raw[-96:-64] == prev, f"chain broken at seq {s}"
                prev = record_hash(raw)
            return len(seqs)


def wait_until(pred: object, timeout: float, what: str, step: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")
