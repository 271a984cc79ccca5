"""The edge's own P1 parser and Smarty decryption against ``dsmr_parser`` (MIT), the parser the household projects
use, as an independent oracle: the same telegrams give the same values (docs/decisions/0015-dsmr-parser-for-p1.md).
And the gateway itself never imports it (its footprint is why)."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from typing import Any

from dsmr_parser import telegram_specifications as specs
from dsmr_parser.parsers import TelegramParser
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.meters.maps import MeterMap
from edge.meters.p1_reader import registers
from edge.p1.telegram import TelegramDecoder, decrypt
from edge.p1.variants import SMARTY_AUTHENTICATION_KEY, VARIANTS
from edge.simulator.p1 import Registers, encrypt, telegram
from tests.edge.daemon.daemon_proc import CHILD_ENV, REPO
from tests.edge.p1.p1_helpers import KEY, VARIANT_MAPS

ORACLE: dict[str, dict[str, Any]] = {
    "dsmr2.2": specs.V2_2, "dsmr4": specs.V4, "dsmr5": specs.V5, "belgium": specs.BELGIUM_FLUVIUS,
    "luxembourg": specs.LUXEMBOURG_SMARTY, "luxembourg-smarty": specs.MSN, "austria-sagemcom": specs.SAGEMCOM_T210_D_R,
    "sweden": specs.SWEDEN, "hungary": specs.EON_HUNGARY, "iskra-ie": specs.ISKRA_IE, "q3d": specs.Q3D,
}


def _codes(spec: dict[str, Any]) -> set[str]:
    out = set()
    for o in spec["objects"]:
        m = re.match(r"^\^\\d-\\d:(.*?)\.\+\?\\r\\n$", o["obis_reference"])
        if m:
            out.add(m.group(1).replace("\\.", "."))
    return out


def test_each_variant_knows_exactly_registers_dsmr_parser_reads() -> None:
    assert set(ORACLE) == set(VARIANTS)
    for name, variant in VARIANTS.items():
        assert variant.registers <= _codes(ORACLE[name]), name
        assert variant.crc == ORACLE[name]["checksum_support"], name
        assert variant.encrypted == bool(ORACLE[name].get("general_global_cipher")), name
    assert SMARTY_AUTHENTICATION_KEY.hex().upper() == specs.MSN["authentication_key"]


def _oracle_total(parsed: Any, spec: dict[str, Any], codes: tuple[str, ...]) -> Decimal:
    total = Decimal(0)
    for code in codes:
        c = code.partition(":")[2]
        ref = next(o["obis_reference"] for o in spec["objects"] if re.match(o["obis_reference"], f"1-0:{c}(0)\r\n"))
        value = parsed[ref].values[0]
        total += value["value"] * (1000 if value["unit"] in ("kWh", "kW") else 1)
    return total


@settings(max_examples=40, deadline=None)
@given(variant=st.sampled_from(sorted(VARIANT_MAPS)), imp=st.integers(0, 99_999_999), exp=st.integers(0, 99_999_999),
       power=st.integers(-9_990, 9_990), when=st.integers(1_600_000_000, 2_000_000_000))
def test_same_values_as_dsmr_parser(
    maps: dict[str, MeterMap], variant: str, imp: int, exp: int, power: int, when: int
) -> None:
    power = power // 10 * 10
    meter_map = maps[VARIANT_MAPS[variant]]
    plain = telegram(variant, Registers(imp, exp, power), when_s=when)
    spec = ORACLE[variant]
    if variant == "luxembourg-smarty":
        frame = encrypt(plain, KEY, when)
        ours = decrypt(frame, KEY, SMARTY_AUTHENTICATION_KEY)
        assert ours == plain
        parsed = TelegramParser(spec).parse(frame.hex(), encryption_key=KEY.hex(), authentication_key="")
    else:
        parsed = TelegramParser(spec).parse(plain.decode())
    values = TelegramDecoder(VARIANTS[variant], registers(meter_map)).decode(plain)
    for name, m in meter_map.measurements.items():
        assert m.p1 is not None
        expected = _oracle_total(parsed, spec, m.p1.plus) - _oracle_total(parsed, spec, m.p1.minus)
        assert values.values[name] == expected, name
    if variant != "dsmr2.2":
        assert values.meter_time_ms == int(parsed.P1_MESSAGE_TIMESTAMP.value.timestamp()) * 1000 == when * 1000


def test_the_gateway_does_not_import_dsmr_parser_or_dlms_cosem() -> None:
    code = ("import sys, edge.daemon, edge.meter_setup, edge.cli; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dsmr_parser', 'dlms_cosem', 'asn1crypto')); "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=CHILD_ENV, capture_output=True, text=True,
                       timeout=60, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
