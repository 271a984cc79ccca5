"""Fixtures for the edge daemon's tests: a config in a temp dir, a device key, an outbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.config import EdgeConfig, parse_config
from edge.outbox import Outbox
from edge.signing import ProtocolSigner
from protocol.keys import DeviceKey

PASSWORD = "technician-pw-1"


def config_text(state_dir: Path, *, mqtt_port: int = 1883, extra: str = "", status_port: int = 0) -> str:
    return f"""
[device]
state_dir = "{state_dir}"

[poll]
clock_check = "none"

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
batch_size = 50
inflight_batches = 4
ack_timeout_s = 5
backlog_rate = 2000
backlog_start_jitter_s = 0
reconnect_min_s = 0.1
reconnect_max_s = 1

[outbox]
min_free_mb = 0

[status]
bind = "127.0.0.1"
port = {status_port}
password = "{PASSWORD}"
refresh_s = 2
{extra}
"""


@pytest.fixture
def cfg(tmp_path: Path) -> EdgeConfig:
    src = tmp_path / "edge.toml"
    src.write_text(config_text(tmp_path / "state"))
    return parse_config(src.read_text(), src)


@pytest.fixture
def key() -> DeviceKey:
    return DeviceKey.generate()


@pytest.fixture
def signer(key: DeviceKey) -> ProtocolSigner:
    return ProtocolSigner(key)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    ob = Outbox.open(tmp_path / "outbox.sqlite", new_device=True)
    yield ob
    ob.close()
