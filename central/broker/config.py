"""The ``[broker]`` table: whether central manages the broker's access control (``central.broker``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from gtxconfig import Range


@dataclass(frozen=True)
class BrokerConfig:
    #: Central manages gateways' broker access through Mosquitto's dynamic-security plugin: registering a gateway
    #: creates its broker client, revoking it deletes the client (and disconnects it). Needs a broker started from
    #: ``firmware-config/mosquitto/`` and central's MQTT user holding the ``gtx-broker-admin`` role
    #: (``gridtokenx-central broker init`` sets both up). Off: the broker's access control is left alone (development
    #: brokers).
    dynsec: bool = False
    #: How long a dynamic-security command may wait for the broker's answer.
    command_timeout_s: Annotated[float, Range(0.5, 120)] = 10.0
