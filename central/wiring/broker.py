"""Broker access control: central listens for the dynamic-security plugin's answers on its MQTT link."""

from __future__ import annotations

from central.errors import Unavailable
from central.mqtt import Mqtt
from central.services import Services
from central.wiring import Subsystem


def subscribe(services: Services, _mqtt: Mqtt) -> None:
    if not isinstance(services.broker, Unavailable):
        services.broker.subscribe()


SUBSYSTEM = Subsystem("broker", subscribe=subscribe)
