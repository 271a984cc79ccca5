"""The golden vectors are the normative examples of protocol v1: they must match the code byte for byte."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from protocol.batch import decode_batch
from protocol.challenge import challenge_message, verify_challenge
from protocol.errors import ProtocolError
from protocol.keys import DeviceKey
from protocol.record import ReadingFields, decode_reading, sign_reading
from protocol.vectors.build import render
from protocol.wallet_link import WalletLink, verify_wallet_link

VECTORS_PATH = Path(__file__).parents[2] / "protocol" / "vectors" / "v1.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
KEYS = {k["name"]: k for k in VECTORS["keys"]}


def test_file_is_what_the_code_generates() -> None:
    assert VECTORS_PATH.read_text() == render(), "regenerate with: python -m protocol.vectors.build"


def test_requirements_of_the_vector_set() -> None:
    records = VECTORS["records"]
    assert len(records) >= 5
    lengths = {len(r["fields"]["meter_serial"]) for r in records}
    assert {1, 32} <= lengths
    assert any(r["fields"]["power_w"] is None for r in records)
    assert any(r["fields"]["flags"] == 3 for r in records)
    assert any(r["fields"]["seq"] == 1 and set(r["fields"]["prev_hash"]) == {"0"} for r in records)
    assert len(VECTORS["invalid"]) >= 8


@pytest.mark.parametrize("key", VECTORS["keys"], ids=lambda k: k["name"])
def test_keys(key: dict[str, str]) -> None:
    k = DeviceKey.from_seed(bytes.fromhex(key["seed"]))
    assert k.public_key.hex() == key["public_key"]
    assert k.device_id == key["device_id"]


@pytest.mark.parametrize("vec", VECTORS["records"], ids=lambda v: v["name"])
def test_record_vectors(vec: dict[str, Any]) -> None:
    key = DeviceKey.from_seed(bytes.fromhex(KEYS[vec["key"]]["seed"]))
    f = vec["fields"]
    signed = sign_reading(
        key,
        ReadingFields(
            meter_serial=f["meter_serial"],
            seq=f["seq"],
            timestamp_ms=f["timestamp_ms"],
            import_wh=f["import_wh"],
            export_wh=f["export_wh"],
            power_w=f["power_w"],
            flags=f["flags"],
            prev_hash=bytes.fromhex(f["prev_hash"]),
        ),
    )
    assert signed.encode().hex() == vec["hex"]
    decoded = decode_reading(bytes.fromhex(vec["hex"]))
    assert decoded == signed
    assert decoded.hash().hex() == vec["hash"]
    assert len(decoded.encode()) == 172 + len(f["meter_serial"])


def test_chained_vectors_link_by_hash() -> None:
    by_name = {r["name"]: r for r in VECTORS["records"]}
    assert by_name["chained_successor_exporting"]["fields"]["prev_hash"] == by_name["seq1_zero_prev_hash"]["hash"]


def test_batch_vector() -> None:
    batch = VECTORS["batch"]
    readings = decode_batch(bytes.fromhex(batch["hex"]))
    by_name = {r["name"]: r for r in VECTORS["records"]}
    assert [r.encode().hex() for r in readings] == [by_name[n]["hex"] for n in batch["records"]]


def test_challenge_vector() -> None:
    c = VECTORS["challenge"]
    public_key = bytes.fromhex(KEYS[c["key"]]["public_key"])
    nonce = bytes.fromhex(c["nonce"])
    assert challenge_message(nonce, public_key, c["expires_ms"]).hex() == c["message_hex"]
    verify_challenge(public_key, nonce, c["expires_ms"], bytes.fromhex(c["signature_hex"]))


def test_wallet_link_vector() -> None:
    w = VECTORS["wallet_link"]
    link = WalletLink.parse(w["text"])
    assert link == WalletLink(
        user_id=uuid.UUID(w["user_id"]),
        wallet=w["wallet"],
        nonce=bytes.fromhex(w["nonce"]),
        expires=datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
    )
    assert link.message() == w["text"]
    assert not w["text"].endswith("\n")
    verify_wallet_link(link, bytes.fromhex(w["signature_hex"]))


@pytest.mark.parametrize("vec", VECTORS["invalid"], ids=lambda v: v["name"])
def test_invalid_vectors(vec: dict[str, str]) -> None:
    data = bytes.fromhex(vec["hex"])
    decode = decode_reading if vec["kind"] == "record" else decode_batch
    with pytest.raises(ProtocolError) as info:
        decode(data)
    assert info.value.reason == vec["reason"]
