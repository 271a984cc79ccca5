"""The daemon's configuration: one TOML file, parsed once into frozen, validated objects.

Every error names the file, the key and the reason (``ConfigError``). The ``[[bus]]`` and ``[[meter]]`` tables of
the same file are parsed by ``edge.meters.config`` (see ``edge.meter_setup``).
"""

from __future__ import annotations

import ipaddress
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge.errors import ConfigError
from edge.secretfile import check_secret_file

DEFAULT_CONFIG_PATH = Path("/etc/gridtokenx/edge.toml")
DEFAULT_STATE_DIR = Path("/var/lib/gridtokenx-edge")
# ``[[bus]]`` and ``[[meter]]`` tables belong to edge.meters (parsed there, with line numbers).
METER_TABLES = ("bus", "meter")


@dataclass(frozen=True, slots=True)
class TlsConfig:
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None


@dataclass(frozen=True, slots=True)
class MqttConfig:
    host: str = "127.0.0.1"
    port: int = 1883
    keepalive_s: int = 30
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: TlsConfig | None = None
    batch_size: int = 200
    inflight_batches: int = 8
    ack_timeout_s: float = 30.0
    backlog_rate: int = 5000
    backlog_start_jitter_s: float = 5.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 120.0


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    path: Path
    min_free_mb: int = 200
    alarm_records: int = 1_000_000
    dead_letter_after: int = 10
    retry_after_s: float = 300.0


@dataclass(frozen=True, slots=True)
class StatusConfig:
    enabled: bool = True
    bind: str = "127.0.0.1"  # management interface only by default (issue 10, D7); set a LAN address explicitly
    port: int = 8080
    password: str | None = field(default=None, repr=False)
    refresh_s: int = 10


@dataclass(frozen=True, slots=True)
class EdgeConfig:
    source: Path
    state_dir: Path
    mqtt: MqttConfig
    outbox: OutboxConfig
    status: StatusConfig
    maps_dir: Path | None = None
    clock_check: str = "adjtimex"
    log_level: str = "info"
    #: settings whose secret is written in the config file itself (the file must then be 0600, see edge.secretfile)
    inline_secrets: tuple[str, ...] = ()

    @property
    def key_path(self) -> Path:
        return self.state_dir / "device.key"


