"""DLMS/COSEM security suite 0 (Green Book, IEC 62056-5-3 §5): AES-GCM-128 protection of xDLMS APDUs with the
global unicast encryption key (EK) and authentication key (AK), HLS-GMAC (mechanism 5) challenge answers, and the
glo-/general-glo-ciphering envelopes. Pure functions over bytes; keys never appear in errors or reprs.

A protected APDU carries ``SC || IC || payload``: the security control byte (0x10 authenticated, 0x20 encrypted,
0x30 both; suite 0 in the low nibble), the 4-byte invocation counter, and the payload. The GCM nonce is the
sender's 8-byte system title followed by IC; the additional data is ``SC || AK`` (and the plaintext itself when only
authenticated). Tags are the first 12 bytes of the GCM tag.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import IntEnum

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from edge.dlms.axdr import decode_length, encode_length
from edge.dlms.errors import DlmsDecodeError, DlmsError

TAG_LEN = 12
KEY_LEN = 16
SYSTEM_TITLE_LEN = 8
MAX_COUNTER = 0xFFFFFFFF
SUITE_0 = 0x00
GENERAL_GLO_CIPHERING = 0xDB

# Unciphered APDU tag -> its global-key ciphered counterpart (IEC 62056-5-3 table "glo-" APDUs).
GLO_TAGS = {
    0x01: 0x21,  # initiate-request -> glo-initiate-request
    0x08: 0x28,  # initiate-response -> glo-initiate-response
    0xC0: 0xC8,  # get-request -> glo-get-request
    0xC1: 0xC9,  # set-request -> glo-set-request
    0xC2: 0xCA,  # event-notification-request -> glo-event-notification-request
    0xC3: 0xCB,  # action-request -> glo-action-request
    0xC4: 0xCC,  # get-response -> glo-get-response
    0xC5: 0xCD,  # set-response -> glo-set-response
    0xC7: 0xCF,  # action-response -> glo-action-response
}
PLAIN_TAGS = {v: k for k, v in GLO_TAGS.items()}


class SecurityPolicy(IntEnum):
    """Which protection each APDU gets: the SC bits."""

    NONE = 0x00
    AUTHENTICATED = 0x10
    ENCRYPTED = 0x20
    AUTHENTICATED_ENCRYPTED = 0x30


class CipherError(DlmsError):
    """A protected APDU failed its tag check or could not be deciphered: wrong key, wrong system title, or tampering.
    The message never contains key material."""


@dataclass(frozen=True, slots=True)
class Keys:
    """Global unicast encryption key and authentication key (16 bytes each). Not printable."""

    ek: bytes = field(repr=False)
    ak: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.ek) != KEY_LEN or len(self.ak) != KEY_LEN:
            raise ValueError("EK and AK are 16 bytes each (AES-128)")

    @property
    def key_id(self) -> str:
        """A digest naming this key pair (16 hex digits; the keys cannot be learned from it), for state kept per
        key: a meter's counters restart with new keys."""
        return hashlib.sha256(b"gridtokenx dlms keys\0" + self.ek + self.ak).hexdigest()[:16]


def nonce(system_title: bytes, counter: int) -> bytes:
    if len(system_title) != SYSTEM_TITLE_LEN:
        raise ValueError("a system title is 8 bytes")
    if not 0 <= counter <= MAX_COUNTER:
        raise ValueError("invocation counter out of range")
    return system_title + counter.to_bytes(4, "big")


def _gcm_tag(key: bytes, iv: bytes, aad: bytes, data: bytes) -> tuple[bytes, bytes]:
    """(ciphertext, 12-byte tag) of AES-GCM over ``data`` with ``aad``."""
    out = AESGCM(key).encrypt(iv, data, aad)
    return out[:-16], out[-16:][:TAG_LEN]


def protect(policy: SecurityPolicy, keys: Keys, system_title: bytes, counter: int, plaintext: bytes) -> bytes:
    """``SC || IC || payload`` for ``plaintext`` sent by ``system_title`` with invocation counter ``counter``."""
    if policy is SecurityPolicy.NONE:
        raise ValueError("protect() needs a policy with authentication and/or encryption")
    sc = int(policy) | SUITE_0
    iv = nonce(system_title, counter)
    head = bytes([sc]) + counter.to_bytes(4, "big")
    if policy is SecurityPolicy.AUTHENTICATED:
        _, tag = _gcm_tag(keys.ek, iv, bytes([sc]) + keys.ak + plaintext, b"")
        return head + plaintext + tag
    if policy is SecurityPolicy.ENCRYPTED:
        encryptor = Cipher(algorithms.AES(keys.ek), modes.CTR(iv + b"\x00\x00\x00\x02")).encryptor()
        return head + encryptor.update(plaintext) + encryptor.finalize()
    ct, tag = _gcm_tag(keys.ek, iv, bytes([sc]) + keys.ak, plaintext)
    return head + ct + tag


@dataclass(frozen=True, slots=True)
class Unprotected:
    policy: SecurityPolicy
    counter: int
    plaintext: bytes


