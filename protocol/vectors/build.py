"""Build the golden vectors. ``python -m protocol.vectors.build`` prints them; the test suite rebuilds them and
fails if ``v1.json`` differs, so the file can only change together with the code."""

from __future__ import annotations

import json
import struct
import uuid
from datetime import UTC, datetime
from typing import Any

from protocol.ack import Ack
from protocol.batch import encode_batch
from protocol.challenge import challenge_message, sign_challenge
from protocol.errors import Reason
from protocol.keys import DeviceKey
from protocol.record import DOMAIN, POWER_NOT_AVAILABLE, ZERO_HASH, Flags, Reading, ReadingFields, sign_reading
from protocol.signed import (
    Kind,
    PairedChallenge,
    central_message,
    pairing_code,
    seal_ack,
    seal_challenge,
    seal_sync_reply,
)
from protocol.sync import SyncReply
from protocol.wallet_link import WalletLink

SEED_A = bytes(range(32))
SEED_B = bytes([0x42] * 32)
SEED_WALLET = bytes(range(100, 132))
SEED_CENTRAL = bytes(range(200, 232))
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _key_entry(name: str, key: DeviceKey) -> dict[str, str]:
    return {"name": name, "seed": key.seed.hex(), "public_key": key.public_key.hex(), "device_id": key.device_id}


def _record_entry(name: str, key_name: str, r: Reading) -> dict[str, Any]:
    return {
        "name": name,
        "key": key_name,
        "fields": {
            "meter_serial": r.meter_serial,
            "seq": r.seq,
            "timestamp_ms": r.timestamp_ms,
            "import_wh": r.import_wh,
            "export_wh": r.export_wh,
            "power_w": r.power_w,
            "flags": r.flags,
            "prev_hash": r.prev_hash.hex(),
        },
        "hex": r.encode().hex(),
        "hash": r.hash().hex(),
    }


def _resign(key: DeviceKey, body: bytes) -> bytes:
    """Sign arbitrary (invalid) body bytes, so a vector fails on its field and not on its signature."""
    return body + key.sign(DOMAIN + body)


def _invalid(a: DeviceKey, b: DeviceKey, r1: Reading, r2: Reading, rb: Reading) -> list[dict[str, str]]:
    raw = r1.encode()
    body = r1.body()
    serial_len = len(r1.meter_serial)
    seq_at = 38 + serial_len
    flags_at = 74 + serial_len
    flipped = bytearray(raw)
    flipped[60] ^= 0x01
    cases: list[tuple[str, str, str, bytes]] = [
        ("bad_magic", "record", "malformed", _resign(a, b"GTXX" + body[4:])),
        ("wrong_version", "record", "malformed", _resign(a, body[:4] + b"\x02" + body[5:])),
        ("trailing_byte", "record", "malformed", raw + b"\x00"),
        ("truncated", "record", "malformed", raw[:-1]),
        ("serial_length_zero", "record", "malformed", raw[:37] + b"\x00" + raw[38:]),
        ("serial_length_33", "record", "malformed", raw[:37] + b"\x21" + raw[38:]),
        ("serial_has_space", "record", "malformed", _resign(a, body[:38] + b" " + body[39:])),
        ("seq_zero", "record", "malformed", _resign(a, body[:seq_at] + struct.pack("<Q", 0) + body[seq_at + 8 :])),
        (
            "reserved_flag_bit",
            "record",
            "bad_flags",
            _resign(a, body[:flags_at] + struct.pack("<H", 0x0004) + body[flags_at + 2 :]),
        ),
        (
            "seq1_nonzero_prev_hash",
            "record",
            "chain_mismatch",
            _resign(a, body[: 76 + serial_len] + b"\x01" * 32),
        ),
        ("flipped_byte", "record", "bad_signature", bytes(flipped)),
        ("signed_by_other_key", "record", "bad_signature", body + b.sign(DOMAIN + body)),
        ("batch_mixed_devices", "batch", "malformed", encode_batch([r1, rb])),
        ("batch_seq_not_increasing", "batch", "malformed", encode_batch([r2, r1])),
        ("batch_trailing_byte", "batch", "malformed", encode_batch([r1, r2]) + b"\x00"),
        ("batch_count_zero", "batch", "malformed", b"GTXB\x01\x00\x00"),
        ("batch_count_too_high", "batch", "malformed", b"GTXB\x01" + struct.pack("<H", 1001) + raw),
    ]
    return [{"name": n, "kind": k, "reason": reason, "hex": data.hex()} for n, k, reason, data in cases]


