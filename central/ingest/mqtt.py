"""MQTT adapter of ingest: subscriptions on the process's shared MQTT client, acks and resync replies published.

Readings and sync requests come through MQTT v5 shared subscriptions (``$share/<group>/gtx/v1/d/+/...``) so any
number of worker processes split the load; status messages (retained) go to every worker, which is harmless (an
idempotent update). Bad input never escapes a handler: malformed payloads are counted and answered, messages on
topics whose device id is not even valid are counted and dropped, and the next message is processed.
"""

from __future__ import annotations

import logging

from central.ingest.errors import StoreError
from central.ingest.metrics import IngestMetrics
from central.ingest.service import IngestService
from central.ingest.settings import IngestSettings
from central.mqtt import Mqtt, MqttMessage
from protocol import topics
from protocol.errors import ProtocolError
from protocol.topics import TopicKind

log = logging.getLogger(__name__)


class IngestMqtt:
    def __init__(self, bus: Mqtt, service: IngestService, metrics: IngestMetrics) -> None:
        self._bus = bus
        self._service = service
        self._metrics = metrics

    def register(self, settings: IngestSettings) -> None:
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
        device_id = self._device(message, TopicKind.READINGS)
        if device_id is None:
            return
        try:
            ack = await self._service.handle_readings(device_id, bytes(message.payload))
        except StoreError as exc:
            # Not acked: the device keeps the records and sends them again.
            self._metrics.count_message("readings", "store_error")
            log.warning("readings not stored", extra={"device_id": device_id, "error": str(exc)})
            return
        except Exception:
            self._metrics.count_message("readings", "error")
            log.exception("readings handler failed", extra={"device_id": device_id})
            return
        await self._bus.publish(topics.ack(device_id), ack.to_json(), qos=1)

    async def on_sync(self, message: MqttMessage) -> None:
        device_id = self._device(message, TopicKind.SYNC)
        if device_id is None:
            return
        try:
            reply = await self._service.handle_sync(device_id, bytes(message.payload))
        except StoreError as exc:
            self._metrics.count_message("sync", "store_error")
            log.warning("sync not answered", extra={"device_id": device_id, "error": str(exc)})
            return
        except Exception:
            self._metrics.count_message("sync", "error")
            log.exception("sync handler failed", extra={"device_id": device_id})
            return
        if reply is not None:
            await self._bus.publish(topics.sync_reply(device_id), reply.to_json(), qos=1)

    async def on_status(self, message: MqttMessage) -> None:
        device_id = self._device(message, TopicKind.STATUS)
        if device_id is None:
            return
        try:
            await self._service.handle_status(device_id, bytes(message.payload))
        except StoreError as exc:
            self._metrics.count_message("status", "store_error")
            log.warning("status not recorded", extra={"device_id": device_id, "error": str(exc)})
        except Exception:
            self._metrics.count_message("status", "error")
            log.exception("status handler failed", extra={"device_id": device_id})
