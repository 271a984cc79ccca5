"""Central's signature on what it sends a device (protocol §10, v1.1), and the gateway's pairing code.

Every central → device message (ack §4, challenge §3, sync reply §5) travels in an envelope::

    {"v":1,"kind":"ack","device":"<device id>","body":"<the v1 message JSON, as a string>","sig":"<128 hex>"}

``sig`` is central's Ed25519 signature of ``b"GTX/central/v1.1\\x00" | kind | 0x00 | device id | 0x00 | body``.
The device verifies it with central's public key pinned in its own configuration (never learned from the broker),
checks that ``kind`` and ``device`` are what it expects, and only then parses ``body``. Replays of a genuine
envelope are the receiver's to detect from the body (an ack for a batch not in flight, a challenge nonce already
answered, a sync reply for a request not outstanding).

The pairing code proves the installer stands at the gateway: eight Crockford base32 characters derived from the
device's key seed, shown only on the gateway's status page. Central cannot compute it; it keeps what the installer
typed and puts ``HMAC-SHA256(code, b"GTX/pairing/v1.1\\x00" | challenge message)`` into the challenge. The gateway
signs only a challenge whose MAC matches its own code.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Self

from protocol._json import check_size, dump, get_hex, load_object
from protocol.ack import Ack
from protocol.challenge import Challenge, challenge_message
from protocol.errors import MalformedError
from protocol.keys import SIGNATURE_SIZE, DeviceKey, public_key_from_device_id, verify_signature
from protocol.sync import SyncReply

DOMAIN = b"GTX/central/v1.1\x00"
PAIRING_DOMAIN = b"GTX/pairing/v1.1\x00"
PAIRING_CODE_LENGTH = 8
PAIRING_MAC_SIZE = 32
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CROCKFORD_ALIASES = {"O": "0", "I": "1", "L": "1"}
#: The largest envelope a device accepts (an ack for 1000 records that all failed is ~40 KB).
MAX_ENVELOPE = 256 * 1024


class Kind(StrEnum):
    """What a central → device envelope carries."""

    ACK = "ack"
    CHALLENGE = "challenge"
    SYNC = "sync"


def central_message(kind: Kind, device_id: str, body: bytes) -> bytes:
    """The exact bytes central signs for one envelope."""
    return DOMAIN + kind.value.encode() + b"\x00" + device_id.encode() + b"\x00" + bytes(body)


@dataclass(frozen=True, slots=True)
class Envelope:
    kind: Kind
    device_id: str
    body: bytes
    signature: bytes

    def __post_init__(self) -> None:
        check_size("signature", self.signature, SIGNATURE_SIZE)
        public_key_from_device_id(self.device_id)

    def to_json(self) -> bytes:
        return dump(
            {
                "kind": self.kind.value,
                "device": self.device_id,
                "body": self.body.decode(),
                "sig": self.signature.hex(),
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        if len(data) > MAX_ENVELOPE:
            raise MalformedError("envelope too large")
        obj = load_object(data, frozenset({"kind", "device", "body", "sig"}))
        kind, device, body = obj["kind"], obj["device"], obj["body"]
        if not isinstance(kind, str) or kind not in Kind.__members__.values():
            raise MalformedError("unknown envelope kind")
        if not isinstance(device, str) or not isinstance(body, str):
            raise MalformedError("device and body must be strings")
        return cls(Kind(kind), device, body.encode(), get_hex(obj, "sig", SIGNATURE_SIZE))


def seal(central: DeviceKey, kind: Kind, device_id: str, body: bytes) -> bytes:
    """Central's side: wrap ``body`` (a v1 message's JSON) for ``device_id`` and sign it."""
    try:
        body.decode()
        json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedError("an envelope body is a JSON message") from exc
    sig = central.sign(central_message(kind, device_id, body))
    return Envelope(kind, device_id, bytes(body), sig).to_json()


def unseal(data: bytes | str, central_public_key: bytes, kind: Kind, device_id: str) -> bytes:
    """The device's side: the body, if ``data`` is an envelope of ``kind`` for ``device_id`` signed by central.

    Raises ``MalformedError`` (not an envelope, wrong kind, another device) or ``BadSignatureError``.
    """
    env = Envelope.from_json(data)
    if env.kind is not kind:
        raise MalformedError(f"expected a {kind.value} envelope, got {env.kind.value}")
    if env.device_id != device_id:
        raise MalformedError("envelope addressed to another device")
    verify_signature(central_public_key, central_message(env.kind, env.device_id, env.body), env.signature)
    return env.body


def seal_ack(central: DeviceKey, device_id: str, ack: Ack) -> bytes:
    return seal(central, Kind.ACK, device_id, ack.to_json())


def unseal_ack(data: bytes | str, central_public_key: bytes, device_id: str) -> Ack:
    return Ack.from_json(unseal(data, central_public_key, Kind.ACK, device_id))


def seal_challenge(central: DeviceKey, device_id: str, challenge: PairedChallenge) -> bytes:
    return seal(central, Kind.CHALLENGE, device_id, challenge.to_json())


def unseal_challenge(data: bytes | str, central_public_key: bytes, device_id: str) -> PairedChallenge:
    return PairedChallenge.from_json(unseal(data, central_public_key, Kind.CHALLENGE, device_id))


def seal_sync_reply(central: DeviceKey, device_id: str, reply: SyncReply) -> bytes:
    return seal(central, Kind.SYNC, device_id, reply.to_json())


def unseal_sync_reply(data: bytes | str, central_public_key: bytes, device_id: str) -> SyncReply:
    return SyncReply.from_json(unseal(data, central_public_key, Kind.SYNC, device_id))


# --- pairing code -------------------------------------------------------------------------------------------------


def pairing_code(seed: bytes) -> str:
    """The device's pairing code: 8 Crockford base32 characters (40 bits) derived from its key seed."""
    check_size("seed", seed, 32)
    digest = hmac.new(bytes(seed), PAIRING_DOMAIN + b"code", hashlib.sha256).digest()
    n = int.from_bytes(digest[:5], "big")
    return "".join(_CROCKFORD[(n >> (5 * i)) & 31] for i in reversed(range(PAIRING_CODE_LENGTH)))


