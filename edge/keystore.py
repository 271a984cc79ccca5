"""The device key on disk: a 32-byte Ed25519 seed in the state directory, mode 0600, written atomically.

The key never leaves the device: nothing here logs, prints or returns it except to build the signer.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError
from edge.secretfile import SecretFileError, check_secret_file

SEED_LEN = 32


class KeyStoreError(EdgeError):
    """The key file exists but cannot be used (wrong size, unsafe permissions, unreadable)."""


@dataclass(frozen=True, slots=True)
class LoadedSeed:
    seed: bytes
    created: bool  # True when this call generated the key (a brand-new device)

    def __repr__(self) -> str:  # never show the seed
        return f"LoadedSeed(created={self.created})"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_seed_atomically(path: Path, seed: bytes) -> None:
    """Write to a temporary file (0600 from the start), fsync, rename over ``path``, fsync the directory."""
    if len(seed) != SEED_LEN:
        raise KeyStoreError("a device key seed is exactly 32 bytes")
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, seed)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process created the key meanwhile: never overwrite a key
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _fsync_dir(path.parent)


def load_or_create_seed(path: Path) -> LoadedSeed:
    """Return the device's seed, generating it on first start."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        st = path.stat()
    except FileNotFoundError:
        seed = secrets.token_bytes(SEED_LEN)
        try:
            write_seed_atomically(path, seed)
        except FileExistsError:
            return LoadedSeed(read_seed(path), created=False)
        return LoadedSeed(seed, created=True)
    if not stat.S_ISREG(st.st_mode):
        raise KeyStoreError(f"{path} is not a regular file")
    return LoadedSeed(read_seed(path), created=False)


def read_seed(path: Path) -> bytes:
    try:
        check_secret_file(path, "device key")
    except SecretFileError as e:
        raise KeyStoreError(str(e)) from None
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyStoreError(f"cannot read device key {path}: {e.strerror}") from None
    if len(data) != SEED_LEN:
        raise KeyStoreError(f"device key {path} has {len(data)} bytes, expected {SEED_LEN}")
    return data
