"""Central configuration: one TOML file (plus ``--set section.key=value`` overrides) parsed once into frozen,
validated dataclasses that are passed explicitly. Library code never reads ``os.environ``.

Every table has a typed field on :class:`CentralConfig` (``config.market``, ``config.ledger``, ...), built by the
shared loader :mod:`gtxconfig` (docs/decisions/0012-config-loader.md): unknown keys, wrong types and values out of
range each raise one ``ConfigError`` line naming the file, the line, the key and the reason.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, TypeVar

from central.archive.settings import ArchiveSettings
from central.broker.config import BrokerConfig
from central.certificates.config import CertificateConfig
from central.errors import ConfigError
from central.ingest.settings import IngestSettings
from central.ledger.config import LedgerConfig
from central.market.config import MarketConfig, ZonesConfig
from central.minting.settings import MintingSettings
from central.secretfile import check_secret_file
from gtxconfig import Check, Document, Invalid, Match, Range, build, build_table

T = TypeVar("T")
_POSITIVE = Check(lambda v: v > 0, "must be > 0")


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?")


@dataclass(frozen=True)
class RateClass:
    """One route class's token bucket: ``burst`` requests at once, refilled at ``per_s`` a second."""

    per_s: Annotated[float, _POSITIVE]
    burst: Annotated[int, Range(1, 1_000_000)]


@dataclass(frozen=True)
class RateLimitConfig:
    """``[http.rate_limit]``: auth routes per client address; writes and reads per user (per address when
    anonymous). Limits hold per worker process (``serve --workers N``: N times these per node)."""

    enabled: bool = True
    auth: RateClass = field(default_factory=lambda: RateClass(per_s=1.0, burst=20))
    write: RateClass = field(default_factory=lambda: RateClass(per_s=50.0, burst=200))
    read: RateClass = field(default_factory=lambda: RateClass(per_s=500.0, burst=1000))
    #: Buckets kept per class; beyond it, full (idle) buckets are dropped first, then the oldest.
    max_keys: Annotated[int, Range(100, 10_000_000)] = 100_000


@dataclass(frozen=True)
class HttpConfig:
    host: str = "127.0.0.1"
    port: Annotated[int, Range(0, 65535)] = 8080
    workers: Annotated[int, Range(1, 64)] = 1
    #: Paths under which the OpenAPI document and docs page are served.
    public_base_url: str = "http://127.0.0.1:8080"
    #: Largest accepted request body (bytes).
    max_body_bytes: Annotated[int, Range(1024)] = 1_048_576
    #: Trust ``X-Forwarded-For`` for the client address (only behind ONE reverse proxy you run, which appends the
    #: address it saw: its last hop is used; earlier hops are client-written).
    trust_forwarded_for: bool = False
    #: prometheus_client multiprocess directory; ``serve --workers N`` (N > 1) sets it for its workers (a fresh
    #: temporary directory unless given) so ``/metrics`` aggregates every worker.
    metrics_dir: str = ""
    #: How long a stored ``Idempotency-Key`` answer is replayed (seconds; central/http/idempotency.py).
    idempotency_ttl_s: Annotated[int, Range(60, 30 * 86_400)] = 86_400
    #: Largest request body of the auth routes (``/api/v1/auth/...``: login, register, reset; bytes).
    auth_max_body_bytes: Annotated[int, Range(1024)] = 16_384
    #: Browser origins allowed to call the API cross-origin (``https://app.example.org``); none by default. Listed
    #: origins may send credentials; any other origin gets no CORS headers (and its preflight a 403).
    cors_origins: tuple[str, ...] = ()
    #: Send ``Strict-Transport-Security`` on every response (central itself, or the proxy in front, speaks TLS).
    #: With ``trust_forwarded_for`` it is also sent when the proxy says ``X-Forwarded-Proto: https``.
    hsts: bool = False
    hsts_max_age_s: Annotated[int, Range(0, 2 * 365 * 86_400)] = 365 * 86_400
    #: Per-route-class token buckets (central/http/ratelimit.py), kept in each worker's memory.
    rate_limit: RateLimitConfig = field(default_factory=RateLimitConfig)

    def __post_init__(self) -> None:
        for i, origin in enumerate(self.cors_origins):
            if not _ORIGIN.fullmatch(origin):
                raise Invalid(f"cors_origins[{i}]", "must be an origin: scheme://host[:port], no path, no '*'")


