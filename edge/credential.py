"""The gateway's broker login (issue 14, docs/decisions/0016-broker-dynamic-security.md).

With ``[mqtt] credential = "device-key"`` the gateway logs in as user name = its device id with the password
``protocol.broker.broker_password`` derives from its pairing code (derived from the key's pairing secret: the seed
of a file key, a token key's own signature of a fixed string — ``edge.devicekey``): the same
password central computes from the code the installer typed at registration and gives the broker then. Nothing is
stored beside the key; the password is never logged or shown.
"""

from __future__ import annotations

import dataclasses

from edge.config import MqttConfig
from protocol.broker import broker_password
from protocol.signed import pairing_code


def broker_login(cfg: MqttConfig, device_id: str, pairing_secret: bytes) -> MqttConfig:
    """``cfg`` with the user name and password the broker expects from this gateway."""
    if cfg.credential != "device-key":
        return cfg
    password = broker_password(pairing_code(pairing_secret), device_id)
    return dataclasses.replace(cfg, username=device_id, password=password)
