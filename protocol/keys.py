"""Device keys: Ed25519 (RFC 8032). Device id = base58 of the 32-byte public key."""

from __future__ import annotations

from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from protocol.base58 import b58decode, b58encode
from protocol.errors import BadSignatureError, MalformedError

SEED_SIZE = 32
PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64


class SigningKey(Protocol):
    """What signing needs of a key: ``DeviceKey`` (the seed in memory) or a key in a secure element whose private
    half never leaves it (the gateway's PKCS#11 option, ``edge.keystore``)."""

    @property
    def public_key(self) -> bytes: ...

    def sign(self, message: bytes) -> bytes: ...


class DeviceKey:
    """A device's signing key. Its ``repr`` never shows the secret."""

    __slots__ = ("_private", "_public")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self._public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @classmethod
    def generate(cls) -> DeviceKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> DeviceKey:
        if len(seed) != SEED_SIZE:
            raise MalformedError(f"an Ed25519 seed is {SEED_SIZE} bytes, got {len(seed)}")
        return cls(Ed25519PrivateKey.from_private_bytes(bytes(seed)))

    @property
    def seed(self) -> bytes:
        return self._private.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    @property
    def public_key(self) -> bytes:
        return self._public

    @property
    def device_id(self) -> str:
        return b58encode(self._public)

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)

    def __repr__(self) -> str:
        return f"DeviceKey(device_id={self.device_id!r})"


def device_id(public_key: bytes) -> str:
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise MalformedError(f"a public key is {PUBLIC_KEY_SIZE} bytes, got {len(public_key)}")
    return b58encode(public_key)


def public_key_from_device_id(text: str) -> bytes:
    """The 32-byte public key behind a device id (or wallet address); ``MalformedError`` if it is not one."""
    raw = b58decode(text)
    if len(raw) != PUBLIC_KEY_SIZE or b58encode(raw) != text:
        raise MalformedError("not a base58 32-byte public key")
    return raw


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> None:
    """Raise ``BadSignatureError`` unless ``signature`` is a valid Ed25519 signature of ``message``."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        raise BadSignatureError("signature or public key has the wrong length")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise BadSignatureError("signature does not verify") from exc