def unprotect(keys: Keys, system_title: bytes, content: bytes) -> Unprotected:
    """Check and decipher ``SC || IC || payload`` sent by ``system_title``. Raises CipherError on a bad tag."""
    if len(content) < 5:
        raise DlmsDecodeError("truncated ciphered content")
    sc = content[0]
    if sc & 0x0F != SUITE_0 or sc & 0xC0:
        raise DlmsDecodeError(f"unsupported security control byte 0x{sc:02x} (suite 0 without compression only)")
    policy = SecurityPolicy(sc & 0x30)
    if policy is SecurityPolicy.NONE:
        raise DlmsDecodeError("ciphered APDU without authentication or encryption")
    counter = int.from_bytes(content[1:5], "big")
    iv = nonce(system_title, counter)
    payload = content[5:]
    if policy is SecurityPolicy.ENCRYPTED:
        decryptor = Cipher(algorithms.AES(keys.ek), modes.CTR(iv + b"\x00\x00\x00\x02")).decryptor()
        return Unprotected(policy, counter, decryptor.update(payload) + decryptor.finalize())
    if len(payload) < TAG_LEN:
        raise DlmsDecodeError("ciphered content shorter than its tag")
    body, tag = payload[:-TAG_LEN], payload[-TAG_LEN:]
    aad = bytes([sc]) + keys.ak + (body if policy is SecurityPolicy.AUTHENTICATED else b"")
    data = b"" if policy is SecurityPolicy.AUTHENTICATED else body
    decryptor = Cipher(algorithms.AES(keys.ek), modes.GCM(iv, tag, min_tag_length=TAG_LEN)).decryptor()
    decryptor.authenticate_additional_data(aad)
    plain = decryptor.update(data)
    try:
        plain += decryptor.finalize()
    except InvalidTag:
        raise CipherError("authentication tag mismatch (wrong EK/AK or system title)") from None
    return Unprotected(policy, counter, body if policy is SecurityPolicy.AUTHENTICATED else plain)


def gmac(keys: Keys, system_title: bytes, counter: int, challenge: bytes) -> bytes:
    """HLS-GMAC answer to ``challenge``: ``0x10 || IC || GMAC(SC || AK || challenge)`` (IEC 62056-5-3 9.2.7.4)."""
    iv = nonce(system_title, counter)
    _, tag = _gcm_tag(keys.ek, iv, bytes([SecurityPolicy.AUTHENTICATED]) + keys.ak + challenge, b"")
    return bytes([SecurityPolicy.AUTHENTICATED]) + counter.to_bytes(4, "big") + tag


def check_gmac(keys: Keys, system_title: bytes, challenge: bytes, answer: bytes) -> int:
    """Verify the peer's HLS-GMAC answer to our ``challenge``; returns its invocation counter."""
    if len(answer) != 5 + TAG_LEN or answer[0] != SecurityPolicy.AUTHENTICATED:
        raise CipherError("meter's HLS-GMAC answer is malformed")
    counter = int.from_bytes(answer[1:5], "big")
    if gmac(keys, system_title, counter, challenge) != answer:
        raise CipherError("meter's HLS-GMAC answer does not match (wrong EK/AK or system title)")
    return counter


def wrap_glo(policy: SecurityPolicy, keys: Keys, system_title: bytes, counter: int, apdu: bytes) -> bytes:
    """The glo-ciphered form of ``apdu`` (its tag mapped by :data:`GLO_TAGS`)."""
    if not apdu or apdu[0] not in GLO_TAGS:
        raise ValueError(f"no glo- APDU for tag 0x{apdu[:1].hex()}")
    content = protect(policy, keys, system_title, counter, apdu)
    return bytes([GLO_TAGS[apdu[0]]]) + encode_length(len(content)) + content


def wrap_general_glo(policy: SecurityPolicy, keys: Keys, system_title: bytes, counter: int, apdu: bytes) -> bytes:
    """general-glo-ciphering: ``0xDB || system-title || ciphered-content`` (both length-prefixed)."""
    content = protect(policy, keys, system_title, counter, apdu)
    return (bytes([GENERAL_GLO_CIPHERING, SYSTEM_TITLE_LEN]) + system_title + encode_length(len(content))
            + content)


@dataclass(frozen=True, slots=True)
class Opened:
    """A deciphered APDU: the plain APDU, the sender's invocation counter, and its system title when it sent one."""

    apdu: bytes
    counter: int
    policy: SecurityPolicy
    system_title: bytes | None = None


def is_ciphered(apdu: bytes) -> bool:
    return bool(apdu) and (apdu[0] in PLAIN_TAGS or apdu[0] == GENERAL_GLO_CIPHERING)


def unwrap(keys: Keys, system_title: bytes | None, apdu: bytes) -> Opened:
    """Open a glo- or general-glo-ciphered APDU from a peer whose system title is ``system_title`` (a
    general-glo-ciphering APDU names its sender itself; ``system_title`` None accepts any)."""
    if not apdu:
        raise DlmsDecodeError("empty APDU")
    tag = apdu[0]
    if tag == GENERAL_GLO_CIPHERING:
        n, pos = decode_length(apdu, 1)
        sender = bytes(apdu[pos : pos + n])
        if n != SYSTEM_TITLE_LEN or pos + n > len(apdu):
            raise DlmsDecodeError("general-glo-ciphering with a bad system title")
        if system_title is not None and sender != system_title:
            raise CipherError(f"APDU from system title {sender.hex()}, expected {system_title.hex()}")
        length, pos = decode_length(apdu, pos + n)
        if pos + length != len(apdu):
            raise DlmsDecodeError("general-glo-ciphering length mismatch")
        u = unprotect(keys, sender, apdu[pos:])
        return Opened(u.plaintext, u.counter, u.policy, sender)
    if tag not in PLAIN_TAGS:
        raise DlmsDecodeError(f"not a ciphered APDU (tag 0x{tag:02x})")
    if system_title is None:
        raise DlmsError("the peer's system title is unknown")
    length, pos = decode_length(apdu, 1)
    if pos + length != len(apdu):
        raise DlmsDecodeError("glo- APDU length mismatch")
    u = unprotect(keys, system_title, apdu[pos:])
    if not u.plaintext or u.plaintext[0] != PLAIN_TAGS[tag]:
        raise DlmsDecodeError(f"glo- APDU 0x{tag:02x} does not hold a 0x{PLAIN_TAGS[tag]:02x} APDU")
    return Opened(u.plaintext, u.counter, u.policy)
