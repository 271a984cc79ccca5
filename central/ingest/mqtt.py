"""MQTT adapter of ingest: subscriptions on the process's shared MQTT client, acks and resync replies published.

Readings and sync requests come through MQTT v5 shared subscriptions (``$share/<group>/gtx/v1/d/+/...``) so any
number of worker processes split the load; status messages (retained) go to every worker, which is harmless (an
idempotent update). Bad input never escapes a handler: malformed payloads are counted and answered, messages on
topics whose device id is not even valid are counted and dropped, and the next message is processed.

Floods: devices publish with QoS 1 (protocol §7), so QoS 0 messages on these topics are counted (``qos0``) and
dropped before any work; each device id may send ``ingest.device_messages_per_s`` messages per second (burst
``ingest.device_burst``), more are counted (``rate_limited``) and dropped unanswered, which a real device treats
like a lost ack and sends again.

Every ack and sync reply is sealed in an envelope signed with central's key (protocol v1.1, §10); the gateway acts
only on envelopes for itself, of the kind it expects, that verify under the key it pins.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from central.ingest.errors import StoreError
from central.ingest.metrics import IngestMetrics
from central.ingest.ratelimit import DeviceRateLimiter
from central.ingest.service import IngestService
from central.ingest.settings import IngestSettings
from central.mqtt import Mqtt, MqttMessage
from protocol import topics
from protocol.errors import ProtocolError
from protocol.keys import DeviceKey
from protocol.signed import seal_ack, seal_sync_reply
from protocol.topics import TopicKind

log = logging.getLogger(__name__)


T = TypeVar("T")


class IngestMqtt:
    def __init__(
        self, bus: Mqtt, service: IngestService, metrics: IngestMetrics, *, signer: DeviceKey,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._signer = signer
        self._service = service
        self._metrics = metrics
        self._clock_s = clock_s
        self._limiter: DeviceRateLimiter | None = None

    def register(self, settings: IngestSettings) -> None:
        if settings.device_messages_per_s > 0:
            self._limiter = DeviceRateLimiter(settings.device_messages_per_s, settings.device_burst)
        self._bus.subscribe(
            topics.shared(TopicKind.READINGS, settings.share_group), self.on_readings, qos=1,
            concurrency=settings.concurrency,
        )
        self._bus.subscribe(topics.shared(TopicKind.SYNC, settings.share_group), self.on_sync, qos=1)
        self._bus.subscribe(f"{topics.PREFIX}/+/{TopicKind.STATUS}", self.on_status, qos=1)

    def _device(self, message: MqttMessage, kind: TopicKind) -> str | None:
        try:
            device_id, got = topics.parse(message.topic)
        except ProtocolError:
            self._metrics.count_message(str(kind), "bad_topic")
            return None
        return device_id if got == kind else None

    async def on_readings(self, message: MqttMessage) -> None:
        done = await self._handle(message, TopicKind.READINGS, self._service.handle_readings, "stored")
        if done is not None:
            device_id, ack = done
            await self._bus.publish(topics.ack(device_id), seal_ack(self._signer, device_id, ack), qos=1)

    async def on_sync(self, message: MqttMessage) -> None:
        done = await self._handle(message, TopicKind.SYNC, self._service.handle_sync, "answered")
        if done is not None:
            device_id, reply = done
            if reply is not None:  # None: an unknown device or an unparsable request, left unanswered
                await self._bus.publish(topics.sync_reply(device_id), seal_sync_reply(self._signer, device_id, reply),
                                        qos=1)

    async def on_status(self, message: MqttMessage) -> None:
        await self._handle(message, TopicKind.STATUS, self._service.handle_status, "recorded")

    async def _handle(
        self, message: MqttMessage, kind: TopicKind, handler: Callable[[str, bytes], Awaitable[T]], done: str
    ) -> tuple[str, T] | None:
        """(device id, ``handler``'s result) for a message on a valid device topic; None when the topic is not one
        or the handler failed (counted and logged). A store error leaves the message unanswered: the device keeps
        the records and sends them again."""
        if message.qos == 0:  # protocol §7: QoS 1; a QoS 0 flood must cost nothing
            self._metrics.count_message(str(kind), "qos0")
            return None
        device_id = self._device(message, kind)
        if device_id is None:
            return None
        if self._limiter is not None and not self._limiter.allow(device_id, self._clock_s()):
            self._metrics.count_message(str(kind), "rate_limited")
            return None
        try:
            return device_id, await handler(device_id, bytes(message.payload))
        except StoreError as exc:
            self._metrics.count_message(str(kind), "store_error")
            log.warning("%s not %s", kind, done, extra={"device_id": device_id, "error": str(exc)})
        except Exception:
            self._metrics.count_message(str(kind), "error")
            log.exception("%s handler failed", kind, extra={"device_id": device_id})
        return None
