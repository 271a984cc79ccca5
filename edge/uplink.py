"""The uplink service: moves signed records from the outbox to central and applies what central answers.

Three lanes share a bounded in-flight window of batches (each batch waits for central's ack, not just the
broker's PUBACK):
- *live*: records committed since the link came up — sent at once, always first;
- *backlog*: records that were already waiting when the link came up — oldest first, after a random start delay,
  rate-limited by a token bucket, never using the last window slot (so live records are never starved);
- *retry*: records central rejected for a transient reason, once their back-off is due.
A batch whose ack does not arrive within ``ack_timeout_s`` is sent again (central deduplicates on seq).

Also answers challenges (protocol §3 Challenge) and runs the chain resync (§5) when the outbox needs it.

Nothing that arrives on the device's topics is acted on unless central signed it with the key pinned in the config
(protocol §10, v1.1): forged messages and replays of genuine ones are ignored and counted on the status board
(``StatusBoard.ignored``). A challenge is signed only if its pairing MAC matches this gateway's pairing code.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from edge.config import MqttConfig, OutboxConfig
from edge.devicekey import DeviceSigner
from edge.outbox import Outbox, OutboxError, RecordSigner
from edge.status import StatusBoard
from protocol import topics
from protocol.ack import Ack
from protocol.batch import encode_batch
from protocol.challenge import ChallengeReply, sign_challenge
from protocol.errors import ProtocolError
from protocol.keys import DeviceKey
from protocol.signed import PairedChallenge, pairing_code, unseal_ack, unseal_challenge, unseal_sync_reply
from protocol.status import MAX_ALARMS, STATUS_INTERVAL_S, DeviceStatus
from protocol.sync import SyncReply, SyncRequest

log = logging.getLogger(__name__)

SYNC_RETRY_S = 30.0
META_CHALLENGE = "challenge_answered_ms"
META_ACCEPTED = "accepted_after_challenge_ms"
ANSWERED_NONCES = 256  # challenge nonces remembered (with their expiry) to refuse replays; bounded memory
MAX_QUEUED_MESSAGES = 1024  # verified messages waiting for the uplink task; beyond, they are dropped (see on_message)


def _worth_logging(count: int) -> bool:
    """Log the 1st, 2nd, 4th, 8th ... occurrence: a flood of forged messages cannot flood the log."""
    return count & (count - 1) == 0


class Link(Protocol):
    """The MQTT port. ``publish`` returns False when the link is down (nothing queued)."""

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> bool: ...


@dataclass(slots=True)
class _Batch:
    seqs: tuple[int, ...]
    lane: str
    sent_at: float


def _needs_sync(outbox: Outbox) -> bool:
    return outbox.needs_sync


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Uplink:
    def __init__(
        self,
        *,
        key: DeviceSigner,
        central_public_key: bytes,
        outbox: Outbox,
        signer: RecordSigner,
        link: Link,
        mqtt: MqttConfig,
        outbox_cfg: OutboxConfig,
        board: StatusBoard,
        version: str,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = _wall_ms,
        rng: random.Random | None = None,
        pairing_secret: bytes | None = None,
    ) -> None:
        self._key = key
        self._central_pk = bytes(central_public_key)
        if pairing_secret is None:  # a file key: the pairing code comes from its seed
            assert isinstance(key, DeviceKey)
            pairing_secret = key.seed
        self._pairing_code = pairing_code(pairing_secret)  # never logged, never published
        self._answered: dict[bytes, int] = {}  # challenge nonce -> expires_ms, insertion order
        self._outbox = outbox
        self._signer = signer
        self._link = link
        self._cfg = mqtt
        self._ob_cfg = outbox_cfg
        self._board = board
        self._version = version
        self._mono = monotonic
        self._wall = wall_ms
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self.device_id = key.device_id
        self.topic_readings = topics.readings(self.device_id)
        self.topic_status = topics.status(self.device_id)
        self.subscriptions = (
            topics.ack(self.device_id),
            topics.challenge(self.device_id),
            topics.sync_reply(self.device_id),
        )
        self.connected = False
        self._inflight: dict[int, _Batch] = {}
        self._inflight_seqs: set[int] = set()
        self._live_start = 1
        self._live_cursor = 1
        self._backlog_cursor = 0
        self._backlog_not_before = 0.0
        self._tokens = 0.0
        self._tokens_at = 0.0
        self._sync_nonce: bytes | None = None
        self._sync_sent_at = 0.0
        self._status_at = 0.0
        self._status_key: tuple[tuple[str, ...], int] = ((), 0)
        self._wake = asyncio.Event()
        # Link events and verified messages, handled in arrival order by the uplink task (``drain``), so that their
        # outbox work runs on the outbox thread and never interleaves with a pump (issue 10, D3).
        self._events: deque[tuple[str, Callable[[], Awaitable[None]]]] = deque()
        self._queued_messages = 0
        ch = outbox.get_meta(META_CHALLENGE)
        acc = outbox.get_meta(META_ACCEPTED)
        board.challenge_answered_ms = int(ch) if ch else None
        board.accepted_after_challenge_ms = int(acc) if acc else None

    # ---- events from the link (called on the event loop; handled by the uplink task) ---------------------------

    def wake(self) -> None:
        self._wake.set()

    def on_connected(self) -> None:
        self._events.append(("", self._connected))
        self.wake()

    def on_disconnected(self) -> None:
        self._events.append(("", self._disconnected))
        self.wake()

    async def _connected(self) -> None:
        self.connected = True
        last_seq, _ = await self._outbox.call(self._outbox.chain_head)
        now = self._mono()
        self._drop_inflight()
        self._live_start = self._live_cursor = last_seq + 1
        self._backlog_cursor = 0
        self._backlog_not_before = now + self._rng.uniform(0, self._cfg.backlog_start_jitter_s)
        self._tokens, self._tokens_at = 0.0, now
        self._sync_nonce = None
        await self._publish_status(now)
        log.info("uplink connected", extra={"backlog_below_seq": self._live_start})
        self.wake()

    async def _disconnected(self) -> None:
        if self.connected:
            log.warning("uplink disconnected", extra={"inflight_batches": len(self._inflight)})
        self.connected = False
        self._drop_inflight()

    def on_message(self, topic: str, payload: bytes) -> None:
        """A message on one of ``subscriptions``: acted on only if central signed it for this device (§10)."""
        pk, dev = self._central_pk, self.device_id
        ack_t, challenge_t, sync_t = self.subscriptions
        kind = "ack" if topic == ack_t else "challenge" if topic == challenge_t else "sync" if topic == sync_t else ""
        if not kind:
            return
        try:
            if kind == "ack":
                ack = unseal_ack(payload, pk, dev)
                act: Callable[[], Awaitable[None]] = functools.partial(self._on_ack, ack)
            elif kind == "challenge":
                challenge = unseal_challenge(payload, pk, dev)
                act = functools.partial(self._on_challenge, challenge)
            else:
                reply = unseal_sync_reply(payload, pk, dev)
                act = functools.partial(self._on_sync_reply, reply)
        except ProtocolError as e:
            forged = self._board.ignored.forged
            forged[kind] += 1
            if _worth_logging(forged[kind]):
                log.warning(
                    "ignored a message not signed by central (forged, or [central] public_key is wrong)",
                    extra={"kind": kind, "error": str(e), "forged_so_far": forged[kind]},
                )
            return
        if self._queued_messages >= MAX_QUEUED_MESSAGES:
            # Only a flood of replayed genuine messages gets here; dropping an ack is safe (the batch is resent
            # after ack_timeout_s and central answers "duplicate"), so is dropping a challenge or a sync reply.
            self._replayed(kind, "uplink busy: verified message dropped", queued=self._queued_messages)
            return
        self._queued_messages += 1
        self._events.append((topic, act))
        self.wake()

    async def drain(self) -> None:
        """Handle the queued link events and messages, in arrival order (called by ``pump``)."""
        while self._events:
            topic, act = self._events.popleft()
            if topic:
                self._queued_messages -= 1
            try:
                await act()
            except (OutboxError, ProtocolError, ValueError) as e:
                log.error(  # noqa: TRY400 - the message says it all; no traceback in the field logs
                    "error while applying central's message" if topic else "outbox error on a link event",
                    extra={"topic": topic, "error": str(e)},
                )

    # ---- message handlers ---------------------------------------------------------------------------------------

    async def _on_ack(self, ack: Ack) -> None:
        batch = self._inflight.get(ack.first)
        if batch is not None and batch.seqs[-1] == ack.last:
            del self._inflight[ack.first]
            self._inflight_seqs.difference_update(batch.seqs)
            seqs: tuple[int, ...] = batch.seqs
        else:
            # Only a batch actually in flight is acked; counts in an ack are never trusted (issue 10, D3). An ack
            # for an earlier connection's batch is dropped too: its records are resent and central answers
            # "duplicate", so nothing is lost. A replayed genuine ack lands here too (protocol §10).
            self._replayed("ack", "ack for a batch not in flight ignored", first=ack.first, last=ack.last)
            return
        in_batch = set(seqs)
        outcome = await self._outbox.call(
            self._outbox.apply_ack,
            seqs,
            {seq: str(reason) for seq, reason in ack.rejected if seq in in_batch},
            dead_letter_after=self._ob_cfg.dead_letter_after,
            retry_after_ms=int(self._ob_cfg.retry_after_s * 1000),
            now_ms=self._wall(),
        )
        now = self._wall()
        link = self._board.link
        link.last_ack_ms = now
        link.acked_records += outcome.deleted
        self._sync_inflight_counts()
        if ack.rejected:
            log.warning(
                "central rejected records",
                extra={
                    "rejected": [[s, str(r)] for s, r in ack.rejected[:10]],
                    "dead_lettered": outcome.dead_lettered,
                    "deferred": outcome.deferred,
                },
            )
        if ack.accepted > 0 and self._board.challenge_answered_ms is not None and not self._board.verified:
            self._board.accepted_after_challenge_ms = now
            await self._outbox.call(self._outbox.set_meta, META_ACCEPTED, str(now))
            log.info("central accepted readings after the challenge: device verified")

    def _replayed(self, kind: str, what: str, **extra: object) -> None:
        replayed = self._board.ignored.replayed
        replayed[kind] += 1
        if _worth_logging(replayed[kind]):
            log.info(what, extra={**extra, "kind": kind, "ignored_so_far": replayed[kind]})

    async def _on_challenge(self, ch: PairedChallenge) -> None:
        now = self._wall()
        if ch.expires_ms <= now:
            self._replayed("challenge", "expired challenge ignored", expires_ms=ch.expires_ms)
            return
        if ch.nonce in self._answered:
            self._replayed("challenge", "challenge already answered ignored")
            return
        if not ch.matches(self._pairing_code, self._key.public_key):
            # Central signed it, but for a pairing code typed by someone who does not stand at this gateway.
            ignored = self._board.ignored
            ignored.unpaired += 1
            if _worth_logging(ignored.unpaired):
                log.warning(
                    "challenge not signed: the pairing code entered at central is not this gateway's "
                    "(read it on the status page)",
                    extra={"unpaired_so_far": ignored.unpaired},
                )
            return
        reply = ChallengeReply(ch.nonce, sign_challenge(self._key, ch.nonce, ch.expires_ms))
        if self._link.publish(topics.challenge_reply(self.device_id), reply.to_json(), qos=1):
            self._remember_answered(ch.nonce, ch.expires_ms, now)
            self._board.challenge_answered_ms = now
            await self._outbox.call(self._outbox.set_meta, META_CHALLENGE, str(now))
            log.info("challenge answered")

    def _remember_answered(self, nonce: bytes, expires_ms: int, now: int) -> None:
        for old in [n for n, exp in self._answered.items() if exp <= now]:  # expired ones are refused anyway
            del self._answered[old]
        self._answered[nonce] = expires_ms
        while len(self._answered) > ANSWERED_NONCES:
            del self._answered[next(iter(self._answered))]

    async def _on_sync_reply(self, reply: SyncReply) -> None:
        if self._sync_nonce is None or reply.nonce != self._sync_nonce:
            self._replayed("sync", "sync reply for no outstanding request ignored")
            return
        signed = await self._outbox.call(self._outbox.apply_sync, reply.last_seq, reply.last_hash, self._signer)
        self._sync_nonce = None
        log.warning(
            "chain resynchronised with central",
            extra={"central_last_seq": reply.last_seq, "signed_pending": signed},
        )

    # ---- sending ------------------------------------------------------------------------------------------------

    def _drop_inflight(self) -> None:
        self._inflight.clear()
        self._inflight_seqs.clear()
        self._sync_inflight_counts()

    def _sync_inflight_counts(self) -> None:
        self._board.link.inflight_batches = len(self._inflight)
        self._board.link.inflight_records = len(self._inflight_seqs)

    def _send(self, rows: list[tuple[int, bytes]], lane: str) -> bool:
        """Publish one batch; False only when the link refused it (it is down)."""
        rows = [r for r in rows if r[0] not in self._inflight_seqs]
        if not rows:
            return True
        payload = encode_batch([r for _, r in rows])
        if not self._link.publish(self.topic_readings, payload, qos=1):
            return False  # link going down: the disconnect event follows; otherwise the next pump retries
        seqs = tuple(s for s, _ in rows)
        self._inflight[seqs[0]] = _Batch(seqs, lane, self._mono())
        self._inflight_seqs.update(seqs)
        link = self._board.link
        link.last_publish_ms = self._wall()
        link.published_records += len(seqs)
        self._sync_inflight_counts()
        return True

    def _expire(self, now: float) -> None:
        expired = [b for b in self._inflight.values() if now - b.sent_at > self._cfg.ack_timeout_s]
        for b in expired:
            del self._inflight[b.seqs[0]]
            self._inflight_seqs.difference_update(b.seqs)
            if b.lane == "live":
                self._live_cursor = min(self._live_cursor, b.seqs[0])
            elif b.lane == "backlog":
                self._backlog_cursor = min(self._backlog_cursor, b.seqs[0])
        if expired:
            log.warning("no ack from central in time; batches will be resent", extra={"batches": len(expired)})
            self._sync_inflight_counts()

    def _refill(self, now: float) -> None:
        rate = self._cfg.backlog_rate
        self._tokens = min(float(max(self._cfg.batch_size, rate // 5)), self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now

    async def pump(self) -> float:
        """Handle queued events (``drain``), then send what may be sent now. Returns the number of seconds after
        which to call again at the latest. Outbox reads run on the outbox thread."""
        await self.drain()
        if not self.connected:
            return 1.0
        now = self._mono()
        if now - self._status_at >= STATUS_INTERVAL_S or self._health_key() != self._status_key:
            await self._publish_status(now)
        await self._maybe_sync(now)
        self._expire(now)
        size = self._cfg.batch_size
        window = self._cfg.inflight_batches
        # 1. live records: always first.
        while len(self._inflight) < window:
            rows = await self._outbox.call(self._outbox.fetch, self._live_cursor, None, size)
            if not rows:
                break
            self._live_cursor = rows[-1][0] + 1
            if not self._send(rows, "live"):
                return 1.0
        # 2. retries that are due, then 3. backlog, rate-limited, leaving one slot for live records.
        due = await self._outbox.call(self._outbox.fetch_due_retries, self._wall(), size * 4)
        retry_rows = [r for r in due if r[0] not in self._inflight_seqs]
        while retry_rows and len(self._inflight) < window - 1:
            chunk, retry_rows = retry_rows[:size], retry_rows[size:]
            if not self._send(chunk, "retry"):
                return 1.0
        next_in = 1.0
        if now < self._backlog_not_before:
            return min(next_in, self._backlog_not_before - now)
        self._refill(now)
        while len(self._inflight) < window - 1 and self._tokens >= 1:
            n = min(size, max(1, int(self._tokens)))
            rows = await self._outbox.call(self._outbox.fetch, self._backlog_cursor, self._live_start, n)
            if not rows:
                break
            self._backlog_cursor = rows[-1][0] + 1
            sendable = [r for r in rows if r[0] not in self._inflight_seqs]
            self._tokens -= len(sendable)
            if not self._send(sendable, "backlog"):
                return 1.0
        if self._tokens < 1:
            next_in = min(next_in, (1 - self._tokens) / self._cfg.backlog_rate)
        return max(0.005, next_in)

    def _health_key(self) -> tuple[tuple[str, ...], int]:
        """What makes the status worth republishing at once (not only every ``STATUS_INTERVAL_S``)."""
        board = self._board
        return tuple(sorted(board.alarms)), sum(1 for m in board.meters.values() if m.up is False)

    async def _publish_status(self, now: float) -> None:
        """The retained status (protocol/status.py): online, outbox depth and age, meters down, alarm keys. Central
        reads it for the fleet's health; it carries nothing secret."""
        stats = await self._outbox.call(self._outbox.stats)
        self._status_key = self._health_key()
        oldest_ms = stats.oldest_timestamp_ms
        oldest = None if oldest_ms is None else max(0, (self._wall() - oldest_ms) // 1000)
        status = DeviceStatus(
            online=True,
            version=self._version,
            last_seq=stats.last_seq,
            outbox_depth=stats.depth + stats.pending_unsigned,
            oldest_age_s=oldest,
            meters_down=self._status_key[1],
            alarms=self._status_key[0][:MAX_ALARMS],
        )
        self._status_at = now
        self._link.publish(self.topic_status, status.to_json(), qos=1, retain=True)

    async def _maybe_sync(self, now: float) -> None:
        if not await self._outbox.call(_needs_sync, self._outbox):
            return
        if self._sync_nonce is not None and now - self._sync_sent_at < SYNC_RETRY_S:
            return
        self._sync_nonce = secrets.token_bytes(32)
        self._sync_sent_at = now
        self._link.publish(topics.sync(self.device_id), SyncRequest(self._sync_nonce).to_json(), qos=1)
        log.warning("outbox has no chain head; asked central for it (chain resync)")

    async def run(self) -> None:
        """Pump whenever woken (new record, ack, connect) or when a timer is due."""
        while True:
            self._wake.clear()  # before pumping: an event that arrives during the pump wakes the next round at once
            try:
                delay = await self.pump()
            except OutboxError as e:
                log.error("outbox error while publishing", extra={"error": str(e)})  # noqa: TRY400
                delay = 5.0
            except Exception:  # the uplink must keep running whatever happens; the log has the traceback
                log.exception("unexpected error in the uplink")
                delay = 5.0
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):  # not wait_for: on 3.11 it can swallow a cancellation
                    await self._wake.wait()
