"""Signed central → device messages (protocol v1.1, §10).

Every message central sends to a device (ack, challenge, sync reply) carries the device id it is for and an Ed25519
signature by central's key, which the device pins from its configuration (never learned from the broker):

    signed bytes = DOMAIN | canonical JSON of the message without its "sig" field

with DOMAIN one of ``ACK_DOMAIN``, ``CHALLENGE_DOMAIN``, ``SYNC_DOMAIN`` (so a signature for one kind never verifies
as another) and canonical JSON = keys sorted, ``,``/``:`` separators, ASCII. What makes a replay detectable:

* ack: ``batch`` = SHA-256 of the batch payload it answers; the device only applies it to the batch in flight;
* challenge: ``nonce`` + ``expires_ms``, and ``pairing_mac`` = HMAC-SHA256(pairing code, §3 challenge bytes), so only
  a challenge issued for a registrant who typed the device's pairing code is signed by the device;
* sync reply: ``nonce`` echoes the device's sync request; the device only accepts the nonce it is waiting for.

Verifiers return the parsed message or raise a ``ProtocolError``: ``MalformedError`` (layout),
``BadSignatureError`` (central's signature or the pairing MAC), ``UnexpectedMessageError`` (signed for another
device, another batch, another sync request).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from protocol._json import canonical, dump, get_hex, load_object
from protocol.ack import Ack
from protocol.base58 import b58encode
from protocol.challenge import NONCE_SIZE, Challenge, challenge_message
from protocol.errors import BadSignatureError, MalformedError, ProtocolError
from protocol.keys import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, DeviceKey, public_key_from_device_id, verify_signature
from protocol.sync import SyncReply

ACK_DOMAIN = b"GTX/ack/v1.1\x00"
CHALLENGE_DOMAIN = b"GTX/challenge/v1.1\x00"
SYNC_DOMAIN = b"GTX/sync/v1.1\x00"
PAIRING_DOMAIN = b"GTX/pairing/v1"
PAIRING_CODE_LENGTH = 8
BATCH_HASH_SIZE = 32
MAC_SIZE = 32

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CROCKFORD_ALIASES = {"O": "0", "I": "1", "L": "1"}

_ACK_KEYS = frozenset({"first", "last", "accepted", "duplicate", "rejected"})
_CHALLENGE_KEYS = frozenset({"nonce", "expires_ms"})
_SYNC_KEYS = frozenset({"nonce", "last_seq", "last_hash"})


class UnexpectedMessageError(ProtocolError):
    """A correctly signed message that is not for this device, batch or request (a replay or a misdirection)."""


# --- central's key ------------------------------------------------------------------------------------------------


def central_public_key(text: str) -> bytes:
    """Parse central's public key as written in a device configuration: base58 (like a device id) or 64 hex."""
    text = text.strip()
    if len(text) == 2 * PUBLIC_KEY_SIZE:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    return public_key_from_device_id(text)


def format_public_key(public_key: bytes) -> str:
    """The base58 form of a public key, as ``central signing-key show`` prints it."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise MalformedError(f"a public key is {PUBLIC_KEY_SIZE} bytes")
    return b58encode(public_key)


# --- pairing code -------------------------------------------------------------------------------------------------


def pairing_code(seed: bytes) -> str:
    """The device's pairing code: 8 Crockford base32 characters (40 bits) of HMAC-SHA256(seed, "GTX/pairing/v1")."""
    if len(seed) != 32:
        raise MalformedError("a device seed is 32 bytes")
    bits = int.from_bytes(hmac.new(seed, PAIRING_DOMAIN, hashlib.sha256).digest()[:5], "big")
    return "".join(CROCKFORD[(bits >> (5 * (7 - i))) & 31] for i in range(PAIRING_CODE_LENGTH))


def normalize_pairing_code(text: str) -> str:
    """Accept a code as people type it (any case, ``-`` and spaces, O→0, I/L→1); ``MalformedError`` otherwise."""
    if not isinstance(text, str) or len(text) > 32:
        raise MalformedError("pairing code must be 8 characters")
    out = []
    for typed in text.upper():
        if typed in "- ":
            continue
        ch = _CROCKFORD_ALIASES.get(typed, typed)
        if ch not in CROCKFORD:
            raise MalformedError("pairing code uses Crockford base32 characters only")
        out.append(ch)
    if len(out) != PAIRING_CODE_LENGTH:
        raise MalformedError("pairing code must be 8 characters")
    return "".join(out)


def pairing_mac(code: str, device_public_key: bytes, nonce: bytes, expires_ms: int) -> bytes:
    """HMAC-SHA256 keyed with the (normalized) pairing code over the §3 challenge bytes."""
    key = normalize_pairing_code(code).encode()
    return hmac.new(key, challenge_message(nonce, device_public_key, expires_ms), hashlib.sha256).digest()


# --- envelope -----------------------------------------------------------------------------------------------------


