"""Every configuration file the repository ships parses and validates with the code that reads it in production."""

from __future__ import annotations

import dataclasses
import re
import textwrap
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from central.config import CentralConfig, from_mapping, load_config
from edge import config as edge_config
from edge.config import parse_config
from edge.errors import ConfigError
from edge.meter_setup import plan
from edge.meters.config import BUS_KEYS, METER_KEYS
from edge.meters.maps import parse_map
from gtxconfig.document import Document
from protocol.keys import DeviceKey

ROOT = Path(__file__).parents[1]
FIRMWARE = ROOT / "firmware-config"
#: Files whose ```toml examples are central configuration (tables of central.toml).
CENTRAL_EXAMPLES = ("docs/central.md", "central/ledger/config.py", "central/market/config.py")


@pytest.mark.parametrize("name", ["central.example.toml", "central.compose.toml"])
def test_central_configs_validate(name: str, tmp_path: Path) -> None:
    secret = tmp_path / "jwt.secret"
    secret.write_text("x" * 48)
    secret.chmod(0o600)
    config = load_config(FIRMWARE / name, [f'auth.jwt_secret_file="{secret}"'])
    assert config.certificates.window_s * 1000 == config.minting.window_ms


@pytest.mark.parametrize("name", ["edge.example.toml", "edge.compose.toml"])
def test_edge_configs_validate(name: str, tmp_path: Path) -> None:
    path = FIRMWARE / name
    password = tmp_path / "status.password"
    password.write_text("a-long-status-password\n")
    password.chmod(0o600)  # secret files are owner-only (edge.secretfile)
    central = DeviceKey.generate()
    central_pub = tmp_path / "central.pub"
    central_pub.write_text(central.device_id + "\n")
    central_pub.chmod(0o644)  # a public key: not subject to the secret-file rule
    broker_ca = tmp_path / "broker_ca"
    broker_ca.write_text("-----BEGIN CERTIFICATE-----\n")  # only its existence is checked here
    text = (
        path.read_text()
        .replace("/run/secrets/edge_status_password", str(password))
        .replace("/run/secrets/central_public_key", str(central_pub))
        .replace("/run/secrets/broker_ca", str(broker_ca))
        .replace("REPLACE_WITH_CENTRAL_PUBLIC_KEY", central.device_id)
    )
    config = parse_config(text, path)
    assert config.central.public_key == central.public_key
    meters = plan(config)
    assert meters.meters


def test_edge_example_refuses_to_start_until_central_key_is_filled_in() -> None:
    path = FIRMWARE / "edge.example.toml"
    with pytest.raises(ConfigError, match=r"central\.public_key: must be an Ed25519 public key in base58"):
        parse_config(path.read_text(), path)


@pytest.mark.parametrize("name", CENTRAL_EXAMPLES)
def test_central_examples_in_docs_validate(name: str) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / name).read_text(), re.S)
    assert blocks
    for block in blocks:
        raw = tomllib.loads(block)
        raw.setdefault("auth", {"jwt_secret": "x" * 40})
        from_mapping(raw, source=name)


# ---- every ```toml block of the documents a reader follows ----------------------------------------------------------

#: Documents whose ```toml blocks a reader copies: central or edge configuration, a DLMS keys file or a meter map.
DOCUMENTS = sorted({*ROOT.glob("docs/*.md"), *FIRMWARE.glob("**/README*.md"), ROOT / "README.md"})
DOC_BLOCKS = [
    (f"{path.relative_to(ROOT)}:{path.read_text().count(chr(10), 0, m.start()) + 2}", textwrap.dedent(m[1]))
    for path in DOCUMENTS
    for m in re.finditer(r"^ *```toml\n(.*?)^ *```", path.read_text(), re.S | re.M)
]
CENTRAL_TABLES = {f.name for f in dataclasses.fields(CentralConfig)}
#: A base map per protocol for map fragments (blocks that show only the keys a section is about).
BASE_MAPS = {"modbus": "eastron-sdm630", "dlms": "landis-gyr-e450", "p1": "iskraemeco-am550-nl"}


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _deep_merge(out[key], value) if isinstance(value, Mapping) and isinstance(
            out.get(key), Mapping) else value
    return out


def _keys_file_text() -> str:
    """The DLMS keys file the documents show (so a meter's keys_file in an example gets exactly that)."""
    return next(block for _, block in DOC_BLOCKS if set(tomllib.loads(block)) == {"ek", "ak"})