@dataclass(frozen=True)
class DatabaseConfig:
    dsn: str = "postgresql://postgres@127.0.0.1:5432/gridtokenx"
    pool_min: int = 2
    pool_max: int = 10
    #: Apply pending migrations when the app starts (under an advisory lock, so many workers are safe).
    migrate_on_start: bool = True
    command_timeout_s: Annotated[float, _POSITIVE] = 30.0
    #: Names this node's sessions in ``pg_stat_activity`` (several central nodes: one name each, so that the
    #: holder of a duty's advisory lock can be told apart; see docs/scaling.md).
    application_name: Annotated[str, Match(r"[A-Za-z0-9_.:-]{1,63}", "1..63 letters, digits, _ . : -")] = (
        "gridtokenx-central"
    )
    #: TCP keepalive PostgreSQL applies to this node's sessions (server side): a node whose host vanished without
    #: closing its sockets loses its sessions, and with them the leaderships they hold, after about
    #: ``keepalive_idle_s + keepalive_count * keepalive_interval_s`` seconds (a killed process on a live host
    #: loses them at once: its kernel closes the sockets). ``tcp_user_timeout_ms`` bounds unacknowledged sends.
    keepalive_idle_s: Annotated[int, Range(1, 7200)] = 5
    keepalive_interval_s: Annotated[int, Range(1, 600)] = 2
    keepalive_count: Annotated[int, Range(1, 100)] = 3
    tcp_user_timeout_ms: Annotated[int, Range(0, 3_600_000)] = 10_000

    #: A streaming-replication standby for bulk reads (readings, energy); empty: every read goes to the primary.
    #: Access checks and what users write are always read on the primary (central/db/replica.py).
    replica_dsn: str = ""
    #: The standby is used while its replay lag is at most this (seconds), else reads fall back to the primary.
    replica_max_lag_s: Annotated[float, Range(0.0, 3600.0)] = 5.0
    replica_pool_max: Annotated[int, Range(1, 1000)] = 10
    #: Connections to the primary kept apart for those bulk reads when the standby is not used (or there is none):
    #: generic plans and no session reset on release (central/db/pool.py, "bulk pools").
    bulk_pool_max: Annotated[int, Range(1, 1000)] = 4

    def server_settings(self) -> dict[str, str]:
        """Session settings every connection of this node sends (application name, keepalive)."""
        return {
            "application_name": self.application_name,
            "tcp_keepalives_idle": str(self.keepalive_idle_s),
            "tcp_keepalives_interval": str(self.keepalive_interval_s),
            "tcp_keepalives_count": str(self.keepalive_count),
            "tcp_user_timeout": str(self.tcp_user_timeout_ms),
        }

    def validate(self) -> None:
        _require(self.dsn.startswith(("postgresql://", "postgres://")), "dsn", "must be a postgresql:// URL")
        _require(not self.replica_dsn or self.replica_dsn.startswith(("postgresql://", "postgres://")), "replica_dsn",
                 "must be a postgresql:// URL")
        _require(1 <= self.pool_min <= self.pool_max, "pool_min", "must be >= 1 and <= database.pool_max")