def _sign(key: DeviceKey, domain: bytes, device_id: str, fields: dict[str, Any]) -> bytes:
    public_key_from_device_id(device_id)
    body = {"v": 1, "device_id": device_id, **fields}
    signature = key.sign(domain + canonical(body))
    return dump({"device_id": device_id, **fields, "sig": signature.hex()})


def _open(central_key: bytes, domain: bytes, device_id: str, data: bytes | str, keys: frozenset[str]) -> dict[str, Any]:
    obj = load_object(data, keys | {"device_id", "sig"})
    signature = get_hex(obj, "sig", SIGNATURE_SIZE)
    body = {k: v for k, v in obj.items() if k != "sig"}
    verify_signature(central_key, domain + canonical(body), signature)
    if obj["device_id"] != device_id:
        raise UnexpectedMessageError("message is signed for another device")
    return obj


def _inner(obj: dict[str, Any], keys: frozenset[str]) -> bytes:
    return dump({k: obj[k] for k in keys})


def batch_hash(payload: bytes) -> bytes:
    """SHA-256 of a batch payload (§2), the identity an ack names."""
    return hashlib.sha256(payload).digest()


# --- ack ----------------------------------------------------------------------------------------------------------


def sign_ack(key: DeviceKey, device_id: str, batch_payload: bytes, ack: Ack) -> bytes:
    fields = json_fields(ack.to_json())
    return _sign(key, ACK_DOMAIN, device_id, {**fields, "batch": batch_hash(batch_payload).hex()})


def open_ack(central_key: bytes, device_id: str, data: bytes | str) -> tuple[bytes, Ack]:
    """(SHA-256 of the batch it answers, ack) if central signed it for ``device_id``. The caller must compare the
    batch hash with the batch in flight before acting; ``verify_ack`` does both."""
    obj = _open(central_key, ACK_DOMAIN, device_id, data, _ACK_KEYS | {"batch"})
    return get_hex(obj, "batch", BATCH_HASH_SIZE), Ack.from_json(_inner(obj, _ACK_KEYS))


def verify_ack(central_key: bytes, device_id: str, data: bytes | str, batch_payload: bytes) -> Ack:
    """The ack, if central signed it for ``device_id`` and the batch ``batch_payload`` (the one in flight)."""
    answered, ack = open_ack(central_key, device_id, data)
    if not hmac.compare_digest(answered, batch_hash(batch_payload)):
        raise UnexpectedMessageError("ack answers another batch")
    return ack


# --- challenge ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedChallenge:
    device_id: str
    challenge: Challenge
    pairing_mac: bytes


def sign_challenge_message(key: DeviceKey, device_id: str, challenge: Challenge, code: str) -> bytes:
    public_key = public_key_from_device_id(device_id)
    mac = pairing_mac(code, public_key, challenge.nonce, challenge.expires_ms)
    fields = json_fields(challenge.to_json())
    return _sign(key, CHALLENGE_DOMAIN, device_id, {**fields, "pairing_mac": mac.hex()})


def verify_challenge_message(central_key: bytes, device_id: str, data: bytes | str, code: str) -> Challenge:
    """The challenge, if central signed it for ``device_id`` and its pairing MAC matches this device's ``code``.
    Expiry and not answering a nonce twice are the device's to check."""
    obj = _open(central_key, CHALLENGE_DOMAIN, device_id, data, _CHALLENGE_KEYS | {"pairing_mac"})
    challenge = Challenge.from_json(_inner(obj, _CHALLENGE_KEYS))
    mac = get_hex(obj, "pairing_mac", MAC_SIZE)
    expected = pairing_mac(code, public_key_from_device_id(device_id), challenge.nonce, challenge.expires_ms)
    if not hmac.compare_digest(mac, expected):
        raise BadSignatureError("challenge was not issued with this device's pairing code")
    return challenge


# --- sync reply ---------------------------------------------------------------------------------------------------


def sign_sync_reply(key: DeviceKey, device_id: str, reply: SyncReply) -> bytes:
    return _sign(key, SYNC_DOMAIN, device_id, json_fields(reply.to_json()))


def verify_sync_reply(central_key: bytes, device_id: str, data: bytes | str, expected_nonce: bytes) -> SyncReply:
    """The sync reply, if central signed it for ``device_id`` in answer to the request with ``expected_nonce``."""
    if len(expected_nonce) != NONCE_SIZE:
        raise MalformedError(f"a sync nonce is {NONCE_SIZE} bytes")
    obj = _open(central_key, SYNC_DOMAIN, device_id, data, _SYNC_KEYS)
    reply = SyncReply.from_json(_inner(obj, _SYNC_KEYS))
    if not hmac.compare_digest(reply.nonce, expected_nonce):
        raise UnexpectedMessageError("sync reply answers another request")
    return reply


def json_fields(message: bytes) -> dict[str, Any]:
    """The fields of a v1 JSON message without its ``v`` (internal helper, public for tests)."""
    obj: dict[str, Any] = json.loads(message)
    obj.pop("v")
    return obj
