"""The gateway's broker login (issue 14, docs/decisions/0014-broker-dynamic-security.md).

With ``[mqtt] credential = "device-key"`` the gateway logs in as user name = its device id with the password
``protocol.broker.broker_password`` derives from its pairing code (itself derived from the key seed): the same
password central computes from the code the installer typed at registration and gives the broker then. Nothing is
stored beside the key; the password is never logged or shown.
"""

from __future__ import annotations

import dataclasses

from edge.config import MqttConfig
from protocol.broker import broker_password
from protocol.signed import pairing_code


def broker_login(cfg: MqttConfig, device_id: str, seed: bytes) -> MqttConfig:
    """``cfg`` with the user name and password the broker expects from this gateway."""
    if cfg.credential != "device-key":
        return cfg
    return dataclasses.replace(cfg, username=device_id, password=broker_password(pairing_code(seed), device_id))
