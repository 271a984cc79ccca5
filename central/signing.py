"""Central's message-signing key (protocol v1.1, §10): every ack, challenge and sync reply central publishes is
signed with it; gateways pin its public key (``gridtokenx-central signing-key show``) from their configuration.

The key file (``mqtt.signing_key_file``) holds the 32-byte Ed25519 seed as 64 hex digits. Like every secret file it
is a secret file: ``mode & 0o077 == 0`` (chmod 600), see :mod:`central.secretfile`."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from central.errors import ConfigError
from central.secretfile import check_secret_file
from protocol.errors import MalformedError
from protocol.keys import SEED_SIZE, DeviceKey, device_id


def load_signing_key(file: str) -> DeviceKey:
    """Central's signing key; ``ConfigError`` (never showing the secret) if unset, unreadable, too open or invalid."""
    if not file:
        raise ConfigError("mqtt.signing_key_file must be set (create one with: gridtokenx-central signing-key init)")
    path = Path(file)
    if not path.exists():
        raise ConfigError(f"mqtt.signing_key_file {path} does not exist (create it with: "
                          "gridtokenx-central -c <config> signing-key init)")
    try:
        check_secret_file(path, "mqtt.signing_key_file")
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"mqtt.signing_key_file cannot be read: {getattr(exc, 'strerror', None) or 'not ASCII'}") \
            from None
    try:
        seed = bytes.fromhex(text)
        return DeviceKey.from_seed(seed)
    except (ValueError, MalformedError):
        raise ConfigError(f"mqtt.signing_key_file must hold {2 * SEED_SIZE} hex digits (an Ed25519 seed)") from None


def init_signing_key(file: str) -> tuple[DeviceKey, bool]:
    """Create the key file (mode 600) with a fresh seed unless it exists; (key, created)."""
    if not file:
        raise ConfigError("mqtt.signing_key_file must be set")
    path = Path(file)
    if path.exists():
        return load_signing_key(file), False
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = secrets.token_bytes(SEED_SIZE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise ConfigError(f"mqtt.signing_key_file cannot be created: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(seed.hex() + "\n")
    return DeviceKey.from_seed(seed), True


def public_key_text(key: DeviceKey) -> str:
    """Base58, as a gateway's ``[central] public_key`` pins it (the same form as a device id)."""
    return device_id(key.public_key)
