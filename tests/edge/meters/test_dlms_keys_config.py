"""Ciphered DLMS meters in edge.toml: per-meter keys files (the one secret-file rule, checked before reading),
auth/security settings, push meters named by system title; errors name file, line and reason, never a key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.dlms.security import SecurityPolicy
from edge.errors import ConfigError
from edge.meters.config import BusKind, DlmsAuth, DlmsSecurity, parse_buses, parse_meters
from edge.meters.maps import default_maps_dir, load_maps
from edge.secretfile import SecretFileError
from gtxconfig.document import Document

MAPS = load_maps(default_maps_dir())
EK, AK = "000102030405060708090a0b0c0d0e0f", "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf"


def keys_file(tmp_path: Path, text: str = f'ek = "{EK}"\nak = "{AK}"\n', mode: int = 0o600) -> Path:
    p = tmp_path / "e450.keys.toml"
    p.write_text(text)
    p.chmod(mode)
    return p


def config(tmp_path: Path, meter: str) -> str:
    return f"""\
[[bus]]
name = "dlms"
kind = "dlms-tcp"
host = "192.0.2.11"

[[bus]]
name = "push"
kind = "dlms-push"
host = "0.0.0.0"
port = 4061

[[meter]]
serial = "E450-1"
bus = "dlms"
model = "landis-gyr-e450"
{meter}
"""


def parse(tmp_path: Path, meter: str) -> tuple:  # type: ignore[type-arg]
    doc = Document.from_text(str(tmp_path / "edge.toml"), config(tmp_path, meter), ConfigError)
    buses = parse_buses(doc)
    return buses, parse_meters(doc, buses, MAPS)


def test_hls_gmac_meter_with_keys(tmp_path: Path) -> None:
    keys = keys_file(tmp_path)
    buses, meters = parse(tmp_path, f'auth = "hls-gmac"\nsecurity = "auth-enc"\nkeys_file = "{keys}"\n'
                                    'system_title = "4754580000000042"')
    assert buses[1].kind is BusKind.DLMS_PUSH
    assert buses[1].port == 4061
    m = meters[0]
    assert (m.auth, m.security, m.client_address) == (DlmsAuth.HLS_GMAC, DlmsSecurity.AUTH_ENC, 1)
    assert m.security.policy is SecurityPolicy.AUTHENTICATED_ENCRYPTED
    assert m.keys is not None
    assert (m.keys.ek.hex(), m.keys.ak.hex()) == (EK, AK)
    assert m.system_title == bytes.fromhex("4754580000000042")
    assert EK not in repr(m)
    assert AK not in repr(m)


def test_relative_keys_file_is_beside_edge_toml(tmp_path: Path) -> None:
    keys_file(tmp_path)
    _, meters = parse(tmp_path, 'auth = "hls-gmac"\nkeys_file = "e450.keys.toml"')
    assert meters[0].keys is not None


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_keys_file_must_be_private(tmp_path: Path, mode: int) -> None:
    keys = keys_file(tmp_path, mode=mode)
    with pytest.raises(SecretFileError) as err:
        parse(tmp_path, f'auth = "hls-gmac"\nkeys_file = "{keys}"')
    text = str(err.value)
    assert "keys_file" in text
    assert str(keys) in text
    assert EK not in text


@pytest.mark.parametrize(
    ("meter", "contents", "reason"),
    [
        ('auth = "hls-gmac"', None, "needs 'keys_file'"),
        ('security = "auth-enc"', None, "needs 'keys_file'"),
        ('auth = "hls-gmac"\nkeys_file = "{k}"', 'ek = "00"\nak = "{ak}"', "ek must be 32 hex digits"),
        ('auth = "hls-gmac"\nkeys_file = "{k}"', 'ek = "{ek}"', "ak must be 32 hex digits"),
        ('auth = "hls-gmac"\nkeys_file = "{k}"', 'ek = "{ek}"\nak = "{ak}"\nkek = "{ek}"', "unknown key(s) kek"),
        ('auth = "hls-gmac"\nkeys_file = "{k}"', "{ek}", "is not a TOML file"),
        ('keys_file = "{k}"', 'ek = "{ek}"\nak = "{ak}"', "keys are used with"),
        ('auth = "hls-gmac"\nkeys_file = "{k}"\nsystem_title = "abcd"', 'ek = "{ek}"\nak = "{ak}"', "8 bytes"),
    ],
)
def test_key_mistakes_are_named_never_quoted(tmp_path: Path, meter: str, contents: str | None, reason: str) -> None:
    k = keys_file(tmp_path, (contents or "").format(ek=EK, ak=AK)) if contents is not None else tmp_path / "none"
    with pytest.raises(ConfigError, match=r"edge\.toml:") as err:
        parse(tmp_path, meter.format(k=k))
    assert reason in str(err.value)
    assert EK not in str(err.value)
    assert AK not in str(err.value)


def test_push_meter_is_named_by_its_system_title(tmp_path: Path) -> None:
    keys = keys_file(tmp_path)
    doc = Document.from_text(str(tmp_path / "edge.toml"), config(tmp_path, 'auth = "none"') + f"""
[[meter]]
serial = "MA309-1"
bus = "push"
model = "kaifa-ma309-push"
meter_system_title = "4B464D0000000309"
keys_file = "{keys}"
""", ConfigError)
    buses = parse_buses(doc)
    meters = parse_meters(doc, buses, MAPS)
    assert meters[1].meter_system_title == bytes.fromhex("4B464D0000000309")
    assert meters[1].keys is not None
    missing = Document.from_text(str(tmp_path / "edge.toml"), config(tmp_path, "") + """
[[meter]]
serial = "MA309-1"
bus = "push"
model = "kaifa-ma309-push"
""", ConfigError)
    with pytest.raises(ConfigError, match="meter_system_title"):
        parse_meters(missing, parse_buses(missing), MAPS)


def test_maps_carry_frame_counter_and_push_layout() -> None:
    assert MAPS["landis-gyr-e450"].frame_counter is not None
    assert MAPS["landis-gyr-e450"].frame_counter.obis == (0, 0, 43, 1, 0, 255)
    assert MAPS["kaifa-ma309-push"].push_layout == "obis-value-scaler"
    assert MAPS["eastron-sdm630"].frame_counter is None


def test_keys_never_reach_the_config_repr_or_the_status_page(tmp_path: Path) -> None:
    from edge.config import parse_config  # noqa: PLC0415
    from edge.meter_setup import describe, plan  # noqa: PLC0415
    from tests.edge.daemon.daemon_config import config_text  # noqa: PLC0415

    keys = keys_file(tmp_path)
    text = config_text(tmp_path / "state") + config(tmp_path, f'auth = "hls-gmac"\nkeys_file = "{keys}"')
    cfg = parse_config(text, tmp_path / "edge.toml")
    infos = describe(plan(cfg))
    for shown in (repr(cfg), repr(infos)):
        assert EK not in shown
        assert AK not in shown
        assert repr(bytes.fromhex(EK))[2:-1] not in shown  # nor as a bytes repr
        assert repr(bytes.fromhex(AK))[2:-1] not in shown