def normalize_pairing_code(text: str) -> str:
    """What an installer typed → the canonical code (case, dashes, spaces, O/I/L ignored); ``MalformedError`` if it
    cannot be one."""
    if not isinstance(text, str) or len(text) > 32:
        raise MalformedError("a pairing code is 8 characters")
    out = []
    for typed in text.upper():
        if typed in "- ":
            continue
        ch = _CROCKFORD_ALIASES.get(typed, typed)
        if ch not in _CROCKFORD:
            raise MalformedError("a pairing code uses the characters 0-9 and A-Z without I, L, O, U")
        out.append(ch)
    if len(out) != PAIRING_CODE_LENGTH:
        raise MalformedError("a pairing code is 8 characters")
    return "".join(out)


def format_pairing_code(code: str) -> str:
    """For display: ``ABCD-EFGH``."""
    return f"{code[:4]}-{code[4:]}"


def pairing_mac(code: str, nonce: bytes, public_key: bytes, expires_ms: int) -> bytes:
    """MAC over the challenge message keyed by the (normalized) pairing code."""
    key = normalize_pairing_code(code).encode()
    return hmac.new(key, PAIRING_DOMAIN + challenge_message(nonce, public_key, expires_ms), hashlib.sha256).digest()


def pairing_mac_matches(code: str, nonce: bytes, public_key: bytes, expires_ms: int, mac: bytes) -> bool:
    return hmac.compare_digest(pairing_mac(code, nonce, public_key, expires_ms), bytes(mac))


@dataclass(frozen=True, slots=True)
class PairedChallenge:
    """The v1.1 challenge body: ``{"v":1,"nonce":"<64 hex>","expires_ms":<int>,"pairing_mac":"<64 hex>"}``."""

    nonce: bytes
    expires_ms: int
    pairing_mac: bytes

    def __post_init__(self) -> None:
        Challenge(self.nonce, self.expires_ms)
        check_size("pairing_mac", self.pairing_mac, PAIRING_MAC_SIZE)

    @classmethod
    def issue(cls, code: str, nonce: bytes, public_key: bytes, expires_ms: int) -> Self:
        return cls(nonce, expires_ms, pairing_mac(code, nonce, public_key, expires_ms))

    def matches(self, code: str, public_key: bytes) -> bool:
        return pairing_mac_matches(code, self.nonce, public_key, self.expires_ms, self.pairing_mac)

    def to_json(self) -> bytes:
        base = json.loads(Challenge(self.nonce, self.expires_ms).to_json())
        base.pop("v")
        return dump({**base, "pairing_mac": self.pairing_mac.hex()})

    @classmethod
    def from_json(cls, data: bytes | str) -> Self:
        obj = load_object(data, frozenset({"nonce", "expires_ms", "pairing_mac"}))
        inner = Challenge.from_json(dump({"nonce": obj["nonce"], "expires_ms": obj["expires_ms"]}))
        return cls(inner.nonce, inner.expires_ms, get_hex(obj, "pairing_mac", PAIRING_MAC_SIZE))