@dataclass(frozen=True)
class MqttConfig:
    #: Set ``enabled = false`` to run without a broker (HTTP-only tools); subscriptions are then refused.
    enabled: bool = True
    host: str = "127.0.0.1"
    port: Annotated[int, Range(1, 65535)] = 1883
    client_id_prefix: str = "gtx-central"
    keepalive_s: Annotated[int, Range(5, 3600)] = 30
    username: str = ""
    password_file: str = ""
    tls: bool = False
    ca_file: str = ""
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    #: Subscribe to device messages through MQTT v5 shared subscriptions (``$share/central/...``), which split them
    #: between central processes. ``false`` for a broker without them (ejabberd 23.01: docs/scaling.md): plain
    #: subscriptions, so run ONE central process (with ``http.workers = 1``) on such a broker.
    shared_subscriptions: bool = True
    #: MQTT v5 Receive Maximum: unacknowledged QoS 1/2 messages the broker may have in flight to this process
    #: (messages are acknowledged after their handlers finish, so this bounds the work queued in memory).
    receive_maximum: Annotated[int, Range(1, 65535)] = 1000
    #: MQTT v5 Maximum Packet Size announced to the broker: larger messages are never sent to this process.
    max_packet_bytes: Annotated[int, Range(4096, 268_435_455)] = 1024 * 1024
    #: QoS 0 messages get no broker-side flow control: at most this many (and ``max_queued_qos0_bytes`` of payload)
    #: wait for their handlers in a process; more are dropped (counted, logged) instead of growing memory.
    max_queued_qos0: Annotated[int, Range(0, 1_000_000)] = 256
    max_queued_qos0_bytes: Annotated[int, Range(0, 2**31)] = 8 * 1024 * 1024
    #: File holding central's Ed25519 seed (64 hex digits, chmod 600): every ack, challenge and sync reply is signed
    #: with it (protocol v1.1). Central refuses to start with MQTT enabled and no key; ``gridtokenx-central
    #: signing-key init`` creates it.
    signing_key_file: str = ""

    def validate(self) -> None:
        _require(0 < self.reconnect_min_s <= self.reconnect_max_s, "reconnect_min_s", "must be > 0 and <= max")


@dataclass(frozen=True)
class AuthConfig:
    #: HMAC key for access tokens: given inline (tests, dev) or, in production, read from ``jwt_secret_file``.
    jwt_secret: str = field(default="", repr=False)
    jwt_secret_file: str = ""
    issuer: str = "gridtokenx-central"
    access_ttl_s: Annotated[int, Range(30, 3600)] = 900
    refresh_ttl_s: int = 30 * 24 * 3600
    verify_token_ttl_s: int = 24 * 3600
    reset_token_ttl_s: int = 3600
    #: Users must verify their e-mail address before they can log in.
    require_verified_email: bool = True
    #: Failed logins allowed within ``login_window_s``: per (account, client address) — the back-off a guesser
    #: meets, which does not lock the owner out from elsewhere (issue 10 D14) —, per client address over all
    #: accounts, and per account over all addresses (a much higher ceiling against distributed guessing; reaching
    #: it refuses the account's logins from every address until failures leave the window).
    login_max_failures_per_account_address: Annotated[int, Range(1)] = 5
    login_max_failures_per_address: Annotated[int, Range(1)] = 20
    login_max_failures_per_account: Annotated[int, Range(1)] = 100
    login_window_s: int = 900
    #: bcrypt cost for passwords (tests may lower it; meter keys always use 12).
    password_bcrypt_cost: Annotated[int, Range(4, 15)] = 12
    min_password_length: Annotated[int, Range(8)] = 10

    def secret(self) -> bytes:
        """The signing key. Reads ``jwt_secret_file`` when no inline secret is set."""
        if self.jwt_secret:
            return self.jwt_secret.encode()
        if self.jwt_secret_file:
            path = Path(self.jwt_secret_file)
            check_secret_file(path, "auth.jwt_secret_file")
            try:
                data = path.read_bytes().strip()
            except OSError as exc:
                raise ConfigError(f"auth.jwt_secret_file cannot be read: {exc.strerror}") from None
            if len(data) < 32:
                raise ConfigError("auth.jwt_secret_file must hold at least 32 bytes")
            return data
        raise ConfigError("auth.jwt_secret or auth.jwt_secret_file must be set")

    def validate(self) -> None:
        _require(bool(self.jwt_secret or self.jwt_secret_file), "jwt_secret",
                 "auth.jwt_secret or auth.jwt_secret_file must be set")
        _require(not self.jwt_secret or len(self.jwt_secret) >= 32, "jwt_secret", "must be at least 32 characters")
        _require(self.refresh_ttl_s > self.access_ttl_s, "refresh_ttl_s", "must exceed auth.access_ttl_s")


