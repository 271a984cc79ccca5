"""Decoding rules for the JSON messages and topics: strict, typed, one error type with a reason."""

from __future__ import annotations

import pytest

from protocol import topics
from protocol.ack import Ack
from protocol.challenge import Challenge, ChallengeReply
from protocol.errors import MalformedError, Reason
from protocol.keys import DeviceKey, public_key_from_device_id
from protocol.record import ZERO_HASH, ReadingFields, sign_reading
from protocol.status import OFFLINE_STATUS, DeviceStatus
from protocol.sync import SyncReply, SyncRequest
from protocol.wallet_link import WalletLink

KEY = DeviceKey.from_seed(bytes(32))


@pytest.mark.parametrize(
    ("cls", "payload"),
    [
        (Challenge, b"not json"),
        (Challenge, b"[]"),
        (Challenge, b'{"v":2,"nonce":"' + b"00" * 32 + b'","expires_ms":1}'),
        (Challenge, b'{"v":1,"nonce":"' + b"00" * 31 + b'","expires_ms":1}'),
        (Challenge, b'{"v":1,"nonce":"' + b"zz" * 32 + b'","expires_ms":1}'),
        (Challenge, b'{"v":1,"nonce":"' + b"00" * 32 + b'","expires_ms":"1"}'),
        (Challenge, b'{"v":1,"nonce":"' + b"00" * 32 + b'","expires_ms":1,"x":0}'),
        (ChallengeReply, b'{"v":1,"nonce":"' + b"00" * 32 + b'","signature":"00"}'),
        (Ack, b'{"v":1,"first":1,"last":1,"accepted":1,"duplicate":0,"rejected":[[1,"Nope!"]]}'),
        (Ack, b'{"v":1,"first":1,"last":1,"accepted":1,"duplicate":0,"rejected":[[1,""]]}'),
        (Ack, b'{"v":1,"first":1,"last":1,"accepted":1,"duplicate":0,"rejected":[[1,7]]}'),
        (Ack, b'{"v":1,"first":1,"last":1,"accepted":1,"duplicate":0,"rejected":[[1,"' + b"x" * 41 + b'"]]}'),
        (Ack, b'{"v":1,"first":2,"last":1,"accepted":1,"duplicate":0,"rejected":[]}'),
        (Ack, b'{"v":1,"first":1,"last":1,"accepted":true,"duplicate":0,"rejected":[]}'),
        (SyncRequest, b'{"v":1}'),
        (SyncReply, b'{"v":1,"nonce":"' + b"00" * 32 + b'","last_seq":-1,"last_hash":"' + b"00" * 32 + b'"}'),
    ],
)
def test_bad_json_messages_are_malformed(cls: type, payload: bytes) -> None:
    with pytest.raises(MalformedError) as info:
        cls.from_json(payload)
    assert info.value.reason == Reason.MALFORMED


def test_ack_wire_shape() -> None:
    ack = Ack(first=5, last=9, accepted=3, duplicate=1, rejected=((7, Reason.CHAIN_MISMATCH),))
    assert ack.to_json() == (
        b'{"v":1,"first":5,"last":9,"accepted":3,"duplicate":1,"rejected":[[7,"chain_mismatch"]]}'
    )


def test_sync_reply_for_empty_history() -> None:
    reply = SyncReply(bytes(32), 0, ZERO_HASH)
    assert b'"last_seq":0' in reply.to_json()
    assert ("0" * 64).encode() in reply.to_json()


def test_topics() -> None:
    did = KEY.device_id
    assert topics.readings(did) == f"gtx/v1/d/{did}/readings"
    assert topics.challenge_reply(did) == f"gtx/v1/d/{did}/challenge/reply"
    assert topics.sync_reply(did) == f"gtx/v1/d/{did}/sync/reply"
    assert topics.SHARED_READINGS == "$share/central/gtx/v1/d/+/readings"
    assert topics.parse(topics.sync_reply(did)) == (did, topics.TopicKind.SYNC_REPLY)
    for bad in ("gtx/v1/d/notakey/readings", f"gtx/v1/d/{did}/bogus", "other/topic", f"gtx/v1/d/{did}"):
        with pytest.raises(MalformedError):
            topics.parse(bad)
    assert DeviceStatus(online=False).to_json() == OFFLINE_STATUS == b'{"v":1,"online":false}'  # protocol §7


def test_device_id_must_be_canonical() -> None:
    with pytest.raises(MalformedError):
        public_key_from_device_id("1" + KEY.device_id)
    assert public_key_from_device_id(KEY.device_id) == KEY.public_key


def test_field_validation_on_signing() -> None:
    base = {"meter_serial": "M1", "seq": 1, "timestamp_ms": 0, "import_wh": 0, "export_wh": 0, "power_w": 0,
            "prev_hash": ZERO_HASH}  # fmt: skip
    for change in ({"meter_serial": ""}, {"meter_serial": "a b"}, {"meter_serial": "é"}, {"seq": 0},
                   {"import_wh": -1}, {"power_w": -(2**31)}, {"flags": 8}, {"prev_hash": b"x"}):  # fmt: skip
        with pytest.raises(Exception, match=r"."):
            sign_reading(KEY, ReadingFields(**{**base, **change}))  # type: ignore[arg-type]


def test_wallet_link_rejects_trailing_newline_and_bad_text() -> None:
    link = WalletLink.parse(
        "GridTokenX wallet link\nuser: 0b9a6a4e-4a8f-4a53-9d36-2f1f3c6c7e11\n"
        f"wallet: {KEY.device_id}\nnonce: {'ab' * 16}\nexpires: 2026-01-01T00:05:00Z"
    )
    with pytest.raises(MalformedError):
        WalletLink.parse(link.message() + "\n")
    with pytest.raises(MalformedError):
        WalletLink.parse(link.message().replace("expires: 2026-01-01", "expires: 2026-13-01"))


def test_a_rejection_reason_this_version_does_not_know_is_kept() -> None:
    """A newer central may reject for a reason this gateway does not know. The ack used to be refused whole as
    malformed, so the batch was never acknowledged and was sent again forever; now the reason is kept as its text
    (and the device dead-letters those records, as for any permanent reason)."""
    ack = Ack.from_json(b'{"v":1,"first":1,"last":2,"accepted":1,"duplicate":0,"rejected":[[2,"implausible_rise"]]}')
    assert ack.rejected == ((2, "implausible_rise"),)
    assert Ack.from_json(ack.to_json()) == ack
