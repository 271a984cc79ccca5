"""Gateways on PostgreSQL and MQTT: the pure ``DeviceService`` (``central.identity.gateways``, where the rules are
documented) bound to its PostgreSQL store, as central wires it today."""

from __future__ import annotations

import asyncpg

from central.config import IdentityConfig
from central.identity.gateways import DeviceService
from central.identity.model import Device, MeterInfo, NewMeter
from central.identity.postgres import PostgresDeviceStore
from central.mqtt import Mqtt
from protocol.keys import DeviceKey

__all__ = ["Device", "Devices", "MeterInfo", "NewMeter"]


class Devices(DeviceService):
    def __init__(self, pool: asyncpg.Pool, config: IdentityConfig, mqtt: Mqtt | None,
                 signer: DeviceKey | None = None) -> None:
        super().__init__(PostgresDeviceStore(pool), config, mqtt, signer)
        self._mqtt = mqtt  # tests wait for its connection