@dataclass(frozen=True)
class MailerConfig:
    #: ``dev`` writes each message as a JSON file into ``dev_dir`` (tests and the demo read it); ``smtp`` sends.
    kind: str = "dev"
    dev_dir: str = ".demo/mail"
    from_addr: str = "GridTokenX <no-reply@gridtokenx.local>"
    smtp_host: str = "127.0.0.1"
    smtp_port: Annotated[int, Range(1, 65535)] = 25
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password_file: str = ""
    smtp_timeout_s: float = 10.0

    def validate(self) -> None:
        _require(self.kind in ("dev", "smtp"), "kind", "must be 'dev' or 'smtp'")
        _require(self.kind != "dev" or bool(self.dev_dir), "dev_dir", "must be set for the dev mailer")


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"
    #: ``json`` (one object per line) or ``text``.
    format: str = "json"
    access_log: bool = True

    def validate(self) -> None:
        _require(self.level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"), "level",
                 "must be DEBUG/INFO/WARNING/ERROR")
        _require(self.format in ("json", "text"), "format", "must be 'json' or 'text'")


@dataclass(frozen=True)
class IdentityConfig:
    challenge_ttl_s: Annotated[int, Range(10, 3600)] = 300
    challenge_sweep_interval_s: Annotated[float, _POSITIVE] = 30.0
    #: Meter-claim attempts allowed per user per hour.
    claim_attempts_per_hour: Annotated[int, Range(1)] = 5
    #: Wrong-key meter-claim attempts allowed per meter serial per hour, over all accounts.
    claim_failures_per_serial_per_hour: Annotated[int, Range(1)] = 10
    #: Base URL put into e-mailed links (verification, password reset).
    web_base_url: str = "http://127.0.0.1:8080"
    #: Let people register themselves as installers (else only admins create installer accounts: an installer
    #: can register gateways, so by default that role is handed out, not taken).
    self_register_installers: bool = False
    #: A gateway registration still ``pending`` (never verified) after this long may be taken over by another
    #: registration of the same device id (and its meter serials freed): nobody can squat a device id for good.
    pending_registration_ttl_s: int = 86_400
    #: A pending gateway has at most one outstanding MQTT challenge; a new one (on an ``online`` status or the
    #: sweeper) is issued no sooner than this after the previous one.
    challenge_cooldown_s: Annotated[int, Range(1, 3600)] = 30
    #: Self-service registrations accepted per source address / per e-mail address per hour (each answer is the
    #: same whether or not the address has an account, so these limits are what bounds enumeration and mail
    #: flooding through ``/auth/register``).
    register_max_per_address_per_hour: Annotated[int, Range(1)] = 10
    register_max_per_email_per_hour: Annotated[int, Range(1)] = 3

    def validate(self) -> None:
        _require(self.pending_registration_ttl_s >= self.challenge_ttl_s,
                 "pending_registration_ttl_s", "must be >= identity.challenge_ttl_s")


