"""Fixtures for the edge daemon's tests: a config in a temp dir, a device key, an outbox."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.config import EdgeConfig, parse_config
from edge.outbox import Outbox
from edge.signing import ProtocolSigner
from protocol.keys import DeviceKey
from tests.edge.daemon.daemon_config import config_text


@pytest.fixture(autouse=True)
def _private_files() -> Iterator[None]:
    """Files the tests write (edge.toml with the status password inline, password files) are private, as an
    installer must make them: the daemon refuses secret files accessible by group or others (edge.secretfile)."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


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
