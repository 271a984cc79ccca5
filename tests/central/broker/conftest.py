"""Fixtures of the broker tests: a private Mosquitto started from the shipped configuration (``locked``), and
central's MQTT link to it with the dynamic-security adapter (``access``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from central.broker.dynsec import DynsecAccess
from central.config import MqttConfig, parse_section
from central.mqtt import PahoMqtt
from tests.locked_broker import LockedBroker


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[LockedBroker]:
    broker = LockedBroker(tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
async def access(locked: LockedBroker) -> AsyncIterator[DynsecAccess]:
    cfg = parse_section(MqttConfig, "mqtt", {
        "host": locked.host, "port": locked.port, "username": locked.central_username,
        "password_file": str(locked.central_password_file()), "reconnect_min_s": 0.5, "reconnect_max_s": 1.0,
    })
    mqtt = PahoMqtt(cfg)
    dynsec = DynsecAccess(mqtt, timeout_s=5)
    dynsec.subscribe()
    await mqtt.start()
    try:
        await mqtt.wait_connected(10)
        yield dynsec
    finally:
        await mqtt.stop()
