from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import parse_config
from edge.errors import ConfigError
from tests.edge.daemon.central_peer import TEST_CENTRAL_KEY
from tests.edge.daemon.daemon_config import config_text


def _parse(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    src = tmp_path / "edge.toml"
    return parse_config(text, src)


def test_full_config_parses_into_frozen_objects(tmp_path: Path) -> None:
    cfg = _parse(tmp_path, config_text(tmp_path / "s", mqtt_port=1999))
    assert cfg.mqtt.port == 1999
    assert cfg.mqtt.batch_size == 50
    assert cfg.outbox.path == tmp_path / "s" / "outbox.sqlite"
    assert cfg.key_path == tmp_path / "s" / "device.key"
    assert cfg.status.password is not None
    assert "technician" not in repr(cfg)  # secrets never in reprs (and so never in logs)
    with pytest.raises(AttributeError):
        cfg.mqtt.port = 1  # type: ignore[misc]


def test_example_config_in_repo_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).parents[3] / "firmware-config" / "edge.example.toml"
    text = example.read_text().replace("REPLACE_WITH_CENTRAL_PUBLIC_KEY", TEST_CENTRAL_KEY.device_id)
    cfg = parse_config(text, example)
    assert cfg.mqtt.tls is None or cfg.mqtt.tls.ca_file.name


@pytest.mark.parametrize(
    ("patch", "where"),
    [
        (("batch_size = 50", "batch_size = 5000"), "mqtt.batch_size: must be between 1 and 1000"),
        (("port = 0", "port = 70000"), "status.port: must be between 0 and 65535"),
        (('bind = "127.0.0.1"', 'bind = "localhost"'), "status.bind: must be an IP address"),
        (("[outbox]", "[outbox]\nmin_free = 3"), "outbox.min_free: unknown key"),
        (('password = "technician-pw-1"', 'password = "short"'), "status.password: must be at least 8"),
        (('password = "technician-pw-1"', ""), "status.password: the status page needs a password"),
        (('host = "127.0.0.1"', "host = 3"), "mqtt.host: must be a string"),
        (('clock_check = "none"', 'clock_check = "ntp"'), "poll.clock_check"),
        (('clock_check = "none"', 'clock_check = "none"\nmax_power_w = 10'), "poll.max_power_w: must be between"),
        (("[mqtt]", "[mqtt]\n[mqtt.tls]\nca_file = \"/nonexistent/ca.pem\""), "mqtt.tls.ca_file: file"),
        (("reconnect_max_s = 1", "reconnect_max_s = 0.06"), "reconnect_max_s: must be >= reconnect_min_s"),
        (("[mqtt]", "[mqtt]\nusername = \"\"\npassword = \"x\""), "mqtt.password: a password needs a username"),
        ((TEST_CENTRAL_KEY.device_id, "not-a-key"), "central.public_key: must be an Ed25519 public key in base58"),
        ((TEST_CENTRAL_KEY.device_id, "1111"), "central.public_key: must be an Ed25519 public key in base58"),
        ((f'public_key = "{TEST_CENTRAL_KEY.device_id}"', ""), "central.public_key: is required"),
        (("[central]", "[central]\nkey = 1"), "central.key: unknown key"),
    ],
)
def test_bad_values_name_file_key_and_reason(tmp_path: Path, patch: tuple[str, str], where: str) -> None:
    text = config_text(tmp_path / "s").replace(*patch)
    with pytest.raises(ConfigError) as err:
        _parse(tmp_path, text)
    assert str(tmp_path / "edge.toml") in str(err.value)
    assert where in str(err.value)


def test_toml_syntax_error_names_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"edge\.toml: .*line 2"):
        _parse(tmp_path, "[mqtt]\nhost = \n")


def test_missing_mqtt_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mqtt: the \\[mqtt\\] table is required"):
        _parse(tmp_path, '[status]\nenabled = false\n')


def test_password_file_and_meter_tables_in_the_same_pass(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-a-file-123\n")
    text = config_text(tmp_path / "s").replace('password = "technician-pw-1"', 'password_file = "pw"')
    text += ('\n[[bus]]\nname = "b"\nkind = "modbus-tcp"\nhost = "127.0.0.1"\n'
             '[[meter]]\nserial = "X1"\nbus = "b"\nmodel = "eastron-sdm630"\nunit_id = 1\n')
    cfg = _parse(tmp_path, text)
    assert cfg.status.password == "from-a-file-123"
    assert [m.serial for m in cfg.meters] == ["X1"]
    assert [b.name for b in cfg.buses] == ["b"]


def test_status_page_binds_to_loopback_unless_configured(tmp_path: Path) -> None:
    """Issue 10, D7: the status page is on the management interface by default, never on every address."""
    text = config_text(tmp_path / "s").replace('bind = "127.0.0.1"\n', "", 1)
    assert "bind" not in text.split("[status]", 1)[1].split("[", 1)[0]
    assert _parse(tmp_path, text).status.bind == "127.0.0.1"


def test_central_public_key_is_required_and_may_come_from_a_file(tmp_path: Path) -> None:
    """Issue 10, D2: the gateway pins central's key from its own config; without one it refuses to start."""
    pinned = f'public_key = "{TEST_CENTRAL_KEY.device_id}"'
    text = config_text(tmp_path / "s")
    assert _parse(tmp_path, text).central.public_key == TEST_CENTRAL_KEY.public_key
    without = text.replace(f"[central]\n{pinned}\n", "")
    with pytest.raises(ConfigError, match=r"central\.public_key: is required.*refuses to start"):
        _parse(tmp_path, without)
    assert not any("central" in s for s in _parse(tmp_path, text).inline_secrets)  # a public key is no secret
    (tmp_path / "central.pub").write_text(TEST_CENTRAL_KEY.device_id + "\n")
    (tmp_path / "central.pub").chmod(0o644)  # world-readable is fine: the secret-file rule is not for public keys
    from_file = _parse(tmp_path, text.replace(pinned, 'public_key_file = "central.pub"'))
    assert from_file.central.public_key == TEST_CENTRAL_KEY.public_key
    with pytest.raises(ConfigError, match=r"central\.public_key: give either public_key or public_key_file"):
        _parse(tmp_path, text.replace(pinned, pinned + '\npublic_key_file = "central.pub"'))
