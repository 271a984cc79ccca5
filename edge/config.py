"""The daemon's configuration: one TOML file, parsed once into one frozen, validated :class:`EdgeConfig`.

Read by the shared loader :mod:`gtxconfig` (docs/decisions/0012-config-loader.md): every error is one line naming
the file, the line, the key and the reason (``ConfigError``). The ``[[bus]]`` and ``[[meter]]`` tables are read in
the same pass by the rules of :mod:`edge.meters.config`; only the check of each meter's model against the meter maps
waits for the maps (``edge.meter_setup.plan``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from edge.errors import ConfigError
from edge.meters.config import BusConfig, MeterConfig, parse_buses, parse_meters
from edge.secretfile import check_secret_file
from gtxconfig import Check, Document, Invalid, KeyPath, Range, build, reject_unknown
from gtxconfig.document import dotted_key
from protocol.errors import MalformedError
from protocol.keys import public_key_from_device_id

DEFAULT_CONFIG_PATH = Path("/etc/gridtokenx/edge.toml")
DEFAULT_STATE_DIR = Path("/var/lib/gridtokenx-edge")
# ``[[bus]]`` and ``[[meter]]`` tables: their rules live in edge.meters.config.
METER_TABLES = ("bus", "meter")
TABLES = ("device", "poll", "mqtt", "central", "outbox", "status", "logging", *METER_TABLES)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_IP = Check(_is_ip, "must be an IP address")
_LEVEL = Check(lambda v: v.lower() in {"debug", "info", "warning", "error"}, "must be debug, info, warning or error")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: Annotated[int, Range(1, 65535)] = 1883
    keepalive_s: Annotated[int, Range(5, 3600)] = 30
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    #: ``"device-key"``: log in to the broker as user name = the device id with the password derived from the device
    #: key (``protocol.broker``; central grants that credential when the gateway is registered, issue 14), so no
    #: password is stored beside the key. Empty: ``username``/``password``/``password_file`` as given.
    credential: Annotated[str, Check(lambda v: v in {"", "device-key"}, "must be \"device-key\" or empty")] = ""
    tls: TlsConfig | None = None
    batch_size: Annotated[int, Range(1, 1000)] = 200
    inflight_batches: Annotated[int, Range(2, 256)] = 8
    ack_timeout_s: Annotated[float, Range(0.5, 3600)] = 30.0
    backlog_rate: Annotated[int, Range(1, 1_000_000)] = 5000
    backlog_start_jitter_s: Annotated[float, Range(0, 3600)] = 5.0
    reconnect_min_s: Annotated[float, Range(0.05, 3600)] = 1.0
    reconnect_max_s: Annotated[float, Range(0.05, 86400)] = 120.0

    def __post_init__(self) -> None:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise Invalid("reconnect_max_s", "must be >= reconnect_min_s")


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    path: Path
    min_free_mb: Annotated[int, Range(0, 1_000_000)] = 200
    alarm_records: Annotated[int, Range(1000, 1_000_000_000)] = 1_000_000
    dead_letter_after: Annotated[int, Range(1, 10_000)] = 10
    retry_after_s: Annotated[float, Range(0.1, 86400)] = 300.0


@dataclass(frozen=True, slots=True)
class StatusConfig:
    enabled: bool = True
    #: management interface only by default (issue 10, D7); set a LAN address explicitly
    bind: Annotated[str, _IP] = "127.0.0.1"
    port: Annotated[int, Range(0, 65535)] = 8080
    password: str | None = field(default=None, repr=False)
    refresh_s: Annotated[int, Range(2, 3600)] = 10


@dataclass(frozen=True, slots=True)
class Pkcs11KeyConfig:
    """``[device.pkcs11]``: the device key in a secure element (NXP SE050, ...) reached through its PKCS#11 module
    (``[device] key_store = "pkcs11"``). The key is generated there on first start and never leaves it."""

    module: Path
    pin_file: Path
    token_label: str = "gridtokenx-edge"  # noqa: S105 - a token's name, not a secret
    key_label: str = "gtx-device"


@dataclass(frozen=True, slots=True)
class CentralConfig:
    """Central's Ed25519 public key, pinned here and never learned from the broker (protocol §10): the gateway acts
    only on acks, challenges and sync replies that central signed with the matching key."""

    public_key: bytes


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    source: Path
    state_dir: Path
    mqtt: MqttConfig
    central: CentralConfig
    outbox: OutboxConfig
    status: StatusConfig
    maps_dir: Path | None = None
    clock_check: str = "adjtimex"
    #: the most power any meter of this gateway measures: a register that rose faster since its last reading is a
    #: garbled read and is not signed (edge.outbox, alarm ``register_jump:<serial>``)
    max_power_w: int = 2_000_000
    log_level: str = "info"
    #: settings whose secret is written in the config file itself (the file must then be 0600, see edge.secretfile)
    inline_secrets: tuple[str, ...] = ()
    #: ``[[bus]]`` and ``[[meter]]`` (structure checked; models are checked against the maps by meter_setup.plan)
    buses: tuple[BusConfig, ...] = ()
    meters: tuple[MeterConfig, ...] = ()
    #: the parsed file, so later checks (meter models) can still name its lines
    document: Document | None = field(default=None, repr=False, compare=False)
    #: where the device key lives: ``file`` (``state_dir/device.key``, the default) or ``pkcs11`` (``pkcs11``)
    key_store: str = "file"
    pkcs11: Pkcs11KeyConfig | None = None

    @property
    def key_path(self) -> Path:
        return self.state_dir / "device.key"


@dataclass(frozen=True, slots=True)
class _DeviceTable:
    state_dir: Path | None = None
    key_store: Literal["file", "pkcs11"] = "file"
    pkcs11: Pkcs11KeyConfig | None = None


@dataclass(frozen=True, slots=True)
class _PollTable:
    maps_dir: Path | None = None
    clock_check: Literal["adjtimex", "none"] = "adjtimex"
    #: 2 MW: far above a household's or a small business's connection, far below what a garbled register reads as
    #: (swapped words: x65,536). Raise it for a larger connection, or for simulated meters whose time runs faster.
    max_power_w: Annotated[int, Range(1_000, 10**12)] = 2_000_000


@dataclass(frozen=True, slots=True)
class _LoggingTable:
    level: Annotated[str, _LEVEL] = "info"


class _Reader:
    """One pass over the document: the tables' raw values (copied, so secrets read from files can replace their
    ``*_file`` keys) and the dotted names of secrets written inline."""

    def __init__(self, doc: Document, base: Path) -> None:
        self.doc, self.base = doc, base
        self.inline_secrets: list[str] = []

    def table(self, path: KeyPath) -> dict[str, Any]:
        node: Any = self.doc.data
        for part in path:
            node = node.get(part, {}) if isinstance(node, Mapping) else node
        if not isinstance(node, Mapping):
            raise self.doc.error(path, "must be a table")
        return dict(node)

    def text(self, table: Mapping[str, Any], path: KeyPath, key: str) -> str | None:
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise self.doc.error((*path, key), f"must be a string, got {type(value).__name__}")
        return value or None

    def path(self, table: Mapping[str, Any], path: KeyPath, key: str) -> Path | None:
        value = self.text(table, path, key)
        if value is None:
            return None
        p = Path(value)
        return p if p.is_absolute() else self.base / p

    def secret(self, table: dict[str, Any], path: KeyPath, key: str) -> None:
        """``key`` inline or ``key_file`` naming a file holding it (trailing newline stripped): afterwards
        ``table[key]`` holds the secret (or is absent) and ``key_file`` is gone."""
        inline = self.text(table, path, key)
        file_ = self.path(table, path, f"{key}_file")
        table.pop(f"{key}_file", None)
        table.pop(key, None)
        if inline and file_:
            raise self.doc.error((*path, key), f"give either {key} or {key}_file, not both")
        if file_ is not None:
            where = (*path, f"{key}_file")
            line = self.doc.line_of(where)
            check_secret_file(file_, f"{self.doc.source}{f':{line}' if line else ''}: {dotted_key(where)}:")
            try:
                value = file_.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as e:
                raise self.doc.error(where, f"cannot read {file_}: {e.strerror}") from None
            if value:
                table[key] = value
        elif inline:
            self.inline_secrets.append(dotted_key((*path, key)))
            table[key] = inline


def _mqtt(r: _Reader) -> MqttConfig:
    path: KeyPath = ("mqtt",)
    doc = r.doc
    if "mqtt" not in doc.data:
        raise doc.error(path, "the [mqtt] table is required")
    t = r.table(path)
    if "tls" in t:
        _check_tls(r)
        t.setdefault("port", 8883)
    if not r.text(t, path, "host"):
        raise doc.error((*path, "host"), "is required")
    r.secret(t, path, "password")
    if isinstance(t.get("username"), str) and not t["username"]:
        del t["username"]
    cfg = build(MqttConfig, doc, path, t, base=r.base)
    if cfg.password and not cfg.username:
        raise doc.error((*path, "password"), "a password needs a username")
    if cfg.credential and (cfg.username or cfg.password):
        raise doc.error((*path, "credential"), "credential = \"device-key\" replaces username and password")
    return cfg


def _check_tls(r: _Reader) -> None:
    """The files of ``[mqtt.tls]`` exist (and the client key is a secret file)."""
    doc, path = r.doc, ("mqtt", "tls")
    t = r.table(path)
    files = {name: r.path(t, path, name) for name in ("ca_file", "cert_file", "key_file")}
    if files["ca_file"] is None:
        raise doc.error((*path, "ca_file"), "is required when [mqtt.tls] is present")
    if (files["cert_file"] is None) != (files["key_file"] is None):
        raise doc.error((*path, "cert_file"), "cert_file and key_file go together")
    for name, p in files.items():
        if p is not None and not p.is_file():
            raise doc.error((*path, name), f"file {p} does not exist")
    key = files["key_file"]
    if key is not None:
        line = doc.line_of((*path, "key_file"))
        check_secret_file(key, f"{doc.source}{f':{line}' if line else ''}: mqtt.tls.key_file:")


def _central(r: _Reader) -> CentralConfig:
    # A public key, not a secret: inline or in a file (e.g. a compose secret), without the secret-file rule, and an
    # inline one does not make edge.toml a secret file.
    path: KeyPath = ("central",)
    doc = r.doc
    t = r.table(path)
    reject_unknown(doc, path, t, ("public_key", "public_key_file"))
    inline = r.text(t, path, "public_key")
    file_ = r.path(t, path, "public_key_file")
    if inline and file_:
        raise doc.error((*path, "public_key"), "give either public_key or public_key_file, not both")
    text = inline
    if file_ is not None:
        try:
            text = file_.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as e:
            raise doc.error((*path, "public_key_file"), f"cannot read {file_}: {e.strerror}") from None
    if not text:
        raise doc.error(
            (*path, "public_key"),
            "is required: central's public key (base58; `gridtokenx-central signing-key show` prints it). The gateway "
            "acts only on messages central signed with it (protocol v1.1) and refuses to start without it",
        )
    text = text.strip()
    try:
        key = public_key_from_device_id(text)
    except MalformedError:
        shown = text if len(text) <= 60 else text[:57] + "..."
        raise doc.error(
            (*path, "public_key"), f"must be an Ed25519 public key in base58 (32 bytes), got {shown!r}"
        ) from None
    return CentralConfig(public_key=key)


def _status(r: _Reader) -> StatusConfig:
    path: KeyPath = ("status",)
    t = r.table(path)
    r.secret(t, path, "password")
    if t.get("bind") == "":
        del t["bind"]
    cfg = build(StatusConfig, r.doc, path, t, base=r.base)
    if cfg.enabled and not cfg.password:
        raise r.doc.error((*path, "password"), "the status page needs a password (or set enabled = false)")
    if cfg.password is not None and len(cfg.password) < 8:
        raise r.doc.error((*path, "password"), "must be at least 8 characters")
    return cfg


def parse_config(text: str, source: Path) -> EdgeConfig:
    """Parse and validate TOML text; relative paths are resolved against the file's directory."""
    doc = Document.from_text(str(source), text, ConfigError)
    base = source.parent if source.parent != Path() else Path.cwd()
    reject_unknown(doc, (), doc.data, TABLES)
    r = _Reader(doc, base)
    device = build(_DeviceTable, doc, ("device",), r.table(("device",)), base=base)
    state_dir = device.state_dir or DEFAULT_STATE_DIR
    if device.key_store == "pkcs11":
        if device.pkcs11 is None:
            raise doc.error(("device", "key_store"), "key_store = \"pkcs11\" needs a [device.pkcs11] table")
        line = doc.line_of(("device", "pkcs11", "pin_file"))
        check_secret_file(device.pkcs11.pin_file,
                          f"{doc.source}{f':{line}' if line else ''}: device.pkcs11.pin_file:")
    poll = build(_PollTable, doc, ("poll",), r.table(("poll",)), base=base)
    mqtt = _mqtt(r)
    central = _central(r)
    outbox_table = r.table(("outbox",))
    if not outbox_table.get("path"):
        outbox_table["path"] = str(state_dir / "outbox.sqlite")
    outbox = build(OutboxConfig, doc, ("outbox",), outbox_table, base=base)
    status = _status(r)
    level = build(_LoggingTable, doc, ("logging",), r.table(("logging",))).level.lower()
    buses = parse_buses(doc)
    meters = parse_meters(doc, buses)
    for table in METER_TABLES:  # DLMS LLS passwords of buses/meters are secrets in this file too
        items = doc.data.get(table)
        if isinstance(items, list):
            r.inline_secrets.extend(
                f"{table}[{i}].password"
                for i, item in enumerate(items)
                if isinstance(item, Mapping) and item.get("password")
            )
    return EdgeConfig(
        source=source,
        state_dir=state_dir,
        mqtt=mqtt,
        central=central,
        outbox=outbox,
        status=status,
        maps_dir=poll.maps_dir,
        clock_check=poll.clock_check,
        max_power_w=poll.max_power_w,
        log_level=level,
        inline_secrets=tuple(r.inline_secrets),
        buses=buses,
        meters=meters,
        document=doc,
        key_store=device.key_store,
        pkcs11=device.pkcs11 if device.key_store == "pkcs11" else None,
    )


def load_config(path: Path) -> EdgeConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (start from the annotated firmware-config/edge.example.toml: "
                          "docs/edge.md, Install)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}") from None
    cfg = parse_config(text, path)
    if cfg.inline_secrets:
        check_secret_file(path, f"config file (it holds {', '.join(cfg.inline_secrets)} inline)")
    return cfg
