"""The gateway's device key, wherever it lives: the seed file in the state directory (``edge.keystore``, the
default) or a secure element through PKCS#11 (``[device] key_store = "pkcs11"``: an NXP SE050 does Ed25519; SoftHSM2
stands in for it in tests), so a copied SD card cannot sign.

``TokenDeviceKey`` offers what signing needs (public key, device id, ``sign``) and nothing that returns key bytes.
The pairing code, derived from the seed for a file key, is derived for a token key from the token's own signature of
a fixed domain string (Ed25519 signatures are deterministic, RFC 8032): stable, and known only to whoever holds the
key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from edge.config import EdgeConfig, Pkcs11KeyConfig
from edge.keystore import KeyStoreError, load_or_create_seed
from protocol.keys import DeviceKey, device_id

if TYPE_CHECKING:  # python-pkcs11 is imported only when the PKCS#11 store is configured
    from gtxhsm import TokenKey

PAIRING_SECRET_DOMAIN = b"GTX/pairing-secret/v1\x00"


class TokenDeviceKey:
    """The device key in a PKCS#11 token; every signature is made by the token."""

    __slots__ = ("_key", "public_key")

    def __init__(self, key: TokenKey) -> None:
        self._key = key
        self.public_key = key.public_key

    @property
    def device_id(self) -> str:
        return device_id(self.public_key)

    def sign(self, message: bytes) -> bytes:
        from gtxhsm import HsmError  # noqa: PLC0415 - python-pkcs11 only when configured

        try:
            return self._key.sign(message)
        except HsmError as exc:
            raise KeyStoreError(str(exc)) from None

    def pairing_secret(self) -> bytes:
        return hashlib.sha256(PAIRING_SECRET_DOMAIN + self.sign(PAIRING_SECRET_DOMAIN)).digest()

    def __repr__(self) -> str:
        return f"TokenDeviceKey(device_id={self.device_id!r})"

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("device keys are not picklable")


DeviceSigner = DeviceKey | TokenDeviceKey


@dataclass(frozen=True)
class LoadedKey:
    key: DeviceSigner
    #: 32 secret bytes the pairing code is derived from (never logged, never published)
    pairing_secret: bytes = field(repr=False)
    #: True when this start generated the key (a brand-new device)
    created: bool
    close: Callable[[], None] = field(default=lambda: None, repr=False)


def _token_key(cfg: Pkcs11KeyConfig) -> LoadedKey:
    from gtxhsm import HsmError, Pkcs11Settings, Token  # noqa: PLC0415

    try:
        token = Token.open(Pkcs11Settings(cfg.module, cfg.token_label, cfg.pin_file))
    except HsmError as exc:
        raise KeyStoreError(f"device key: {exc}") from None
    try:
        created = not token.has_key(cfg.key_label)
        key = TokenDeviceKey(token.generate(cfg.key_label) if created else token.key(cfg.key_label))
        return LoadedKey(key, key.pairing_secret(), created, token.close)
    except HsmError as exc:
        token.close()
        raise KeyStoreError(f"device key: {exc}") from None
    except BaseException:
        token.close()
        raise


def load_device_key(cfg: EdgeConfig) -> LoadedKey:
    """The device key (generated on first start), from the configured store; close it when the daemon stops."""
    if cfg.key_store == "pkcs11":
        assert cfg.pkcs11 is not None  # parse_config requires the table
        return _token_key(cfg.pkcs11)
    loaded = load_or_create_seed(cfg.key_path)
    return LoadedKey(DeviceKey.from_seed(loaded.seed), loaded.seed, loaded.created)
