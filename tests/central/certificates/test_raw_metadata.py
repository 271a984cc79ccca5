"""Any Token-2022-aware client can read a certificate: decode it from the raw mint account bytes with a parser
written here from the Token-2022 layout, sharing no code with the issuing side (only the issuing itself is called).

Layout: base mint (82 bytes: COption<Pubkey> mint authority, u64 supply, u8 decimals, bool initialised,
COption<Pubkey> freeze authority), zero padding to 165 bytes, account-type byte (1 = mint), then TLV entries
(u16 type, u16 length, value). Type 6 = DefaultAccountState (1 byte: 2 = frozen), 18 = MetadataPointer (authority,
metadata address), 19 = TokenMetadata (Borsh: update authority, mint, name, symbol, uri, Vec<(String, String)>).
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from datetime import UTC, datetime

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from tests.central.certificates.support import CertLedgerEnv, make_meta

TOKEN_2022 = "TokenzQdBNbLqP5VEhdkAS6EPFLC1PHnBqCXEpPxuEb"


def coption(data: bytes, at: int) -> bytes | None:
    tag = int.from_bytes(data[at : at + 4], "little")
    assert tag in (0, 1)
    return data[at + 4 : at + 36] if tag else None


def borsh_str(data: bytes, at: int) -> tuple[str, int]:
    n = int.from_bytes(data[at : at + 4], "little")
    return data[at + 4 : at + 4 + n].decode("utf-8"), at + 4 + n


def parse(data: bytes) -> dict[str, object]:
    out: dict[str, object] = {
        "mint_authority": coption(data, 0),
        "supply": struct.unpack_from("<Q", data, 36)[0],
        "decimals": data[44],
        "initialized": data[45],
        "freeze_authority": coption(data, 46),
    }
    assert data[82:165] == bytes(83), "padding between base mint and account type must be zero"
    out["account_type"] = data[165]
    tlv: dict[int, bytes] = {}
    at = 166
    while at + 4 <= len(data):
        t, n = struct.unpack_from("<HH", data, at)
        if t == 0:
            break
        assert t not in tlv
        tlv[t] = data[at + 4 : at + 4 + n]
        at += 4 + n
    assert at == len(data), "the TLV entries fill the account exactly"
    out["tlv_types"] = sorted(tlv)
    out["default_state"] = tlv[6]
    pointer = tlv[18]
    assert len(pointer) == 64
    out["pointer_authority"], out["pointer_address"] = pointer[:32], pointer[32:]
    md = tlv[19]
    out["update_authority"], out["metadata_mint"] = md[:32], md[32:64]
    pos = 64
    out["name"], pos = borsh_str(md, pos)
    out["symbol"], pos = borsh_str(md, pos)
    out["uri"], pos = borsh_str(md, pos)
    count = int.from_bytes(md[pos : pos + 4], "little")
    pos += 4
    pairs = []
    for _ in range(count):
        k, pos = borsh_str(md, pos)
        v, pos = borsh_str(md, pos)
        pairs.append((k, v))
    assert pos == len(md)
    out["fields"] = pairs
    return out


async def test_metadata_decodes_from_raw_account_bytes(chain_env: CertLedgerEnv) -> None:
    cert_id = uuid.UUID("0b9f1f3c-6a55-4e52-9d43-0d7a2f1b7c11")
    root = hashlib.sha256(b"signed readings of SN-RAW-7").digest()
    meta = make_meta(
        certificate_id=cert_id,
        meter_serial="SN-RAW-7",
        period_start=datetime(2026, 5, 4, 13, 0, tzinfo=UTC),
        period_end=datetime(2026, 5, 4, 13, 15, tzinfo=UTC),
        energy_source="wind",
        energy_wh=987_654,
        issuer="GridTokenX REC Authority",
        issue_date=datetime(2026, 5, 5, 8, 30, 0, tzinfo=UTC),
        expiry_date=datetime(2027, 5, 4, 13, 15, tzinfo=UTC),
        readings_root=root,
    )
    owner = Keypair()
    mint = await chain_env.ops.issue(meta, owner.pubkey())

    account = await chain_env.ledger.get_account(mint)
    assert account is not None
    assert str(account.owner) == TOKEN_2022
    data = bytes(account.data)
    got = parse(data)

    expected_mint = Pubkey.create_with_seed(chain_env.issuer.pubkey(), cert_id.hex, Pubkey.from_string(TOKEN_2022))
    assert mint == expected_mint
    issuer_raw = bytes(chain_env.issuer.pubkey())
    assert got["mint_authority"] is None  # fixed supply
    assert got["supply"] == 987_654
    assert got["decimals"] == 3
    assert got["initialized"] == 1
    assert got["freeze_authority"] == issuer_raw
    assert got["account_type"] == 1
    assert got["tlv_types"] == [6, 18, 19]  # default account state, metadata pointer, token metadata
    assert got["default_state"] == b"\x02"  # new holder accounts start frozen
    assert got["pointer_authority"] == bytes(32)
    assert got["pointer_address"] == bytes(mint)  # metadata lives on the mint itself
    assert got["update_authority"] == issuer_raw
    assert got["metadata_mint"] == bytes(mint)
    assert got["name"] == "GridTokenX REC 0b9f1f3c"
    assert got["symbol"] == "GTXREC"
    assert got["uri"] == "https://gtx.example/api/v1/certificates/0b9f1f3c-6a55-4e52-9d43-0d7a2f1b7c11"
    assert got["fields"] == [
        ("certificate_id", "0b9f1f3c-6a55-4e52-9d43-0d7a2f1b7c11"),
        ("meter_serial", "SN-RAW-7"),
        ("period_start", "2026-05-04T13:00:00Z"),
        ("period_end", "2026-05-04T13:15:00Z"),
        ("energy_source", "wind"),
        ("energy_wh", "987654"),
        ("issuer", "GridTokenX REC Authority"),
        ("issue_date", "2026-05-05T08:30:00Z"),
        ("expiry_date", "2027-05-04T13:15:00Z"),
        ("readings_merkle_root", root.hex()),
    ]
    # The account is funded for exactly its size (rent-exempt).
    assert account.lamports >= await chain_env.ledger.get_minimum_balance_for_rent_exemption(len(data))
