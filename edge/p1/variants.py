"""The P1 telegram variants the gateway reads (pure data).

A meter map names its variant (``[p1] variant = "dsmr5"``); the variant fixes the telegram's framing (CRC or not,
plain or encrypted), the serial settings its port uses by default, and which registers a map may name. The register
lists are those of ``dsmr_parser``'s telegram specification of the same variant (tests/edge/p1/test_oracle.py checks
each against it; docs/decisions/0015-dsmr-parser-for-p1.md says why the gateway does not import it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

#: Luxmetering E-Meter P1 specification 1.1.3, section 3.2.5: the authentication key every Smarty meter uses (public).
SMARTY_AUTHENTICATION_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")

_OBIS = re.compile(r"^(\d{1,3})-(\d{1,3}):(\d{1,3})\.(\d{1,3})\.(\d{1,3})$")


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    description: str
    #: the registers (``C.D.E`` of ``A-B:C.D.E``) the variant's telegrams carry and a map may name
    registers: frozenset[str] = field(repr=False)
    crc: bool
    encrypted: bool
    baudrate: int = 115_200
    bytesize: int = 8
    parity: str = "N"
    #: a fixed, published authentication key (Smarty); None: the meter's own key is needed (``auth_key_file``)
    fixed_auth_key: bytes | None = field(default=None, repr=False)

    def knows(self, obis: str) -> bool:
        """Whether telegrams of this variant carry register ``obis`` (``1-0:1.8.1``)."""
        return obis.partition(":")[2] in self.registers


def _r(text: str) -> frozenset[str]:
    return frozenset(text.split())


_PHASES = "32.7.0 52.7.0 72.7.0 31.7.0 51.7.0 71.7.0 21.7.0 41.7.0 61.7.0 22.7.0 42.7.0 62.7.0"
_TARIFFS = "1.8.1 1.8.2 2.8.1 2.8.2 1.7.0 2.7.0"
VARIANTS: Mapping[str, Variant] = {
    v.name: v
    for v in (
        Variant("dsmr2.2", "Netherlands DSMR 2.2 / 3.0 (no CRC)", _r(_TARIFFS), False, False, 9600, 7, "E"),
        Variant("dsmr4", "Netherlands DSMR 4.x",
                _r(f"{_TARIFFS} 31.7.0 51.7.0 71.7.0 21.7.0 41.7.0 61.7.0 22.7.0 42.7.0 62.7.0"), True, False,
                115_200, 7, "E"),
        Variant("dsmr5", "Netherlands DSMR 5.x", _r(f"1.8.0 {_TARIFFS} {_PHASES}"), True, False),
        Variant("belgium", "Belgium e-MUCS (Fluvius)", _r(f"{_TARIFFS} {_PHASES}"), True, False),
        Variant("luxembourg", "Luxembourg Smarty, unencrypted output", _r(f"1.8.0 2.8.0 {_TARIFFS} {_PHASES}"), True,
                False),
        Variant("luxembourg-smarty", "Luxembourg Smarty (AES-128-GCM, per-meter key)",
                _r(f"1.8.0 2.8.0 {_TARIFFS} {_PHASES} 3.8.0 4.8.0 3.7.0 4.7.0"), True, True,
                fixed_auth_key=SMARTY_AUTHENTICATION_KEY),
        Variant("austria-sagemcom", "Austria Sagemcom T210-D-r (AES-128-GCM, encryption + authentication key)",
                _r("1.8.0 1.8.1 1.8.2 2.8.0 2.8.1 2.8.2 1.7.0 2.7.0 3.8.0 3.8.1 3.8.2 4.8.0 4.8.1 4.8.2 3.7.0 4.7.0"),
                True, True),
        Variant("sweden", "Sweden (lokalt gränssnitt)", _r(f"1.8.0 2.8.0 3.8.0 4.8.0 1.7.0 2.7.0 {_PHASES}"), True,
                False),
        Variant("hungary", "Hungary E.ON (DSMR 5 based)",
                _r("1.8.0 1.8.1 1.8.2 1.8.3 1.8.4 2.8.0 2.8.1 2.8.2 2.8.3 2.8.4 3.8.0 4.8.0 1.7.0 2.7.0 "
                   "32.7.0 52.7.0 72.7.0 31.7.0 51.7.0 71.7.0"), True, False),
        Variant("iskra-ie", "Iskra IE.x (no CRC)", _r(f"{_TARIFFS} {_PHASES}"), False, False),
        Variant("q3d", "EasyMeter Q3D (Germany, D0 optical interface, OBIS codes with *255, no CRC)",
                _r("1.8.0 2.8.0 1.7.0 21.7.0 41.7.0 61.7.0"), False, False, 9600, 7, "E"),
    )
}


def valid_obis(text: str) -> bool:
    m = _OBIS.match(text)
    return m is not None and all(int(g) <= 255 for g in m.groups())
