"""The gateway's broker credential (docs/decisions/0016-broker-dynamic-security.md).

A gateway logs in to the MQTT broker as user name = its device id with a password that it and central derive
independently from the one secret they share after registration, the pairing code (protocol §10: derived from the
device's key seed, shown only on the gateway's status page, typed by the installer at registration)::

    password = base64url(scrypt(code, salt = b"GTX/broker/v1\\x00" | device public key, n=2**14, r=8, p=1, 32))

without padding (43 characters). The code carries 40 bits; scrypt makes every guess of it cost a 16 MiB, ~50 ms
computation, so guessing a device's password on line or from a stolen broker file costs on the order of a thousand
CPU-years per device, and a guessed password gives no more than that device's own topics, whose payloads are signed
anyway (readings by the device, acks and challenges by central).
"""

from __future__ import annotations

import base64
import hashlib

from protocol.keys import public_key_from_device_id
from protocol.signed import normalize_pairing_code

BROKER_DOMAIN = b"GTX/broker/v1\x00"
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
PASSWORD_BYTES = 32


def broker_password(pairing_code: str, device_id: str) -> str:
    """The device's broker password (``MalformedError`` for a malformed code or device id)."""
    code = normalize_pairing_code(pairing_code)
    salt = BROKER_DOMAIN + public_key_from_device_id(device_id)
    key = hashlib.scrypt(code.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=PASSWORD_BYTES,
                         maxmem=64 * 1024 * 1024)
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()