class _Table:
    """A TOML table with the file name and dotted path, so every error message says where."""

    def __init__(
        self, source: Path, path: str, data: Mapping[str, Any], inline_secrets: list[str] | None = None
    ) -> None:
        self.source = source
        self.path = path
        self.data = data
        self.used: set[str] = set()
        #: dotted names of secrets given inline (shared by all tables of one file)
        self.inline_secrets: list[str] = [] if inline_secrets is None else inline_secrets

    def _where(self, key: str) -> str:
        dotted = f"{self.path}.{key}" if self.path else key
        return f"{self.source}: {dotted}"

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(f"{self._where(key)}: {reason}")

    def sub(self, key: str) -> _Table:
        self.used.add(key)
        value = self.data.get(key, {})
        if not isinstance(value, Mapping):
            raise self.fail(key, "must be a table")
        return _Table(self.source, f"{self.path}.{key}" if self.path else key, value, self.inline_secrets)

    def has(self, key: str) -> bool:
        return key in self.data

    def str_(self, key: str, default: str | None = None) -> str | None:
        self.used.add(key)
        value = self.data.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, got {type(value).__name__}")
        return value

    def req_str(self, key: str) -> str:
        value = self.str_(key)
        if not value:
            raise self.fail(key, "is required")
        return value

    def int_(self, key: str, default: int, lo: int, hi: int) -> int:
        self.used.add(key)
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {value!r}")
        if not lo <= value <= hi:
            raise self.fail(key, f"must be between {lo} and {hi}, got {value}")
        return value

    def num(self, key: str, default: float, lo: float, hi: float) -> float:
        self.used.add(key)
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(key, f"must be a number, got {value!r}")
        if not lo <= value <= hi:
            raise self.fail(key, f"must be between {lo} and {hi}, got {value}")
        return float(value)

    def bool_(self, key: str, default: bool) -> bool:
        self.used.add(key)
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, got {value!r}")
        return value

    def path_(self, key: str, base: Path) -> Path | None:
        value = self.str_(key)
        if not value:
            return None
        p = Path(value)
        return p if p.is_absolute() else (base / p)

    def secret(self, key: str, base: Path) -> str | None:
        """``key`` inline or ``key_file`` naming a file holding it (trailing newline stripped)."""
        inline = self.str_(key)
        file_ = self.path_(f"{key}_file", base)
        if inline and file_:
            raise self.fail(key, f"give either {key} or {key}_file, not both")
        if file_ is not None:
            check_secret_file(file_, f"{self._where(f'{key}_file')}:")
            try:
                return file_.read_text(encoding="utf-8").rstrip("\r\n") or None
            except OSError as e:
                raise self.fail(f"{key}_file", f"cannot read {file_}: {e.strerror}") from None
        if inline:
            self.inline_secrets.append(f"{self.path}.{key}" if self.path else key)
        return inline or None

    def check_unknown(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown key (misspelt?)")


def _mqtt(t: _Table, base: Path) -> MqttConfig:
    tls: TlsConfig | None = None
    if t.has("tls"):
        tt = t.sub("tls")
        ca = tt.path_("ca_file", base)
        if ca is None:
            raise tt.fail("ca_file", "is required when [mqtt.tls] is present")
        cert = tt.path_("cert_file", base)
        key = tt.path_("key_file", base)
        if (cert is None) != (key is None):
            raise tt.fail("cert_file", "cert_file and key_file go together")
        for name, p in (("ca_file", ca), ("cert_file", cert), ("key_file", key)):
            if p is not None and not p.is_file():
                raise tt.fail(name, f"file {p} does not exist")
        if key is not None:
            check_secret_file(key, f"{tt._where('key_file')}:")
        tt.check_unknown()
        tls = TlsConfig(ca, cert, key)
    username = t.str_("username") or None
    password = t.secret("password", base)
    if password and not username:
        raise t.fail("password", "a password needs a username")
    rmin = t.num("reconnect_min_s", 1.0, 0.05, 3600)
    rmax = t.num("reconnect_max_s", 120.0, 0.05, 86400)
    if rmax < rmin:
        raise t.fail("reconnect_max_s", "must be >= reconnect_min_s")
    cfg = MqttConfig(
        host=t.req_str("host"),
        port=t.int_("port", 8883 if tls else 1883, 1, 65535),
        keepalive_s=t.int_("keepalive_s", 30, 5, 3600),
        username=username,
        password=password,
        tls=tls,
        batch_size=t.int_("batch_size", 200, 1, 1000),
        inflight_batches=t.int_("inflight_batches", 8, 2, 256),
        ack_timeout_s=t.num("ack_timeout_s", 30.0, 0.5, 3600),
        backlog_rate=t.int_("backlog_rate", 5000, 1, 1_000_000),
        backlog_start_jitter_s=t.num("backlog_start_jitter_s", 5.0, 0, 3600),
        reconnect_min_s=rmin,
        reconnect_max_s=rmax,
    )
    t.check_unknown()
    return cfg


def _status(t: _Table, base: Path) -> StatusConfig:
    enabled = t.bool_("enabled", True)
    bind = t.str_("bind", "127.0.0.1") or "127.0.0.1"
    try:
        ipaddress.ip_address(bind)
    except ValueError:
        raise t.fail("bind", f"must be an IP address, got {bind!r}") from None
    password = t.secret("password", base)
    if enabled and not password:
        raise t.fail("password", "the status page needs a password (or set enabled = false)")
    if password is not None and len(password) < 8:
        raise t.fail("password", "must be at least 8 characters")
    cfg = StatusConfig(
        enabled=enabled,
        bind=bind,
        port=t.int_("port", 8080, 0, 65535),
        password=password,
        refresh_s=t.int_("refresh_s", 10, 2, 3600),
    )
    t.check_unknown()
    return cfg


def parse_config(text: str, source: Path) -> EdgeConfig:
    """Parse and validate TOML text; relative paths are resolved against the file's directory."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: {e}") from None
    base = source.parent if source.parent != Path() else Path.cwd()
    root = _Table(source, "", data)
    dev = root.sub("device")
    state_dir = dev.path_("state_dir", base) or DEFAULT_STATE_DIR
    dev.check_unknown()

    poll = root.sub("poll")
    maps_dir = poll.path_("maps_dir", base)
    clock_check = poll.str_("clock_check", "adjtimex") or "adjtimex"
    if clock_check not in {"adjtimex", "none"}:
        raise poll.fail("clock_check", f"must be 'adjtimex' or 'none', got {clock_check!r}")
    poll.check_unknown()

    if not root.has("mqtt"):
        raise root.fail("mqtt", "the [mqtt] table is required")
    mqtt = _mqtt(root.sub("mqtt"), base)

    ob = root.sub("outbox")
    outbox = OutboxConfig(
        path=ob.path_("path", base) or state_dir / "outbox.sqlite",
        min_free_mb=ob.int_("min_free_mb", 200, 0, 1_000_000),
        alarm_records=ob.int_("alarm_records", 1_000_000, 1000, 1_000_000_000),
        dead_letter_after=ob.int_("dead_letter_after", 10, 1, 10_000),
        retry_after_s=ob.num("retry_after_s", 300.0, 0.1, 86400),
    )
    ob.check_unknown()

    status = _status(root.sub("status"), base)

    lg = root.sub("logging")
    level = (lg.str_("level", "info") or "info").lower()
    if level not in {"debug", "info", "warning", "error"}:
        raise lg.fail("level", f"must be debug, info, warning or error, got {level!r}")
    lg.check_unknown()

    root.used.update(METER_TABLES)
    root.check_unknown()
    for table in METER_TABLES:  # DLMS LLS passwords of buses/meters are secrets in this file too
        items = data.get(table)
        if isinstance(items, list):
            root.inline_secrets.extend(
                f"{table}[{i}].password"
                for i, item in enumerate(items)
                if isinstance(item, Mapping) and item.get("password")
            )
    return EdgeConfig(
        source=source,
        state_dir=state_dir,
        mqtt=mqtt,
        outbox=outbox,
        status=status,
        maps_dir=maps_dir,
        clock_check=clock_check,
        log_level=level,
        inline_secrets=tuple(root.inline_secrets),
    )


def load_config(path: Path) -> EdgeConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror}") from None
    cfg = parse_config(text, path)
    if cfg.inline_secrets:
        check_secret_file(path, f"config file (it holds {', '.join(cfg.inline_secrets)} inline)")
    return cfg