def _edge_fragment(block: str, tmp_path: Path) -> None:
    """An edge.toml fragment, on top of a minimal valid configuration; every file it names exists (mode 0600)."""
    block = block.replace("/etc/gridtokenx/", f"{tmp_path}/etc/")
    data = tomllib.loads(block)
    central = DeviceKey.generate()
    base = {
        "poll": '[poll]\nclock_check = "none"\n',
        "mqtt": '[mqtt]\nhost = "127.0.0.1"\n',
        "central": f'[central]\npublic_key = "{central.device_id}"\n',
        "status": '[status]\npassword = "a-long-status-password"\n',
        "device": f'[device]\nstate_dir = "{tmp_path / "state"}"\n',
    }
    text = "".join(t for name, t in base.items() if name not in data) + block
    for table in [data.get("device", {}).get("pkcs11", {}), *data.get("meter", []), *data.get("bus", [])]:
        for key, value in table.items():
            if key.endswith("_file"):
                path = Path(value) if Path(value).is_absolute() else tmp_path / value
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(_keys_file_text() if key == "keys_file" else "1234" if key == "pin_file"
                                else "000102030405060708090a0b0c0d0e0f\n")
                path.chmod(0o600)
    source = tmp_path / "edge.toml"
    source.write_text(text)
    source.chmod(0o600)
    config = parse_config(text, source)
    if config.meters:
        assert plan(config).meters


def _meter_map(block: str, where: str) -> None:
    data = tomllib.loads(block)
    protocol = data.get("meter", {}).get("protocol")
    if protocol is None or not data.get("measurements"):  # a fragment: on top of a shipped map of its protocol
        families = [p for p in BASE_MAPS if p in block] or ["dlms"]
        base = tomllib.loads((FIRMWARE / "meters" / f"{BASE_MAPS[protocol or families[0]]}.toml").read_text())
        data = _deep_merge(base, data)
    parse_map(Document.from_mapping(where, data, ConfigError), default_id="doc-example")


def test_documents_have_toml_examples() -> None:
    assert len(DOC_BLOCKS) >= 10
    assert any(where.startswith("docs/edge.md") for where, _ in DOC_BLOCKS)


@pytest.mark.parametrize(("where", "block"), DOC_BLOCKS, ids=[w for w, _ in DOC_BLOCKS])
def test_document_toml_examples_validate(where: str, block: str, tmp_path: Path) -> None:
    """Each example is what its document says: central or edge configuration, a keys file or a meter map; and the
    loader that reads that file in production accepts it (unknown keys, wrong types and bad values fail here)."""
    data = tomllib.loads(block)
    if set(data) == {"ek", "ak"}:
        assert all(re.fullmatch(r"[0-9a-f]{32}", data[k]) for k in ("ek", "ak"))
    elif isinstance(data.get("meter"), list) or isinstance(data.get("bus"), list) or "device" in data:
        _edge_fragment(block, tmp_path)
    elif isinstance(data.get("meter"), dict):
        _meter_map(block, where)
    else:
        assert set(data) <= CENTRAL_TABLES, f"{where}: neither central nor edge configuration: {sorted(data)}"
        data.setdefault("auth", {"jwt_secret": "x" * 40})
        from_mapping(data, source=where)


# ---- every setting central accepts is in the annotated example, and every key the example shows is one -------------


def _table_class(path: tuple[str, ...]) -> type[Any]:
    """The dataclass behind a table of central.toml (``("http", "rate_limit")``, ``("zones", "zone", "tou")``)."""
    cls: type[Any] = CentralConfig
    for name in path:
        hint = typing.get_type_hints(cls)[name]
        inner = [a for a in (hint, *typing.get_args(hint)) if dataclasses.is_dataclass(a)]
        assert inner, f"{'.'.join(path)}: not a table"
        cls = inner[0]
    return cls


