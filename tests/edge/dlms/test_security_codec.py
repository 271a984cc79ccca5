"""Security suite 0 codecs: Hypothesis round trips of protect/unprotect, glo- and general-glo-ciphering, HLS-GMAC
answers, DATA-NOTIFICATION and the ciphered AARQ; every protected form is cross-checked against gurux's own
AES-GCM code (an independent implementation); tampering and wrong keys are refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.dlms import apdu, security
from edge.dlms.axdr import Data, Tag
from edge.dlms.errors import DlmsDecodeError
from edge.dlms.push import obis_values, open_notification
from edge.dlms.security import CipherError, Keys, SecurityPolicy

keys16 = st.binary(min_size=16, max_size=16)
titles = st.binary(min_size=8, max_size=8)
counters = st.integers(0, 2**32 - 1)
policies = st.sampled_from([SecurityPolicy.AUTHENTICATED, SecurityPolicy.ENCRYPTED,
                            SecurityPolicy.AUTHENTICATED_ENCRYPTED])
EK, AK = bytes(range(16)), bytes(range(16, 32))


def gurux_protect(policy: SecurityPolicy, keys: Keys, title: bytes, counter: int, plain: bytes, tag: int) -> bytes:
    from gurux_dlms.AesGcmParameter import AesGcmParameter  # noqa: PLC0415 - GPL, test-only
    from gurux_dlms.enums import Security  # noqa: PLC0415
    from gurux_dlms.GXDLMSChippering import GXDLMSChippering  # noqa: PLC0415

    p = AesGcmParameter(tag, title, keys.ek, keys.ak)
    p.security = Security(int(policy))
    p.invocationCounter = counter
    return bytes(GXDLMSChippering.encryptAesGcm(p, plain))


@settings(max_examples=150, deadline=None)  # the first call imports gurux
@given(policies, keys16, keys16, titles, counters, st.binary(max_size=300))
def test_protect_round_trips_and_matches_gurux(
    policy: SecurityPolicy, ek: bytes, ak: bytes, title: bytes, counter: int, plain: bytes
) -> None:
    keys = Keys(ek, ak)
    content = security.protect(policy, keys, title, counter, plain)
    u = security.unprotect(keys, title, content)
    assert (u.policy, u.counter, u.plaintext) == (policy, counter, plain)
    # The glo- form equals what gurux builds for the same tag, key, title and counter.
    get = b"\xc0" + plain
    assert security.wrap_glo(policy, keys, title, counter, get) == gurux_protect(policy, keys, title, counter, get,
                                                                                 0xC8)
    general = security.wrap_general_glo(policy, keys, title, counter, plain)
    assert general == gurux_protect(policy, keys, title, counter, plain, 0xDB)
    opened = security.unwrap(keys, None, general)
    assert (opened.apdu, opened.counter, opened.system_title) == (plain, counter, title)


@given(st.sampled_from([SecurityPolicy.AUTHENTICATED, SecurityPolicy.AUTHENTICATED_ENCRYPTED]), keys16, titles,
       counters, st.binary(min_size=1, max_size=100), st.data())
def test_tampering_or_a_wrong_key_is_refused(
    policy: SecurityPolicy, other: bytes, title: bytes, counter: int, plain: bytes, data: st.DataObject
) -> None:
    keys = Keys(EK, AK)
    content = bytearray(security.protect(policy, keys, title, counter, plain))
    i = data.draw(st.integers(1, len(content) - 1))  # any byte after SC: counter, body or tag
    content[i] ^= data.draw(st.integers(1, 255))
    with pytest.raises(CipherError):
        security.unprotect(keys, title, bytes(content))
    good = security.protect(policy, keys, title, counter, plain)
    wrong = Keys(other, AK) if data.draw(st.booleans()) else Keys(EK, other)
    if wrong != keys:
        with pytest.raises(CipherError) as err:
            security.unprotect(wrong, title, good)
        assert other.hex() not in str(err.value)
        assert EK.hex() not in str(err.value)


@given(keys16, keys16, titles, titles, counters, st.binary(min_size=8, max_size=64))
def test_gmac_answer_checks(ek: bytes, ak: bytes, t1: bytes, t2: bytes, counter: int, challenge: bytes) -> None:
    keys = Keys(ek, ak)
    answer = security.gmac(keys, t1, counter, challenge)
    assert answer[0] == 0x10
    assert len(answer) == 17
    assert security.check_gmac(keys, t1, challenge, answer) == counter
    if t1 != t2:
        with pytest.raises(CipherError):
            security.check_gmac(keys, t2, challenge, answer)


def test_glo_tag_must_hold_its_apdu() -> None:
    keys = Keys(EK, AK)
    wrong = b"\xc8" + security.wrap_glo(SecurityPolicy.AUTHENTICATED_ENCRYPTED, keys, b"ABCDEFGH", 5,
                                        b"\xc4\x01\xc1\x00\x00")[1:]  # a GET-Response inside glo-get-request
    with pytest.raises(DlmsDecodeError):
        security.unwrap(keys, b"ABCDEFGH", wrong)
    with pytest.raises(ValueError, match="16 bytes"):
        Keys(b"short", AK)
    assert "ek" not in repr(keys) or EK.hex() not in repr(keys)
    assert EK.hex() not in repr(keys)


energies = st.integers(0, 2**64 - 1)


@given(energies, energies, st.integers(-(2**31), 2**31 - 1), st.integers(-3, 3),
       st.one_of(st.none(), st.binary(min_size=12, max_size=12)), st.integers(0, 2**32 - 1))
def test_data_notification_round_trip(
    imp: int, exp: int, power: int, scaler: int, stamp: bytes | None, invoke: int
) -> None:
    def su(u: int) -> Data:
        return Data(Tag.STRUCTURE, (Data(Tag.INTEGER, scaler), Data(Tag.ENUM, u)))

    body = Data(Tag.STRUCTURE, (
        Data(Tag.OCTET_STRING, bytes([1, 0, 1, 8, 0, 255])), Data(Tag.LONG64_UNSIGNED, imp), su(30),
        Data(Tag.OCTET_STRING, bytes([1, 0, 2, 8, 0, 255])), Data(Tag.LONG64_UNSIGNED, exp), su(30),
        Data(Tag.OCTET_STRING, bytes([1, 0, 16, 7, 0, 255])), Data(Tag.DOUBLE_LONG, power),
    ))
    raw = apdu.build_data_notification(invoke, stamp, body)
    n = apdu.parse_data_notification(raw)
    assert (n.invoke_id, n.date_time, n.body) == (invoke, stamp, body)
    values = obis_values(n.body)
    assert values[(1, 0, 1, 8, 0, 255)].value.value == imp
    assert values[(1, 0, 1, 8, 0, 255)].scaler == scaler
    assert values[(1, 0, 16, 7, 0, 255)].scaler is None
    ciphered = security.wrap_general_glo(SecurityPolicy.AUTHENTICATED_ENCRYPTED, Keys(EK, AK), b"KFM12345", 9, raw)
    note = open_notification(ciphered, Keys(EK, AK), b"KFM12345")
    assert note.counter == 9
    assert note.values == values


@given(st.booleans(), titles, st.binary(min_size=8, max_size=64), st.binary(min_size=1, max_size=80))
def test_aarq_carries_context_title_mechanism_and_user_information(
    ciphered: bool, title: bytes, challenge: bytes, info: bytes
) -> None:
    raw = apdu.build_aarq(ciphered=ciphered, system_title=title, challenge=challenge, user_information=info)
    assert raw[0] == 0x60
    items = dict(apdu._ber_items(raw[2:] if raw[1] < 0x80 else raw[2 + (raw[1] & 0x7F):]))
    assert items[0xA1][2:] == (apdu.APP_CONTEXT_LN_CIPHERED if ciphered else apdu.APP_CONTEXT_LN)
    assert items[0xA6] == b"\x04\x08" + title
    assert items[0x8B] == apdu.MECHANISM_HLS_GMAC
    assert apdu._ber_items(items[0xAC]) == [(0x80, challenge)]
    assert apdu._ber_items(items[0xBE]) == [(0x04, info)]
    with pytest.raises(ValueError, match="not both"):
        apdu.build_aarq(b"pw", challenge=challenge)


def test_golden_vector_glo_get_request() -> None:
    # The DLMS UA Green Book's worked example of security suite 0 (authenticated and encrypted GET-Request): EK
    # 00..0F, AK D0..DF, system title 4D4D4D0000BC614E, invocation counter 01234567.
    keys = Keys(bytes.fromhex("000102030405060708090A0B0C0D0E0F"), bytes.fromhex("D0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"))
    title = bytes.fromhex("4D4D4D0000BC614E")
    plain = bytes.fromhex("C0010000080000010000FF0200")
    ciphered = bytes.fromhex("C81E3001234567411312FF935A47566827C467BC7D825C3BE4A77C3FCC056B6B")
    assert security.wrap_glo(SecurityPolicy.AUTHENTICATED_ENCRYPTED, keys, title, 0x01234567, plain) == ciphered
    opened = security.unwrap(keys, title, ciphered)
    assert (opened.apdu, opened.counter) == (plain, 0x01234567)
