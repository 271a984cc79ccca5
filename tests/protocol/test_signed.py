"""Protocol v1.1 (§10): central's signed envelopes and the pairing code — vectors, round trips, tamper detection."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.ack import Ack
from protocol.errors import BadSignatureError, MalformedError, ProtocolError
from protocol.keys import DeviceKey
from protocol.signed import (
    Envelope,
    Kind,
    PairedChallenge,
    central_message,
    format_pairing_code,
    normalize_pairing_code,
    pairing_code,
    seal,
    seal_ack,
    seal_challenge,
    seal_sync_reply,
    unseal,
    unseal_ack,
    unseal_challenge,
    unseal_sync_reply,
)
from protocol.sync import SyncReply

VECTORS: dict[str, Any] = json.loads((Path(__file__).parents[2] / "protocol" / "vectors" / "v1.json").read_text())
KEYS = {k["name"]: DeviceKey.from_seed(bytes.fromhex(k["seed"])) for k in VECTORS["keys"]}
CENTRAL = KEYS["central"]
DEVICE = KEYS["A"]
MALLORY = DeviceKey.from_seed(bytes([7] * 32))
SIGNED = VECTORS["central_signed"]


def test_pairing_code_vector() -> None:
    assert pairing_code(DEVICE.seed) == SIGNED["pairing_code"]


@pytest.mark.parametrize("vec", SIGNED["envelopes"], ids=lambda v: v["kind"])
def test_envelope_vectors(vec: dict[str, str]) -> None:
    kind = Kind(vec["kind"])
    body = unseal(vec["json"], CENTRAL.public_key, kind, DEVICE.device_id)
    assert body.decode() == vec["body"]
    assert central_message(kind, DEVICE.device_id, body).hex() == vec["message_hex"]
    with pytest.raises(BadSignatureError):
        unseal(vec["json"], MALLORY.public_key, kind, DEVICE.device_id)


def test_challenge_vector_carries_the_pairing_mac() -> None:
    vec = next(v for v in SIGNED["envelopes"] if v["kind"] == "challenge")
    challenge = unseal_challenge(vec["json"], CENTRAL.public_key, DEVICE.device_id)
    assert challenge.matches(SIGNED["pairing_code"], DEVICE.public_key)
    assert not challenge.matches("00000000", DEVICE.public_key)


ACK = Ack(first=5, last=9, accepted=5, duplicate=0)


def test_forged_envelope_signed_by_another_key_is_refused() -> None:
    forged = seal_ack(MALLORY, DEVICE.device_id, ACK)
    with pytest.raises(BadSignatureError):
        unseal_ack(forged, CENTRAL.public_key, DEVICE.device_id)


def test_unsigned_v1_ack_is_refused() -> None:
    with pytest.raises(MalformedError):
        unseal_ack(ACK.to_json(), CENTRAL.public_key, DEVICE.device_id)


def test_envelope_for_another_device_or_kind_is_refused() -> None:
    env = seal_ack(CENTRAL, DEVICE.device_id, ACK)
    with pytest.raises(MalformedError, match="another device"):
        unseal_ack(env, CENTRAL.public_key, KEYS["B"].device_id)
    with pytest.raises(MalformedError, match="expected a sync"):
        unseal(env, CENTRAL.public_key, Kind.SYNC, DEVICE.device_id)


def test_swapping_kind_breaks_the_signature() -> None:
    """A genuine ack body relabelled as a sync reply must not verify (the kind is signed)."""
    obj = json.loads(seal_ack(CENTRAL, DEVICE.device_id, ACK))
    obj["kind"] = "sync"
    with pytest.raises(BadSignatureError):
        unseal(json.dumps(obj), CENTRAL.public_key, Kind.SYNC, DEVICE.device_id)


def test_seal_refuses_a_body_that_is_not_json() -> None:
    with pytest.raises(MalformedError):
        seal(CENTRAL, Kind.ACK, DEVICE.device_id, b"\xff not json")


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_unseal(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        unseal(data, CENTRAL.public_key, Kind.ACK, DEVICE.device_id)


@given(
    first=st.integers(0, 2**64 - 1), span=st.integers(0, 1000), accepted=st.integers(0, 2**32),
    flip=st.integers(0, 10_000),
)  # fmt: skip
def test_ack_round_trip_and_tamper(first: int, span: int, accepted: int, flip: int) -> None:
    last = min(first + span, 2**64 - 1)
    ack = Ack(first=first, last=last, accepted=accepted, duplicate=0)
    env = seal_ack(CENTRAL, DEVICE.device_id, ack)
    assert unseal_ack(env, CENTRAL.public_key, DEVICE.device_id) == ack
    raw = bytearray(env)
    i = flip % len(raw)
    raw[i] ^= 0x01
    try:
        assert unseal_ack(bytes(raw), CENTRAL.public_key, DEVICE.device_id) == ack
    except ProtocolError:
        return
    # Only a flip that leaves the signed content unchanged (e.g. hex case of the signature) may still verify.
    assert bytes(raw).lower() == env.lower()


@given(nonce=st.binary(min_size=32, max_size=32), expires=st.integers(-(2**63), 2**63 - 1),
       seed=st.binary(min_size=32, max_size=32))  # fmt: skip
def test_challenge_round_trip_and_pairing(nonce: bytes, expires: int, seed: bytes) -> None:
    device = DeviceKey.from_seed(seed)
    code = pairing_code(seed)
    ch = PairedChallenge.issue(code, nonce, device.public_key, expires)
    env = seal_challenge(CENTRAL, device.device_id, ch)
    back = unseal_challenge(env, CENTRAL.public_key, device.device_id)
    assert back == ch
    assert back.matches(format_pairing_code(code).lower(), device.public_key)
    other = "0" * 8 if code != "0" * 8 else "1" * 8
    assert not back.matches(other, device.public_key)
    assert not back.matches(code, DEVICE.public_key if device.public_key != DEVICE.public_key else MALLORY.public_key)


@given(nonce=st.binary(min_size=32, max_size=32), seq=st.integers(0, 2**64 - 1),
       h=st.binary(min_size=32, max_size=32))  # fmt: skip
def test_sync_reply_round_trip(nonce: bytes, seq: int, h: bytes) -> None:
    reply = SyncReply(nonce=nonce, last_seq=seq, last_hash=h)
    env = seal_sync_reply(CENTRAL, DEVICE.device_id, reply)
    assert unseal_sync_reply(env, CENTRAL.public_key, DEVICE.device_id) == reply


@given(st.binary(min_size=32, max_size=32))
def test_pairing_code_shape(seed: bytes) -> None:
    code = pairing_code(seed)
    assert len(code) == 8
    assert normalize_pairing_code(code) == code
    assert normalize_pairing_code(format_pairing_code(code).lower()) == code


@pytest.mark.parametrize("typed", ["", "ABC", "ABCDEFGHJ", "ABCD-EFGU", "ABCD EFG!", "x" * 40])
def test_bad_pairing_codes_are_refused(typed: str) -> None:
    with pytest.raises(MalformedError):
        normalize_pairing_code(typed)


def test_pairing_code_aliases() -> None:
    assert normalize_pairing_code("oil0-abcd") == "0110ABCD"


def test_envelope_rejects_bad_device_id() -> None:
    with pytest.raises(MalformedError):
        Envelope(Kind.ACK, "not-a-device", b"{}", bytes(64))
