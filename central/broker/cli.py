"""``gridtokenx-central broker init``: the broker's first dynamic-security file and central's broker password.

Writes ``mqtt.password_file`` (32 random bytes, base64url, mode 600) unless it exists, and the plugin's initial
configuration (``central.broker.acl.initial_config``: the roles, central's client as ``mqtt.username``, no gateways)
to ``--dynsec-file`` (mode 600) unless it exists. Neither secret is printed."""

from __future__ import annotations

import json
import os
import secrets
import sys
from pathlib import Path

from central.broker.acl import initial_config
from central.config import MqttConfig
from central.errors import ConfigError
from central.secretfile import check_secret_file


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def init_command(mqtt: MqttConfig, dynsec_file: Path) -> int:
    if not mqtt.username or not mqtt.password_file:
        raise ConfigError("broker init needs mqtt.username and mqtt.password_file (central's broker credential)")
    password_file = Path(mqtt.password_file)
    if password_file.exists():
        check_secret_file(password_file, "mqtt.password_file")
        print(f"exists  {password_file}", file=sys.stderr)
    else:
        _write_secret(password_file, secrets.token_urlsafe(32) + "\n")
        print(f"created {password_file}", file=sys.stderr)
    if dynsec_file.exists():
        print(f"exists  {dynsec_file} (left as it is)", file=sys.stderr)
        return 0
    password = password_file.read_text(encoding="utf-8").strip()
    _write_secret(dynsec_file, json.dumps(initial_config(mqtt.username, password), indent=1) + "\n")
    print(f"created {dynsec_file} (central's client {mqtt.username!r}; gateways are added when registered)",
          file=sys.stderr)
    return 0
