"""Ingest: verified readings over MQTT (shared readings and sync subscriptions, device status), stored in
PostgreSQL. Settings come from the ``[ingest]`` config table."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from central.errors import ConfigError, Unavailable
from central.ingest.mqtt import IngestMqtt
from central.mqtt import Mqtt
from central.services import Services
from central.wiring import Subsystem


def subscribe(services: Services, mqtt: Mqtt) -> None:
    ingest = services.ingest
    if isinstance(ingest, Unavailable):
        return
    if services.signer is None:  # the app loads the key whenever MQTT is on
        raise ConfigError("ingest needs central's signing key (mqtt.signing_key_file)")
    IngestMqtt(mqtt, ingest.service, ingest.metrics, signer=services.signer).register(services.config.ingest)


@contextlib.asynccontextmanager
async def lifetime(services: Services) -> AsyncIterator[None]:
    yield
    if not isinstance(services.ingest, Unavailable):
        await services.ingest.service.close()  # after the group in flight; unacked batches are re-sent by devices


SUBSYSTEM = Subsystem("ingest", subscribe=subscribe, lifetime=lifetime)