def build() -> dict[str, Any]:
    a = DeviceKey.from_seed(SEED_A)
    b = DeviceKey.from_seed(SEED_B)
    wallet = DeviceKey.from_seed(SEED_WALLET)
    central = DeviceKey.from_seed(SEED_CENTRAL)

    r1 = sign_reading(
        a, ReadingFields(meter_serial="SDM630-0001", seq=1, timestamp_ms=T0, import_wh=1_234_567, export_wh=89_012,
                         power_w=1520, prev_hash=ZERO_HASH),
    )  # fmt: skip
    r2 = sign_reading(
        a, ReadingFields(meter_serial="SDM630-0001", seq=2, timestamp_ms=T0 + 60_000, import_wh=1_234_567,
                         export_wh=89_026, power_w=-830, prev_hash=r1.hash()),
    )  # fmt: skip
    r3 = sign_reading(
        a, ReadingFields(meter_serial="SDM630-0001", seq=3, timestamp_ms=T0 + 120_000, import_wh=0, export_wh=0,
                         power_w=0, flags=Flags.METER_REPLACED, prev_hash=r2.hash()),
    )  # fmt: skip
    rb = sign_reading(
        b, ReadingFields(meter_serial="A", seq=1, timestamp_ms=T0, import_wh=0, export_wh=0, power_w=None,
                         prev_hash=ZERO_HASH),
    )  # fmt: skip
    r32 = sign_reading(
        b, ReadingFields(meter_serial="X" * 16 + "0123456789!~#$%&", seq=2, timestamp_ms=T0 + 1, import_wh=2**64 - 1,
                         export_wh=2**63, power_w=2**31 - 1, flags=Flags.CLOCK_UNSYNCED | Flags.METER_REPLACED,
                         prev_hash=rb.hash()),
    )  # fmt: skip
    assert len(r32.meter_serial) == 32

    nonce = bytes(range(0xA0, 0xC0))
    expires_ms = T0 + 300_000
    link = WalletLink(
        user_id=uuid.UUID("0b9a6a4e-4a8f-4a53-9d36-2f1f3c6c7e11"),
        wallet=wallet.device_id,
        nonce=bytes(range(16)),
        expires=datetime(2026, 1, 1, 0, 5, 0, tzinfo=UTC),
    )
    return {
        "version": 1,
        "note": "Generated by protocol/vectors/build.py; all integers little-endian; see docs/protocol.md",
        "power_not_available": POWER_NOT_AVAILABLE,
        "keys": [
            _key_entry("A", a),
            _key_entry("B", b),
            _key_entry("wallet", wallet),
            _key_entry("central", central),
        ],
        "records": [
            _record_entry("seq1_zero_prev_hash", "A", r1),
            _record_entry("chained_successor_exporting", "A", r2),
            _record_entry("meter_replaced_registers_restart", "A", r3),
            _record_entry("serial_length_1_power_not_available", "B", rb),
            _record_entry("serial_length_32_both_flags_extreme_values", "B", r32),
        ],
        "batch": {
            "key": "A",
            "records": ["seq1_zero_prev_hash", "chained_successor_exporting", "meter_replaced_registers_restart"],
            "hex": encode_batch([r1, r2, r3]).hex(),
        },
        "challenge": {
            "key": "A",
            "nonce": nonce.hex(),
            "expires_ms": expires_ms,
            "message_hex": challenge_message(nonce, a.public_key, expires_ms).hex(),
            "signature_hex": sign_challenge(a, nonce, expires_ms).hex(),
        },
        "wallet_link": {
            "key": "wallet",
            "user_id": str(link.user_id),
            "wallet": link.wallet,
            "nonce": link.nonce.hex(),
            "expires": "2026-01-01T00:05:00Z",
            "text": link.message(),
            "signature_hex": wallet.sign(link.message_bytes()).hex(),
        },
        "invalid": _invalid(a, b, r1, r2, rb),
        "central_signed": _central_signed(central, a, nonce, expires_ms, r3),
    }


def _central_signed(central: DeviceKey, a: DeviceKey, nonce: bytes, expires_ms: int, r3: Reading) -> dict[str, Any]:
    """v1.1: central's envelopes (protocol §10) for device A, and A's pairing code."""
    code = pairing_code(a.seed)
    ack = Ack(first=1, last=3, accepted=2, duplicate=0, rejected=((3, Reason.CHAIN_MISMATCH),))
    challenge = PairedChallenge.issue(code, nonce, a.public_key, expires_ms)
    reply = SyncReply(nonce=nonce, last_seq=3, last_hash=r3.hash())
    envelopes = {
        "ack": seal_ack(central, a.device_id, ack),
        "challenge": seal_challenge(central, a.device_id, challenge),
        "sync": seal_sync_reply(central, a.device_id, reply),
    }
    bodies = {"ack": ack.to_json(), "challenge": challenge.to_json(), "sync": reply.to_json()}
    return {
        "central_key": "central",
        "device_key": "A",
        "pairing_code": code,
        "envelopes": [
            {
                "kind": kind,
                "body": bodies[kind].decode(),
                "message_hex": central_message(Kind(kind), a.device_id, bodies[kind]).hex(),
                "json": env.decode(),
            }
            for kind, env in envelopes.items()
        ],
    }


def render() -> str:
    return json.dumps(build(), indent=2) + "\n"


if __name__ == "__main__":
    print(render(), end="")