@dataclass(frozen=True)
class CentralConfig:
    http: HttpConfig = field(default_factory=HttpConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    mailer: MailerConfig = field(default_factory=MailerConfig)
    log: LogConfig = field(default_factory=LogConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    ledger: LedgerConfig = field(default_factory=LedgerConfig)
    minting: MintingSettings = field(default_factory=MintingSettings)
    market: MarketConfig = field(default_factory=MarketConfig)
    zones: ZonesConfig = field(default_factory=ZonesConfig)
    certificates: CertificateConfig = field(default_factory=CertificateConfig)
    archive: ArchiveSettings = field(default_factory=ArchiveSettings)
    broker: BrokerConfig = field(default_factory=BrokerConfig)

    def secret_files(self) -> list[tuple[str, Path]]:
        """Every configured file that holds a secret, as (setting, path); see :mod:`central.secretfile`."""
        out: list[tuple[str, Path]] = []
        for setting, value in (
            ("auth.jwt_secret_file", self.auth.jwt_secret_file),
            ("mqtt.password_file", self.mqtt.password_file),
            ("mqtt.signing_key_file", getattr(self.mqtt, "signing_key_file", "")),
            ("mailer.smtp_password_file", self.mailer.smtp_password_file),
        ):
            if value:
                out.append((setting, Path(value)))
        if self.ledger.key_store == "pkcs11":
            out.append(("ledger.hsm.pin_file", self.ledger.hsm.pin_file))
        if self.ledger.keys_dir.is_dir():
            out.extend(("ledger.keys_dir keypair", p) for p in sorted(self.ledger.keys_dir.glob("*.json")))
        out.append(("ledger.data_dir faucet key", self.ledger.data_dir / "faucet.json"))
        return out

    def check_secret_files(self) -> None:
        """Refuse to go on when any secret file is accessible by group or others (run before migrations)."""
        for setting, path in self.secret_files():
            check_secret_file(path, setting)

    def validate(self, doc: Document | None = None) -> CentralConfig:
        """Run the checks that span keys of one table (``validate`` of each section); errors name ``doc``'s lines."""
        doc = doc or Document.from_mapping("<settings>", {}, ConfigError)
        for f in fields(self):
            sub = getattr(self, f.name)
            if hasattr(sub, "validate"):
                try:
                    sub.validate()
                except Invalid as exc:
                    raise doc.error((f.name, exc.key), exc.reason) from None
        if self.archive.after_days * 86_400_000 <= self.ingest.max_age_ms + self.ingest.max_future_ms:
            # ingest must never need (or write) a reading in a range already archived
            raise doc.error(("archive", "after_days"), "must be more days than ingest.max_age_ms spans")
        return self


def _require(ok: bool, key: str, reason: str) -> None:
    if not ok:
        raise Invalid(key, reason)


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(v) for v in value]
    return value


def _apply_override(raw: dict[str, Any], item: str) -> tuple[str, ...]:
    key, sep, text = item.partition("=")
    path = key.strip().split(".")
    if not sep or len(path) < 2 or not all(path):
        raise ConfigError(f"override {key.strip()!r} must look like section.key=value")
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
    node = raw
    for part in path[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {key.strip()!r}: {part!r} is not a table")
        node = nxt
    node[path[-1]] = value
    return tuple(path)


def from_document(doc: Document) -> CentralConfig:
    """Build and validate the config from a parsed document (every error names ``doc``'s file and line)."""
    raw = _thaw(doc.data)
    http = raw.get("http")
    base_url = http.get("public_base_url") if isinstance(http, dict) else None
    certificates = raw.get("certificates", {})
    if isinstance(certificates, dict) and "uri_base" not in certificates:
        # certificates.uri_base defaults to the public base URL's certificate path
        url = base_url if isinstance(base_url, str) else HttpConfig.public_base_url
        raw["certificates"] = {**certificates, "uri_base": url.rstrip("/") + "/api/v1/certificates"}
    doc = dataclasses.replace(doc, data=raw)
    return build(CentralConfig, doc).validate(doc)


def from_mapping(raw: Mapping[str, Any], source: str = "<settings>") -> CentralConfig:
    """Build and validate a config from a parsed TOML document without a file (errors name ``source``)."""
    return from_document(Document.from_mapping(source, raw, ConfigError))


def parse_section(cls: type[T], name: str, table: Mapping[str, Any]) -> T:
    """One table on its own (tools, tests): ``parse_section(LedgerConfig, "ledger", {...})``."""
    return build_table(cls, table, name=name, error_type=ConfigError)


def load_config(path: str | Path | None, overrides: Iterable[str] = ()) -> CentralConfig:
    """Read ``path`` (TOML; ``None`` = defaults only), apply overrides, validate."""
    if path is None:
        doc = Document.from_mapping("<defaults>", {}, ConfigError)
    else:
        if not Path(path).exists():
            raise ConfigError(f"{path}: no such file (start from the annotated firmware-config/central.example.toml)")
        doc = Document.load(path, ConfigError)
        auth = doc.data.get("auth")
        if isinstance(auth, Mapping) and auth.get("jwt_secret"):
            # a secret written in the file itself makes the file a secret file (central.secretfile)
            check_secret_file(path, "config file (it holds auth.jwt_secret inline)")
    raw = _thaw(doc.data)
    overridden = frozenset(_apply_override(raw, item) for item in overrides)
    return from_document(dataclasses.replace(doc, data=raw, overridden=overridden))


__all__ = [
    "AuthConfig",
    "BrokerConfig",
    "CentralConfig",
    "DatabaseConfig",
    "HttpConfig",
    "IdentityConfig",
    "LogConfig",
    "MailerConfig",
    "MqttConfig",
    "from_document",
    "from_mapping",
    "load_config",
    "parse_section",
]
