"""Encoding properties: metadata fields round-trip, token-metadata sizes match the Borsh encoding, decoders reject
truncation, instruction encodings match the spec's discriminators."""

from __future__ import annotations

import contextlib
import hashlib
import struct
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.keypair import Keypair

from central.certificates import token2022
from central.certificates.accounts import decode_mint, decode_token_account, decode_token_metadata
from central.certificates.errors import InvalidCertificateError
from central.certificates.metadata import CertificateMetadata

text = st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "Zs")), min_size=1, max_size=64).filter(
    str.isprintable
)
times = st.datetimes(
    min_value=datetime(2020, 1, 1),
    max_value=datetime(2090, 1, 1),
    timezones=st.just(UTC),
).map(lambda t: t.replace(microsecond=0))


@st.composite
def metadata(draw: st.DrawFn) -> CertificateMetadata:
    start = draw(times)
    issue = draw(times)
    return CertificateMetadata(
        certificate_id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))),
        meter_serial=draw(text),
        period_start=start,
        period_end=start + timedelta(seconds=draw(st.integers(1, 10**8))),
        energy_source=draw(text),
        energy_wh=draw(st.integers(1, 2**64 - 1)),
        issuer=draw(text),
        issue_date=issue,
        expiry_date=issue + timedelta(seconds=draw(st.integers(1, 10**8))),
        readings_root=draw(st.binary(min_size=32, max_size=32)),
    )


@given(metadata())
def test_fields_round_trip(meta: CertificateMetadata) -> None:
    assert CertificateMetadata.from_fields(meta.fields()) == meta


def encode(update: bytes, mint: bytes, name: str, symbol: str, uri: str, fields: list[tuple[str, str]]) -> bytes:
    def s(v: str) -> bytes:
        return struct.pack("<I", len(v.encode())) + v.encode()

    body = update + mint + s(name) + s(symbol) + s(uri) + struct.pack("<I", len(fields))
    return body + b"".join(s(k) + s(v) for k, v in fields)


@given(text, text, text, st.lists(st.tuples(text, text), max_size=12))
def test_token_metadata_len_and_decode(name: str, symbol: str, uri: str, fields: list[tuple[str, str]]) -> None:
    update, mint = bytes(Keypair().pubkey()), bytes(Keypair().pubkey())
    raw = encode(update, mint, name, symbol, uri, fields)
    assert token2022.token_metadata_value_len(name, symbol, uri, fields) == len(raw)
    decoded = decode_token_metadata(raw)
    assert (decoded.name, decoded.symbol, decoded.uri, list(decoded.additional)) == (name, symbol, uri, fields)
    assert bytes(decoded.mint) == mint
    assert decoded.update_authority is not None
    for cut in (1, len(raw) // 2):
        with pytest.raises(InvalidCertificateError):
            decode_token_metadata(raw[:-cut])


def test_bad_field_values_are_refused() -> None:
    good = dict(
        CertificateMetadata(
            uuid.uuid4(),
            "SN",
            datetime(2026, 1, 1, tzinfo=UTC),
            datetime(2026, 1, 2, tzinfo=UTC),
            "solar",
            5,
            "iss",
            datetime(2026, 1, 3, tzinfo=UTC),
            datetime(2027, 1, 3, tzinfo=UTC),
            hashlib.sha256().digest(),
        ).fields()
    )
    for key, bad in (
        ("energy_wh", "-5"),
        ("energy_wh", "05"),
        ("energy_wh", "0"),
        ("readings_merkle_root", "ab"),
        ("period_end", "2025-01-01T00:00:00Z"),
        ("issue_date", "yesterday"),
        ("certificate_id", "nope"),
    ):
        with pytest.raises(InvalidCertificateError):
            CertificateMetadata.from_fields({**good, key: bad})
    missing = {k: v for k, v in good.items() if k != "issuer"}
    with pytest.raises(InvalidCertificateError):
        CertificateMetadata.from_fields(missing)


def test_discriminators_and_pointer_encoding() -> None:
    # First 8 bytes of sha256 of the interface namespaces, as in spl-token-metadata-interface.
    assert bytes([210, 225, 30, 162, 88, 184, 77, 141]) == token2022.METADATA_INITIALIZE
    assert bytes([221, 233, 49, 45, 181, 202, 220, 200]) == token2022.METADATA_UPDATE_FIELD
    mint = Keypair().pubkey()
    ix = token2022.initialize_metadata_pointer(mint, None, mint)
    assert bytes(ix.data) == bytes([39, 0]) + bytes(32) + bytes(mint)
    assert token2022.mint_len_at_creation() == 239


def test_decode_mint_rejects_garbage() -> None:
    with pytest.raises(InvalidCertificateError):
        decode_mint(b"\x00" * 10)
    bad_tag = b"\x07\x00\x00\x00" + bytes(78)
    with pytest.raises(InvalidCertificateError):
        decode_mint(bad_tag)
    not_mint = bytes(165) + b"\x02" + bytes(10)
    with pytest.raises(InvalidCertificateError):
        decode_mint(not_mint)


@given(st.binary(max_size=600))
def test_decoders_never_fail_other_than_cleanly(data: bytes) -> None:
    for decode in (decode_mint, decode_token_metadata, decode_token_account):
        with contextlib.suppress(InvalidCertificateError):
            decode(data)


@given(st.binary(min_size=1, max_size=300), st.sampled_from([6, 7, 18, 19, 65535]))
def test_mint_decoder_survives_arbitrary_tlv_entries(value: bytes, ext_type: int) -> None:
    data = bytes(165) + b"\x01" + ext_type.to_bytes(2, "little") + len(value).to_bytes(2, "little") + value
    with contextlib.suppress(InvalidCertificateError):
        decode_mint(data)
