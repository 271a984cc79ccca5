"""One P1 telegram to exact values: CRC16 check, suite-0 decryption (AES-128-GCM with ``cryptography``), parsing of
the mapped registers, and conversion to exact numbers in base units (Wh, W, V, ...), never through a float.

The parser is ours and small (docs/decisions/0015-dsmr-parser-for-p1.md): a telegram is a header line (``/``, the
maker's three-letter id, ``5``, the model), then lines ``A-B:C.D.E(value*unit)(...)`` and the end mark ``!CRC``.
``dsmr_parser`` is its test oracle (tests/edge/p1/test_oracle.py): for every variant, the values here are the values
it reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from zoneinfo import ZoneInfo

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from edge.p1.crc import crc16
from edge.p1.errors import CrcError, DecryptError, TelegramError, TruncatedError
from edge.p1.framing import GLO_CIPHER_TAG, LONG_LENGTH_2
from edge.p1.variants import Variant

UNIT_FACTORS: Mapping[str, int] = {"kWh": 1000, "Wh": 1, "kW": 1000, "W": 1, "V": 1, "A": 1}
TIMESTAMP = "0-0:1.0.0"
#: DSMR timestamps are local time (CET/CEST) with S (summer) or W (winter), as dsmr_parser reads them
_DSMR_TZ = ZoneInfo("Europe/Amsterdam")
#: ``A-B:C.D.E``, then the value groups; the code may carry its sixth group, the billing period, as EasyMeter's D0
#: output (``*255``) or the DSMR 4.0 companion standard's example telegram (``.255``) write it
_LINE = re.compile(r"^(\d{1,3}-\d{1,3}:\d{1,3}\.\d{1,3}\.\d{1,3})(?:[*.]\d{1,3})?((?:\([^()\r\n]*\))+)$")
#: a decimal, signed as dsmr_parser reads it (a net power line); a negative energy sum is refused by build_sample
_NUMBER = re.compile(r"^-?\d{1,15}(?:\.\d{1,9})?$")
_LINE_END = re.compile(r"\r?\n")
_ENERGY = re.compile(r"^1-0:[12]\.8\.\d{1,3}$")  # active energy registers, A+ and A-, total and per tariff
_CRC_LINE = re.compile(rb"([0-9A-Fa-f]{1,4})?\r?\n?")
_STAMP = re.compile(r"^(\d{12})([SW])?$")
TAG_BYTES = 12
SC_AUTHENTICATED, SC_ENCRYPTED = 0x10, 0x20


def crc_digits(frame: bytes) -> bytes | None:
    """The CRC after the telegram's ``!`` (1 to 4 hex digits: some meters leave out leading zeros), or None when
    the telegram carries none (DSMR 2.2 / 3, Iskra IE without one)."""
    bang = frame.rfind(b"!")
    if bang < 0:
        return None
    m = _CRC_LINE.fullmatch(frame, bang + 1)
    return m.group(1) if m is not None and m.group(1) else None


def check_crc(frame: bytes) -> None:
    """Raise CrcError unless the telegram's CRC16 (over ``/`` .. ``!``) matches the hex digits after ``!``."""
    bang = frame.rfind(b"!")
    if bang < 0 or _CRC_LINE.fullmatch(frame, bang + 1) is None:
        raise CrcError("telegram CRC is not 1 to 4 hexadecimal digits" if bang >= 0 else "telegram has no end mark")
    digits = crc_digits(frame)
    if digits is None:
        raise CrcError("telegram has no CRC")
    expected = int(digits, 16)
    actual = crc16(frame[: bang + 1])
    if actual != expected:
        hint = ""
        if b"\n" in frame and b"\r\n" not in frame:
            hint = " (its lines end in LF alone: something on the way rewrote the meter's CR LF, which the CRC covers)"
        raise CrcError(f"CRC mismatch: telegram says {expected:04X}, content gives {actual:04X}{hint}")


def decrypt(frame: bytes, key: bytes, auth_key: bytes) -> bytes:
    """The plaintext telegram inside a general-glo-ciphering APDU (DLMS security suite 0): ``0xDB``, system title,
    length, security control, frame counter, ciphertext, 12-byte GCM tag. DecryptError when the tag does not verify
    (wrong key, or a damaged frame); an unauthenticated frame must at least decrypt to a telegram."""
    if len(frame) < 2 or frame[0] != GLO_CIPHER_TAG:
        raise TruncatedError("not a general-glo-ciphering frame")
    title_len = frame[1]
    title = frame[2 : 2 + title_len]
    at = 2 + title_len
    if len(title) != title_len or frame[at : at + 1] != bytes([LONG_LENGTH_2]):
        raise TruncatedError("not a general-glo-ciphering frame")
    length = int.from_bytes(frame[at + 1 : at + 3], "big")
    body = frame[at + 3 :]
    if len(body) != length or length < 5 + TAG_BYTES:
        raise TruncatedError(f"frame length {length} does not match its {len(body)} bytes")
    sc, iv = body[0], title + body[1:5]
    if not sc & SC_ENCRYPTED:
        raise DecryptError(f"security control 0x{sc:02X}: not an encrypted frame")
    if sc & SC_AUTHENTICATED:
        ciphertext, tag = body[5:-TAG_BYTES], body[-TAG_BYTES:]
        decryptor = Cipher(algorithms.AES(key), modes.GCM(iv, tag, min_tag_length=TAG_BYTES)).decryptor()
        decryptor.authenticate_additional_data(bytes([sc]) + auth_key)
        try:
            plain = decryptor.update(ciphertext) + decryptor.finalize()
        except InvalidTag:
            raise DecryptError("authentication tag does not verify (wrong key, or a damaged frame)") from None
    else:  # encryption only: GCM without its tag is AES-CTR from counter 2
        ctr = Cipher(algorithms.AES(key), modes.CTR(iv + (2).to_bytes(4, "big"))).decryptor()
        plain = ctr.update(body[5:]) + ctr.finalize()
        if not plain.startswith(b"/"):
            raise DecryptError("frame does not decrypt to a telegram (wrong key?)")
    return plain