def _settings(cls: type[Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        inner = [a for a in (hints[f.name], *typing.get_args(hints[f.name])) if dataclasses.is_dataclass(a)]
        out.extend(_settings(inner[0], (*prefix, f.name)) if inner else [(*prefix, f.name)])
    return out


def _example_keys() -> list[tuple[int, tuple[str, ...], str]]:
    """(line, table, key) of every assignment in central.example.toml, commented-out ones included."""
    out: list[tuple[int, tuple[str, ...], str]] = []
    table: tuple[str, ...] = ()
    for lineno, line in enumerate((FIRMWARE / "central.example.toml").read_text().splitlines(), 1):
        code = line.removeprefix("#").strip()
        if header := re.match(r"\[\[?([a-z_.]+)\]\]?(?:\s|$)", code):
            table = tuple(header[1].split("."))
        elif key := re.match(r"([a-z_0-9]+)\s*=", code):
            out.append((lineno, table, key[1]))
            # inline tables: auth = { per_s = 1.0, burst = 20 }
            out.extend((lineno, (*table, key[1]), k) for k in re.findall(r"[{,]\s*([a-z_]+)\s*=", code))
    return out


def test_central_example_annotates_every_setting() -> None:
    shown = {(*table, key) for _, table, key in _example_keys()}
    missing = [".".join(s) for s in _settings(CentralConfig) if s not in shown]
    assert not missing, f"settings central accepts that firmware-config/central.example.toml does not show: {missing}"


def test_central_example_shows_only_real_settings() -> None:
    """Commented-out keys too: a reader uncomments them."""
    for lineno, table, key in _example_keys():
        names = {f.name for f in dataclasses.fields(_table_class(table))}
        assert key in names, f"central.example.toml:{lineno}: {'.'.join((*table, key))} is not a setting"


def test_edge_example_shows_every_setting() -> None:
    """Every key the edge loader accepts is in edge.example.toml, set or commented out (docs/edge.md points there)."""
    example = (FIRMWARE / "edge.example.toml").read_text()
    shown = set(re.findall(r"^#?\s*([a-z_0-9]+)\s*=", example, re.M))
    shown |= set(re.findall(r"\b([a-z_0-9]+) = \"", example))  # keys named in prose: meter_system_title = "..."
    shown |= {name for path in re.findall(r"^#?\s*\[([a-z_0-9.]+)\]", example, re.M) for name in path.split(".")}
    tables = [edge_config._DeviceTable, edge_config.Pkcs11KeyConfig, edge_config._PollTable, edge_config.MqttConfig,
              edge_config.TlsConfig, edge_config.OutboxConfig, edge_config.StatusConfig, edge_config._LoggingTable]
    accepted = {f.name for cls in tables for f in dataclasses.fields(cls)} | BUS_KEYS | METER_KEYS
    accepted |= {"public_key", "public_key_file", "password_file", "credential", "username"}
    assert not accepted - shown, f"edge.example.toml does not show: {sorted(accepted - shown)}"


def test_central_example_writes_only_where_the_unit_lets_it(tmp_path: Path) -> None:
    """systemd/gridtokenx-central.service has ProtectSystem=strict: central may write only its StateDirectory."""
    unit = (ROOT / "systemd" / "gridtokenx-central.service").read_text()
    assert "ProtectSystem=strict" in unit
    state = Path("/var/lib") / re.findall(r"^StateDirectory=(\S+)$", unit, re.M)[0]
    secret = tmp_path / "jwt.secret"
    secret.write_text("x" * 48)
    config = load_config(FIRMWARE / "central.example.toml", [f'auth.jwt_secret_file="{secret}"'])
    for setting, path in (("ledger.data_dir", config.ledger.data_dir), ("ledger.keys_dir", config.ledger.keys_dir),
                          ("archive.directory", Path(config.archive.directory))):
        assert path.is_relative_to(state), f"{setting} = {path} is outside the unit's StateDirectory {state}"


def test_edge_md_table_names_every_key_of_its_tables() -> None:
    """docs/edge.md's configuration table lists, per table, every key the loader accepts there."""
    rows = dict(re.findall(r"^\| `\[([a-z_.0-9]+)\]` \| (.*) \|$", (ROOT / "docs" / "edge.md").read_text(), re.M))
    tables = {"device": edge_config._DeviceTable, "device.pkcs11": edge_config.Pkcs11KeyConfig,
              "poll": edge_config._PollTable, "mqtt": edge_config.MqttConfig, "mqtt.tls": edge_config.TlsConfig,
              "outbox": edge_config.OutboxConfig, "status": edge_config.StatusConfig,
              "logging": edge_config._LoggingTable}
    for name, cls in tables.items():
        named = set(re.findall(r"`([a-z_0-9]+)", rows[name]))
        fields = {f.name for f in dataclasses.fields(cls)} - {"tls", "pkcs11"}  # sub-tables have rows of their own
        assert fields <= named, f"docs/edge.md [{name}] does not name {sorted(fields - named)}"


#: Backticked names that start like a central table but are files, not settings.
NOT_SETTINGS = {"database.dump", "ledger.log"}


def test_settings_named_in_documents_exist() -> None:
    """`section.key` in a document (`http.idempotency_ttl_s`, `archive.after_days = 90`) is a setting central has."""
    wrong = []
    for path in [ROOT / "README.md", *ROOT.glob("docs/*.md"), *FIRMWARE.glob("*.toml"), *ROOT.glob("systemd/*")]:
        for m in re.finditer(r"`([a-z_]+(?:\.[a-z_0-9]+)+)(?: ?=[^`]*)?`", path.read_text()):
            parts = tuple(m[1].split("."))
            if parts[0] not in CENTRAL_TABLES or m[1] in NOT_SETTINGS or path.name == "edge.md":
                continue
            try:
                cls = _table_class(parts[:-1])
            except (AssertionError, KeyError):
                wrong.append(f"{path.relative_to(ROOT)}: {m[1]}")
                continue
            if parts[-1] not in {f.name for f in dataclasses.fields(cls)}:
                wrong.append(f"{path.relative_to(ROOT)}: {m[1]}")
    assert not wrong, f"not settings of central: {wrong}"
