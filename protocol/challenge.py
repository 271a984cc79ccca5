"""Challenge (protocol §3 Challenge): proof that a device holds its key.

Signed message = ``b"GTX/challenge/v1\\x00"`` | nonce (32) | device public key (32) | expires_ms (i64 LE).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Self

from protocol._json import check_size, dump, get_hex, get_int, load_object
from protocol.errors import MalformedError
from protocol.keys import SIGNATURE_SIZE, SigningKey, verify_signature

DOMAIN = b"GTX/challenge/v1\x00"
NONCE_SIZE = 32
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def challenge_message(nonce: bytes, public_key: bytes, expires_ms: int) -> bytes:
    check_size("nonce", nonce, NONCE_SIZE)
    check_size("public key", public_key, 32)
    if not _I64_MIN <= expires_ms <= _I64_MAX:
        raise MalformedError("expires_ms must fit in i64")
    return DOMAIN + bytes(nonce) + bytes(public_key) + struct.pack("<q", expires_ms)


def sign_challenge(key: SigningKey, nonce: bytes, expires_ms: int) -> bytes:
    return key.sign(challenge_message(nonce, key.public_key, expires_ms))


def verify_challenge(public_key: bytes, nonce: bytes, expires_ms: int, signature: bytes) -> None:
    """Raise ``BadSignatureError`` unless the device key signed this challenge. Expiry and single use are the
    issuer's to enforce."""
    verify_signature(public_key, challenge_message(nonce, public_key, expires_ms), signature)


@dataclass(frozen=True, slots=True)
class Challenge:
    """Central → device: ``{"v":1,"nonce":"<64 hex>","expires_ms":<int>}``."""

    nonce: bytes
    expires_ms: int

    def __post_init__(self) -> None:
        check_size("nonce", self.nonce, NONCE_SIZE)

    def to_json(self) -> bytes:
        return dump({"nonce": self.nonce.hex(), "expires_ms": self.expires_ms})

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        obj = load_object(data, frozenset({"nonce", "expires_ms"}))
        return cls(get_hex(obj, "nonce", NONCE_SIZE), get_int(obj, "expires_ms", _I64_MIN, _I64_MAX))


@dataclass(frozen=True, slots=True)
class ChallengeReply:
    """Device → central: ``{"v":1,"nonce":"<64 hex>","signature":"<128 hex>"}``."""

    nonce: bytes
    signature: bytes

    def __post_init__(self) -> None:
        check_size("nonce", self.nonce, NONCE_SIZE)
        check_size("signature", self.signature, SIGNATURE_SIZE)

    def to_json(self) -> bytes:
        return dump({"nonce": self.nonce.hex(), "signature": self.signature.hex()})

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        obj = load_object(data, frozenset({"nonce", "signature"}))
        return cls(get_hex(obj, "nonce", NONCE_SIZE), get_hex(obj, "signature", SIGNATURE_SIZE))
