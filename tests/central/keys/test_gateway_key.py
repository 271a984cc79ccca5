"""The gateway's device key in a secure element through PKCS#11 (SoftHSM2 standing in for an NXP SE050): the edge
signs readings with the token key and central's ingest verifies and stores them; the key file stays the default."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from pkcs11 import Attribute

from edge.config import parse_config
from edge.devicekey import TokenDeviceKey, load_device_key
from edge.errors import ConfigError
from edge.signing import ProtocolSigner
from gtxhsm import Pkcs11Settings
from protocol.errors import BadSignatureError
from protocol.record import ZERO_HASH, ReadingFields, decode_reading
from protocol.signed import pairing_code
from tests.central.gateway import ingest, ingest_service
from tests.central.pg import add_device, add_meter, add_user
from tests.edge.daemon.daemon_config import config_text
from tests.hsm_support import softhsm_token


def _edge_toml(tmp_path: Path, token: Pkcs11Settings) -> str:
    text = config_text(tmp_path / "state").replace("[device]\n", '[device]\nkey_store = "pkcs11"\n', 1)
    return text + (f'\n[device.pkcs11]\nmodule = "{token.module}"\ntoken_label = "{token.token_label}"\n'
                   f'pin_file = "{token.pin_file}"\nkey_label = "gtx-device"\n')


async def test_edge_signs_readings_in_the_token_and_central_verifies_them(pool: asyncpg.Pool, tmp_path: Path) -> None:
    with softhsm_token(tmp_path / "se050") as token:
        cfg = parse_config(_edge_toml(tmp_path, token), tmp_path / "edge.toml")
        assert cfg.key_store == "pkcs11"
        loaded = load_device_key(cfg)
        try:
            assert loaded.created
            key = loaded.key
            assert isinstance(key, TokenDeviceKey)
            assert not cfg.key_path.exists()  # no key file: a copied SD card holds nothing that signs
            assert key._key.attribute(Attribute.EXTRACTABLE) is False
            assert not hasattr(key, "seed")

            signer = ProtocolSigner(key)
            records, prev = [], ZERO_HASH
            for seq in range(1, 6):
                signed = signer(ReadingFields(meter_serial="SE-1", seq=seq, timestamp_ms=1_700_000_000_000 + seq,
                                              import_wh=1000 + seq, export_wh=10 * seq, power_w=None,
                                              prev_hash=prev))
                prev = signed.hash
                records.append(decode_reading(signed.data))  # verifies the signature
            # central: the device registered with the token key's public key verifies and stores every record
            owner = await add_user(pool)
            await add_device(pool, key.device_id, key.public_key)
            await add_meter(pool, key.device_id, "SE-1", owner)
            ack = await ingest(ingest_service(pool, 1_700_000_000_000 + 60_000), key.device_id, records)
            assert ack.accepted == 5
            stored = await pool.fetchval("SELECT count(*) FROM readings WHERE device_id = $1", key.device_id)
            assert stored == 5
            forged = bytearray(records[0].encode())
            forged[-1] ^= 1
            with pytest.raises(BadSignatureError):
                decode_reading(bytes(forged))
            first_code = pairing_code(loaded.pairing_secret)
        finally:
            loaded.close()
        # the next start finds the same key (and so the same device id and pairing code) in the token
        again = load_device_key(cfg)
        try:
            assert not again.created
            assert again.key.device_id == key.device_id
            assert pairing_code(again.pairing_secret) == first_code
        finally:
            again.close()


def test_pkcs11_key_store_config_rules(tmp_path: Path) -> None:
    with softhsm_token(tmp_path / "se050") as token:
        text = _edge_toml(tmp_path, token)
        no_table = config_text(tmp_path / "state").replace("[device]\n", '[device]\nkey_store = "pkcs11"\n', 1)
        with pytest.raises(ConfigError, match=r"needs a \[device.pkcs11\] table"):
            parse_config(no_table, tmp_path / "edge.toml")
        token.pin_file.chmod(0o644)
        with pytest.raises(ConfigError, match=r"device\.pkcs11\.pin_file"):
            parse_config(text, tmp_path / "edge.toml")
        token.pin_file.chmod(0o600)
        default = parse_config(config_text(tmp_path / "state"), tmp_path / "edge.toml")
        assert default.key_store == "file"  # the file key stays the default
        assert default.pkcs11 is None
