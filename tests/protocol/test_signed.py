"""Protocol v1.1 (§10): central-signed acks, challenges and sync replies; pairing codes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.ack import Ack
from protocol.challenge import Challenge
from protocol.errors import BadSignatureError, MalformedError, ProtocolError, Reason
from protocol.keys import DeviceKey
from protocol.signed import (
    CROCKFORD,
    UnexpectedMessageError,
    central_public_key,
    format_public_key,
    normalize_pairing_code,
    pairing_code,
    sign_ack,
    sign_challenge_message,
    sign_sync_reply,
    verify_ack,
    verify_challenge_message,
    verify_sync_reply,
)
from protocol.sync import SyncReply

CENTRAL = DeviceKey.from_seed(bytes(range(200, 232)))
IMPOSTOR = DeviceKey.from_seed(bytes(range(7, 39)))
DEVICE = DeviceKey.from_seed(bytes(range(32)))
OTHER = DeviceKey.from_seed(bytes(range(1, 33)))
CODE = pairing_code(DEVICE.seed)

u64 = st.integers(0, 2**64 - 1)
nonces = st.binary(min_size=32, max_size=32)
reasons = st.sampled_from(list(Reason))


@st.composite
def acks(draw: st.DrawFn) -> Ack:
    first = draw(u64)
    last = draw(st.integers(first, 2**64 - 1))
    rejected = tuple(draw(st.lists(st.tuples(st.integers(first, last), reasons), max_size=5)))
    return Ack(first=first, last=last, accepted=draw(u64), duplicate=draw(u64), rejected=rejected)


def _tamper(data: bytes, key: str, value: object) -> bytes:
    obj = json.loads(data)
    obj[key] = value
    return json.dumps(obj).encode()


@given(acks(), st.binary(min_size=1, max_size=200))
def test_ack_round_trip_and_binding(ack: Ack, payload: bytes) -> None:
    data = sign_ack(CENTRAL, DEVICE.device_id, payload, ack)
    assert verify_ack(CENTRAL.public_key, DEVICE.device_id, data, payload) == ack
    with pytest.raises(BadSignatureError):
        verify_ack(IMPOSTOR.public_key, DEVICE.device_id, data, payload)
    with pytest.raises(UnexpectedMessageError):
        verify_ack(CENTRAL.public_key, OTHER.device_id, data, payload)
    with pytest.raises(UnexpectedMessageError):
        verify_ack(CENTRAL.public_key, DEVICE.device_id, data, payload + b"\x00")
    forged = sign_ack(IMPOSTOR, DEVICE.device_id, payload, ack)
    with pytest.raises(BadSignatureError):
        verify_ack(CENTRAL.public_key, DEVICE.device_id, forged, payload)


@given(acks(), st.sampled_from(["first", "last", "accepted", "duplicate"]), u64)
def test_ack_field_tamper_is_detected(ack: Ack, field: str, value: int) -> None:
    data = sign_ack(CENTRAL, DEVICE.device_id, b"batch", ack)
    tampered = _tamper(data, field, value)
    if json.loads(tampered) == json.loads(data):
        return
    with pytest.raises(ProtocolError):
        verify_ack(CENTRAL.public_key, DEVICE.device_id, tampered, b"batch")


def test_unsigned_v1_ack_is_refused() -> None:
    plain = Ack(first=1, last=3, accepted=3, duplicate=0).to_json()
    with pytest.raises(MalformedError):
        verify_ack(CENTRAL.public_key, DEVICE.device_id, plain, b"batch")


@given(nonces, st.integers(-(2**63), 2**63 - 1))
def test_challenge_round_trip_and_pairing(nonce: bytes, expires_ms: int) -> None:
    challenge = Challenge(nonce, expires_ms)
    data = sign_challenge_message(CENTRAL, DEVICE.device_id, challenge, CODE)
    assert verify_challenge_message(CENTRAL.public_key, DEVICE.device_id, data, CODE) == challenge
    assert verify_challenge_message(CENTRAL.public_key, DEVICE.device_id, data, CODE.lower()) == challenge
    with pytest.raises(BadSignatureError):
        verify_challenge_message(IMPOSTOR.public_key, DEVICE.device_id, data, CODE)
    with pytest.raises(UnexpectedMessageError):
        verify_challenge_message(CENTRAL.public_key, OTHER.device_id, data, CODE)
    wrong = sign_challenge_message(CENTRAL, DEVICE.device_id, challenge, pairing_code(OTHER.seed))
    with pytest.raises(BadSignatureError):
        verify_challenge_message(CENTRAL.public_key, DEVICE.device_id, wrong, CODE)


@given(nonces, nonces, u64, st.binary(min_size=32, max_size=32))
def test_sync_reply_round_trip_and_nonce(nonce: bytes, other: bytes, seq: int, last_hash: bytes) -> None:
    reply = SyncReply(nonce=nonce, last_seq=seq, last_hash=last_hash)
    data = sign_sync_reply(CENTRAL, DEVICE.device_id, reply)
    assert verify_sync_reply(CENTRAL.public_key, DEVICE.device_id, data, nonce) == reply
    if other != nonce:
        with pytest.raises(UnexpectedMessageError):
            verify_sync_reply(CENTRAL.public_key, DEVICE.device_id, data, other)
    with pytest.raises(BadSignatureError):
        verify_sync_reply(IMPOSTOR.public_key, DEVICE.device_id, data, nonce)


def test_domains_separate_kinds() -> None:
    """A signed sync reply re-labelled as an ack (same fields would never verify) — signatures do not cross kinds."""
    nonce = bytes(32)
    ch = sign_challenge_message(CENTRAL, DEVICE.device_id, Challenge(nonce, 5), CODE)
    obj = json.loads(ch)
    obj.pop("pairing_mac")
    obj["last_seq"] = 0
    obj["last_hash"] = "00" * 32
    obj.pop("expires_ms")
    with pytest.raises(BadSignatureError):
        verify_sync_reply(CENTRAL.public_key, DEVICE.device_id, json.dumps(obj), nonce)


@given(st.binary(min_size=32, max_size=32))
def test_pairing_code_shape(seed: bytes) -> None:
    code = pairing_code(seed)
    assert len(code) == 8
    assert set(code) <= set(CROCKFORD)
    assert pairing_code(seed) == code
    assert normalize_pairing_code(f" {code[:4].lower()}-{code[4:]} ") == code


@pytest.mark.parametrize("bad", ["", "1234567", "123456789", "ABCD-EFGU", "ABCDEFG!", "x" * 40])
def test_bad_pairing_codes(bad: str) -> None:
    with pytest.raises(MalformedError):
        normalize_pairing_code(bad)


def test_aliases() -> None:
    assert normalize_pairing_code("oil0OIL1") == "01100111"


def test_public_key_formats() -> None:
    text = format_public_key(CENTRAL.public_key)
    assert central_public_key(text) == CENTRAL.public_key
    assert central_public_key(CENTRAL.public_key.hex()) == CENTRAL.public_key
    with pytest.raises(MalformedError):
        central_public_key("not-a-key")
