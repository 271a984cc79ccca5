from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from edge.keystore import KeyStoreError, load_or_create_seed, write_seed_atomically
from protocol.keys import DeviceKey


def test_first_start_generates_key_mode_0600_and_reuses_it(tmp_path: Path) -> None:
    path = tmp_path / "state" / "device.key"
    first = load_or_create_seed(path)
    assert first.created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_bytes()) == 32
    again = load_or_create_seed(path)
    assert not again.created
    assert again.seed == first.seed
    assert DeviceKey.from_seed(again.seed).device_id == DeviceKey.from_seed(first.seed).device_id
    assert first.seed.hex() not in repr(first)
    assert [p.name for p in path.parent.iterdir()] == ["device.key"]  # no temporary file left behind


def test_never_overwrites_an_existing_key(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    write_seed_atomically(path, bytes(range(32)))
    with pytest.raises(FileExistsError):
        write_seed_atomically(path, bytes(32))
    assert path.read_bytes() == bytes(range(32))


def test_refuses_world_readable_or_truncated_key(tmp_path: Path) -> None:
    path = tmp_path / "device.key"
    load_or_create_seed(path)
    os.chmod(path, 0o644)
    with pytest.raises(KeyStoreError, match="chmod 600"):
        load_or_create_seed(path)
    os.chmod(path, 0o600)
    path.write_bytes(b"short")
    with pytest.raises(KeyStoreError, match="has 5 bytes"):
        load_or_create_seed(path)
