"""Hypothesis: round trips for everything encoded, and tamper detection for everything signed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.ack import Ack
from protocol.base58 import b58decode, b58encode
from protocol.batch import decode_batch, encode_batch, split_batch
from protocol.challenge import Challenge, ChallengeReply, sign_challenge, verify_challenge
from protocol.errors import ProtocolError, Reason
from protocol.keys import DeviceKey
from protocol.record import (
    POWER_NOT_AVAILABLE,
    ZERO_HASH,
    Reading,
    ReadingFields,
    assemble,
    decode_reading,
    sign_reading,
)
from protocol.status import MAX_ALARM_KEY, MAX_ALARMS, MAX_COUNT, DeviceStatus
from protocol.sync import SyncReply, SyncRequest
from protocol.wallet_link import WalletLink, verify_wallet_link

KEY = DeviceKey.from_seed(bytes(range(32)))
OTHER = DeviceKey.from_seed(bytes(range(1, 33)))

serials = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=32)
u64 = st.integers(0, 2**64 - 1)


@st.composite
def readings(draw: st.DrawFn, key: DeviceKey = KEY) -> Reading:
    seq = draw(st.integers(1, 2**64 - 1))
    return sign_reading(
        key,
        ReadingFields(
            meter_serial=draw(serials),
            seq=seq,
            timestamp_ms=draw(st.integers(-(2**63), 2**63 - 1)),
            import_wh=draw(u64),
            export_wh=draw(u64),
            power_w=draw(st.one_of(st.none(), st.integers(-(2**31) + 1, 2**31 - 1))),
            flags=draw(st.integers(0, 3)),
            prev_hash=ZERO_HASH if seq == 1 else draw(st.binary(min_size=32, max_size=32)),
        ),
    )


@given(st.binary(max_size=64))
def test_base58_round_trip(data: bytes) -> None:
    assert b58decode(b58encode(data)) == data


def test_base58_known_values() -> None:
    assert b58encode(b"") == ""
    assert b58encode(b"\0\0\x01") == "112"
    assert b58encode(b"hello world") == "StV1DL6CwTryKyV"
    assert b58decode("StV1DL6CwTryKyV") == b"hello world"
    with pytest.raises(ProtocolError):
        b58decode("0OIl")


@given(readings())
def test_record_round_trip(r: Reading) -> None:
    assert decode_reading(r.encode()) == r
    assert len(r.encode()) == 172 + len(r.meter_serial)


@given(readings())
def test_record_assembled_from_parts(r: Reading) -> None:
    # what a store that keeps the record in pieces rebuilds is the signed record, byte for byte
    power = POWER_NOT_AVAILABLE if r.power_w is None else r.power_w
    parts = (r.seq, r.timestamp_ms, r.import_wh, r.export_wh, power, r.flags, r.prev_hash, r.signature)
    assert assemble(r.device_public_key, r.meter_serial, *parts) == r.encode()


@settings(max_examples=300)
@given(readings(), st.data())
def test_any_flipped_byte_is_detected(r: Reading, data: st.DataObject) -> None:
    raw = bytearray(r.encode())
    pos = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.integers(0, 7))
    raw[pos] ^= 1 << bit
    with pytest.raises(ProtocolError):
        decode_reading(bytes(raw))


@given(st.lists(readings(), min_size=1, max_size=5))
def test_batch_round_trip(records: list[Reading]) -> None:
    records = sorted({r.seq: r for r in records}.values(), key=lambda r: r.seq)
    data = encode_batch(records)
    assert split_batch(data) == [r.encode() for r in records]
    assert decode_batch(data) == records


@given(st.binary(max_size=400))
def test_decoders_never_return_garbage(data: bytes) -> None:
    for decode in (decode_reading, decode_batch):
        try:
            decode(data)
        except ProtocolError:
            continue
        raise AssertionError("random bytes decoded")


@given(st.binary(min_size=32, max_size=32), st.integers(-(2**63), 2**63 - 1))
def test_challenge_round_trip_and_tamper(nonce: bytes, expires_ms: int) -> None:
    sig = sign_challenge(KEY, nonce, expires_ms)
    reply = ChallengeReply.from_json(ChallengeReply(nonce, sig).to_json())
    verify_challenge(KEY.public_key, reply.nonce, expires_ms, reply.signature)
    assert Challenge.from_json(Challenge(nonce, expires_ms).to_json()) == Challenge(nonce, expires_ms)
    with pytest.raises(ProtocolError) as info:
        verify_challenge(KEY.public_key, nonce, expires_ms ^ 1, sig)
    assert info.value.reason == Reason.BAD_SIGNATURE
    with pytest.raises(ProtocolError):
        verify_challenge(OTHER.public_key, nonce, expires_ms, sig)


@given(
    u64,
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.lists(
        st.tuples(u64, st.sampled_from(list(Reason)) | st.from_regex(r"[a-z][a-z0-9_]{0,39}", fullmatch=True)),
        max_size=5,
    ),
)
def test_ack_round_trip(first: int, accepted: int, duplicate: int, rejected: list[tuple[int, str]]) -> None:
    ack = Ack(first=first, last=first, accepted=accepted, duplicate=duplicate, rejected=tuple(rejected))
    assert Ack.from_json(ack.to_json()) == ack


@given(st.binary(min_size=32, max_size=32), u64, st.binary(min_size=32, max_size=32))
def test_sync_round_trip(nonce: bytes, last_seq: int, last_hash: bytes) -> None:
    assert SyncRequest.from_json(SyncRequest(nonce).to_json()) == SyncRequest(nonce)
    reply = SyncReply(nonce, last_seq, last_hash)
    assert SyncReply.from_json(reply.to_json()) == reply


@given(
    st.uuids(),
    st.binary(min_size=16, max_size=16),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1)),
    st.data(),
)
def test_wallet_link_round_trip_and_tamper(user: uuid.UUID, nonce: bytes, when: datetime, data: st.DataObject) -> None:
    link = WalletLink(user, OTHER.device_id, nonce, when.replace(microsecond=0, tzinfo=UTC))
    assert WalletLink.parse(link.message()) == link
    sig = OTHER.sign(link.message_bytes())
    verify_wallet_link(link, sig)
    other_user = data.draw(st.uuids().filter(lambda u: u != user))
    with pytest.raises(ProtocolError):
        verify_wallet_link(WalletLink(other_user, link.wallet, nonce, link.expires), sig)
    with pytest.raises(ProtocolError):
        verify_wallet_link(WalletLink(user, KEY.device_id, nonce, link.expires), sig)


@st.composite
def device_statuses(draw: st.DrawFn) -> DeviceStatus:
    count = st.one_of(st.none(), st.integers(0, MAX_COUNT))
    keys = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FFF), min_size=1, max_size=MAX_ALARM_KEY)
    return DeviceStatus(
        online=draw(st.booleans()),
        version=draw(st.one_of(st.none(), st.text(max_size=64))),
        last_seq=draw(count),
        outbox_depth=draw(count),
        oldest_age_s=draw(count),
        meters_down=draw(count),
        alarms=tuple(sorted(draw(st.sets(keys, max_size=MAX_ALARMS)))),
    )


@given(device_statuses())
def test_device_status_round_trips(status: DeviceStatus) -> None:
    assert DeviceStatus.from_json(status.to_json()) == status


@given(device_statuses(), st.integers(MAX_COUNT + 1, 2**70) | st.integers(-(2**70), -1))
def test_device_status_refuses_counts_out_of_range(status: DeviceStatus, bad: int) -> None:
    obj = json.loads(status.to_json())
    obj["outbox_depth"] = bad
    with pytest.raises(ProtocolError):
        DeviceStatus.from_json(json.dumps(obj).encode())
