"""The P1 telegram variants the gateway reads, each backed by one of ``dsmr_parser``'s telegram specifications.

A meter map names its variant (``[p1] variant = "dsmr5"``); the variant fixes the telegram's framing (CRC or not,
plain or encrypted), the serial settings its port uses, and which OBIS registers a map may name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

from dsmr_parser import telegram_specifications as specs

#: Luxmetering E-Meter P1 specification 1.1.3 §3.2.5: the authentication key every Smarty meter uses (public).
SMARTY_AUTHENTICATION_KEY = bytes.fromhex(specs.MSN["authentication_key"])

_OBIS = re.compile(r"^(\d{1,3})-(\d{1,3}):(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    description: str
    spec: Mapping[str, Any] = field(repr=False)  # dsmr_parser's plaintext specification (after any decryption)
    crc: bool
    encrypted: bool
    baudrate: int
    bytesize: int
    parity: str
    #: a fixed, published authentication key (Smarty); None: the meter's own key is needed (``auth_key_file``)
    fixed_auth_key: bytes | None = field(default=None, repr=False)

    @property
    def serial_settings(self) -> str:
        return f"{self.baudrate} {self.bytesize}{self.parity}1"

    def pattern_for(self, obis: str) -> str | None:
        """The specification's line pattern that reads register ``obis`` (``1-0:1.8.1``), or None if it has none."""
        line = f"{obis}(0)\r\n"
        for obj in self.spec["objects"]:
            ref = obj["obis_reference"]
            if re.match(ref, line, re.DOTALL | re.MULTILINE):
                return str(ref)
        return None


def _plain(spec: Mapping[str, Any]) -> dict[str, Any]:
    out = deepcopy(dict(spec))
    out.pop("general_global_cipher", None)
    out.pop("authentication_key", None)
    return out


_PLAIN_CRC = (115_200, 8, "N")
VARIANTS: Mapping[str, Variant] = {
    v.name: v
    for v in (
        Variant("dsmr2.2", "Netherlands DSMR 2.2 / 3.0 (no CRC)", specs.V2_2, False, False, 9600, 7, "E"),
        Variant("dsmr4", "Netherlands DSMR 4.x", specs.V4, True, False, 115_200, 7, "E"),
        Variant("dsmr5", "Netherlands DSMR 5.x", specs.V5, True, False, *_PLAIN_CRC),
        Variant("belgium", "Belgium e-MUCS (Fluvius)", specs.BELGIUM_FLUVIUS, True, False, *_PLAIN_CRC),
        Variant("luxembourg", "Luxembourg Smarty, unencrypted output", specs.LUXEMBOURG_SMARTY, True, False,
                *_PLAIN_CRC),
        Variant("luxembourg-smarty", "Luxembourg Smarty (AES-128-GCM, per-meter key)", _plain(specs.MSN), True, True,
                *_PLAIN_CRC, fixed_auth_key=SMARTY_AUTHENTICATION_KEY),
        Variant("austria-sagemcom", "Austria Sagemcom T210-D-r (AES-128-GCM, encryption + authentication key)",
                _plain(specs.SAGEMCOM_T210_D_R), True, True, *_PLAIN_CRC),
        Variant("sweden", "Sweden (branschrekommendation lokalt gränssnitt)", specs.SWEDEN, True, False, *_PLAIN_CRC),
        Variant("hungary", "Hungary E.ON (DSMR 5 based)", specs.EON_HUNGARY, True, False, *_PLAIN_CRC),
        Variant("iskra-ie", "Iskra IE.x (no CRC)", specs.ISKRA_IE, False, False, *_PLAIN_CRC),
    )
}


def valid_obis(text: str) -> bool:
    m = _OBIS.match(text)
    return m is not None and all(int(g) <= 255 for g in m.groups())
