"""The gateway's broker password (protocol.broker): a pinned vector, an independent scrypt implementation, the
code as typed, and what it must not accept."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.broker import BROKER_DOMAIN, broker_password
from protocol.errors import MalformedError
from protocol.keys import DeviceKey
from protocol.signed import format_pairing_code, pairing_code

SEED = bytes(range(32))
#: Pinned: a gateway and central deployed from different versions must still agree.
VECTOR = ("FAe4sisG95oZ42w7buUn5qEE4TAnfTTFPiguZUHmhiF", "TWVXX4FW", "aEtRqQBkEw5pfUid8UkQnKHEOxEs3WMIqRb2OSFBFI8")

seeds = st.binary(min_size=32, max_size=32)


def test_vector() -> None:
    key = DeviceKey.from_seed(SEED)
    device_id, code, password = VECTOR
    assert key.device_id == device_id
    assert pairing_code(SEED) == code
    assert broker_password(code, device_id) == password


@settings(max_examples=5, deadline=None)
@given(seeds)
def test_matches_an_independent_scrypt(seed: bytes) -> None:
    key = DeviceKey.from_seed(seed)
    code = pairing_code(seed)
    kdf = Scrypt(salt=BROKER_DOMAIN + key.public_key, length=32, n=2**14, r=8, p=1)
    expected = base64.urlsafe_b64encode(kdf.derive(code.encode())).rstrip(b"=").decode()
    assert broker_password(code, key.device_id) == expected
    assert len(expected) == 43


@settings(max_examples=5, deadline=None)
@given(seeds, st.sampled_from([str.lower, str.upper, format_pairing_code, " ".join]))
def test_the_code_as_typed_gives_the_same_password(seed: bytes, typed: object) -> None:
    key = DeviceKey.from_seed(seed)
    code = pairing_code(seed)
    assert callable(typed)
    assert broker_password(typed(code), key.device_id) == broker_password(code, key.device_id)


@settings(max_examples=5, deadline=None)
@given(seeds, seeds)
def test_each_device_and_code_has_its_own_password(one: bytes, two: bytes) -> None:
    a, b = DeviceKey.from_seed(one), DeviceKey.from_seed(two)
    if one != two:
        assert broker_password(pairing_code(one), a.device_id) != broker_password(pairing_code(one), b.device_id)
        if pairing_code(one) != pairing_code(two):
            assert broker_password(pairing_code(one), a.device_id) != broker_password(pairing_code(two), a.device_id)


@pytest.mark.parametrize(("code", "device_id"), [
    ("TWVXX4F", VECTOR[0]),  # 7 characters
    ("TWVXX4FU", VECTOR[0]),  # U is not Crockford
    (VECTOR[1], "not-a-device-id"),
    (VECTOR[1], "1111"),  # base58, but not 32 bytes
])
def test_refuses_malformed_input(code: str, device_id: str) -> None:
    with pytest.raises(MalformedError):
        broker_password(code, device_id)