def needs_crc_check(variant: Variant, telegram: bytes) -> bool:
    """Whether to check the telegram's CRC: always for a variant that has one, and for the others (DSMR 2.2 / 3,
    Iskra IE) whenever the telegram carries one anyway (a damaged telegram must not pass for want of a rule)."""
    return variant.crc or crc_digits(telegram) is not None


@dataclass(frozen=True, slots=True)
class P1Register:
    """A measurement read from a telegram: the sum of ``plus`` registers less the sum of ``minus`` registers,
    each of which must carry ``unit``."""

    name: str
    plus: tuple[str, ...]
    minus: tuple[str, ...]
    unit: str


@dataclass(frozen=True, slots=True)
class P1Values:
    values: Mapping[str, Fraction]  # base units: Wh, W, V, A ...
    meter_time_ms: int | None
    header: str


def parse_lines(text: str) -> tuple[str, dict[str, list[str]]]:
    """The header line and each register's value groups (the text between parentheses), first occurrence kept.
    Lines end in CR LF, or LF alone when something on the way rewrote them (no CRC then, or it would not match)."""
    lines = _LINE_END.split(text)
    header = lines[0]
    if not header.startswith("/"):
        raise TelegramError("telegram does not start with an identification line")
    out: dict[str, list[str]] = {}
    for line in lines[1:]:
        m = _LINE.match(line)
        if m is not None and m.group(1) not in out:
            out[m.group(1)] = m.group(2)[1:-1].split(")(")
    return header, out


def meter_time_ms(groups: Mapping[str, list[str]]) -> int | None:
    """The telegram's own timestamp (``0-0:1.0.0(YYMMDDhhmmssX)``) in UTC milliseconds, or None."""
    raw = groups.get(TIMESTAMP)
    m = _STAMP.match(raw[0]) if raw else None
    if m is None:
        return None
    try:
        naive = datetime.strptime(m.group(1), "%y%m%d%H%M%S")  # noqa: DTZ007 - local DSMR time, zone set below
    except ValueError:
        return None
    local = naive.replace(tzinfo=_DSMR_TZ, fold=1 if m.group(2) == "W" else 0)  # W: the second 02:xx in October
    return int(local.timestamp()) * 1000


class TelegramDecoder:
    """Turns one meter's plaintext telegrams into :class:`P1Values` by its map's registers."""

    def __init__(self, variant: Variant, registers: Sequence[P1Register]) -> None:
        for r in registers:
            for code in (*r.plus, *r.minus):
                if not variant.knows(code):
                    raise ValueError(f"variant {variant.name} has no register {code}")
        self.variant = variant
        self.registers = tuple(registers)

    def decode(self, telegram: bytes) -> P1Values:
        if needs_crc_check(self.variant, telegram):
            check_crc(telegram)
        try:
            text = telegram.decode("ascii")
        except UnicodeDecodeError:
            raise TelegramError("telegram is not ASCII") from None
        header, groups = parse_lines(text)
        values = {r.name: self._register(groups, r) for r in self.registers}
        return P1Values(values, meter_time_ms(groups), header)

    @staticmethod
    def _value(groups: Mapping[str, list[str]], code: str, unit: str) -> Fraction:
        raw = groups.get(code)
        if raw is None:
            carried = ", ".join(c for c in groups if _ENERGY.match(c)) or "no electricity energy register"
            raise TelegramError(f"telegram has no register {code} (it carries {carried})")
        if len(raw) != 1:
            raise TelegramError(f"register {code} has {len(raw)} values, expected 1")
        number, star, got = raw[0].partition("*")
        if not star:  # e.g. '(000123.456kWh)' (openHAB's Fluvius capture) or a unitless register ('(4.556)')
            raise TelegramError(f"register {code} has no '*unit' ({raw[0]!r}), the meter map expects {unit!r}")
        if got != unit:
            raise TelegramError(f"register {code} is in {got!r}, the meter map expects {unit!r}")
        if not _NUMBER.match(number):
            raise TelegramError(f"register {code} is not a number: {number!r}")
        try:
            return Fraction(Decimal(number)) * UNIT_FACTORS[unit]
        except InvalidOperation:  # pragma: no cover - the pattern above admits only decimals
            raise TelegramError(f"register {code} is not a number") from None

    def _register(self, groups: Mapping[str, list[str]], r: P1Register) -> Fraction:
        plus = sum((self._value(groups, c, r.unit) for c in r.plus), Fraction(0))
        return plus - sum((self._value(groups, c, r.unit) for c in r.minus), Fraction(0))
