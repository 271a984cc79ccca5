"""The fast Ed25519 binding agrees with the protocol library's verifier on valid and tampered records."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from central.ingest.signature import BINDING, signature_valid
from protocol.errors import BadSignatureError
from protocol.keys import DeviceKey, verify_signature
from protocol.record import ZERO_HASH, ReadingFields, sign_reading


def reference(public_key: bytes, message: bytes, signature: bytes) -> bool:
    try:
        verify_signature(public_key, message, signature)
    except BadSignatureError:
        return False
    return True


def test_fastest_measured_binding_is_in_use() -> None:
    assert BINDING == "solders"


@settings(max_examples=200, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    import_wh=st.integers(0, 2**63 - 1),
    where=st.sampled_from(["message", "signature", "key"]),
    index=st.integers(0, 10_000),
    bit=st.integers(0, 7),
    tamper=st.booleans(),
)
def test_agrees_with_protocol_verifier(
    seed: bytes, import_wh: int, where: str, index: int, bit: int, tamper: bool
) -> None:
    key = DeviceKey.from_seed(seed)
    rec = sign_reading(
        key,
        ReadingFields(meter_serial="M-1", seq=1, timestamp_ms=1, import_wh=import_wh, export_wh=0, power_w=None,
                      prev_hash=ZERO_HASH),
    )
    parts = {"message": bytearray(rec.signed_message()), "signature": bytearray(rec.signature),
             "key": bytearray(key.public_key)}
    if tamper:
        target = parts[where]
        target[index % len(target)] ^= 1 << bit
    args = (bytes(parts["key"]), bytes(parts["message"]), bytes(parts["signature"]))
    assert signature_valid(*args) == reference(*args)
    assert signature_valid(*args) is not tamper
