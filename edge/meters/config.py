"""``[[bus]]`` and ``[[meter]]`` tables of the edge config, parsed into frozen, validated dataclasses.

TOML shape::

    [[bus]]
    name = "rs485"                  # unique; meters refer to it
    kind = "modbus-rtu"             # modbus-tcp | modbus-rtu | modbus-rtu-over-tcp | dlms-tcp | dlms-hdlc
                                    # | p1-serial | p1-tcp (DSMR P1: serial port, or ser2net / Wi-Fi dongle)
    device = "/dev/ttyUSB0"         # serial kinds (modbus-rtu, dlms-hdlc)
    baudrate = 9600                 # serial; default 9600
    parity = "N"                    # N | E | O; default N
    stopbits = 1                    # 1 | 2; default 1
    bytesize = 8                    # 7 | 8; default 8
    # host = "192.168.1.50"         # TCP kinds (modbus-tcp, modbus-rtu-over-tcp, dlms-tcp)
    # port = 502                    # TCP; default 502 for Modbus, 4059 for DLMS
    timeout_ms = 1000               # per request; default 1000 (serial) / 3000 (TCP)
    inter_request_delay_ms = 50     # quiet time between two requests on this bus; default 20
    retries = 2                     # extra attempts after a failure; default 2
    backoff_ms = 200                # first retry delay, doubled each retry; default 200

    [[meter]]
    serial = "SDM630-0001234"       # the meter's serial: unique, names the meter in signed readings
    bus = "rs485"
    model = "eastron-sdm630"        # a map id from firmware-config/meters/
    unit_id = 1                     # Modbus unit id 1..247
    poll_interval_s = 60            # wall-clock aligned polling period; default 60
    # DLMS meters instead of unit_id:
    # client_address = 16           # 16 = public client (auth "none"), 17 = reading client (auth "low")
    # server_address = 1            # logical device (1 = management logical device)
    # physical_address = 17         # HDLC lower (physical) server address; dlms-hdlc only; default 17
    # auth = "none"                 # none | low (LLS password) | hls-gmac (HLS mechanism 5, needs keys_file)
    # password = "..."              # LLS password (auth "low"); never logged
    # security = "auth-enc"         # APDU protection, suite 0: none | auth | enc | auth-enc (needs keys_file)
    # keys_file = "keys/E450.toml"  # 0600; ek = "<32 hex>", ak = "<32 hex>" (the meter's global unicast keys)
    # system_title = "4754580000000001"  # our (client) system title, 8 bytes hex; default 4754580000000001
    # meter_system_title = "..."    # push meters: the system title the meter sends (names it on a dlms-push bus)
    # P1 meters (bus kind p1-serial / p1-tcp, one meter per bus):
    # key_file = "keys/LU-1.key"    # encrypted variants: the meter's AES key, 32 hex digits, mode 0600
    # auth_key_file = "..."         # only where the variant has no published authentication key
    # stale_after_s = 30            # DOWN when no complete telegram arrived for this long; default 30
    # max_clock_skew_s = 60         # alarm when the meter's clock differs more from the gateway's; 0 = off

Several meters may share one bus (several unit ids on one RS-485 line or behind one TCP gateway); access to a bus
is serialised by the reader factory.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from edge.dlms.security import Keys, SecurityPolicy
from edge.meters.maps import MeterMap, MeterProtocol
from edge.p1.variants import VARIANTS
from edge.secretfile import check_secret_file
from gtxconfig import Document, KeyPath, reject_unknown
from gtxconfig.document import dotted_key
from protocol.record import MAX_SERIAL, MIN_SERIAL


class BusKind(StrEnum):
    MODBUS_TCP = "modbus-tcp"
    MODBUS_RTU = "modbus-rtu"
    MODBUS_RTU_OVER_TCP = "modbus-rtu-over-tcp"
    DLMS_TCP = "dlms-tcp"
    DLMS_HDLC = "dlms-hdlc"
    DLMS_PUSH = "dlms-push"  # meters push (ciphered) DATA-NOTIFICATIONs to our TCP port (host/port to listen on)
    P1_SERIAL = "p1-serial"
    P1_TCP = "p1-tcp"

    @property
    def protocol(self) -> MeterProtocol:
        if self.value.startswith("p1"):
            return MeterProtocol.P1
        return MeterProtocol.DLMS if self.value.startswith("dlms") else MeterProtocol.MODBUS

    @property
    def is_serial(self) -> bool:
        return self in (BusKind.MODBUS_RTU, BusKind.DLMS_HDLC, BusKind.P1_SERIAL)


class DlmsAuth(StrEnum):
    NONE = "none"
    LOW = "low"
    HLS_GMAC = "hls-gmac"


class DlmsSecurity(StrEnum):
    """APDU protection (security suite 0): the SC bits 0x10 (authenticated) and 0x20 (encrypted)."""

    NONE = "none"
    AUTH = "auth"
    ENC = "enc"
    AUTH_ENC = "auth-enc"

    @property
    def policy(self) -> SecurityPolicy:
        return {"none": SecurityPolicy.NONE, "auth": SecurityPolicy.AUTHENTICATED, "enc": SecurityPolicy.ENCRYPTED,
                "auth-enc": SecurityPolicy.AUTHENTICATED_ENCRYPTED}[self.value]


DEFAULT_SYSTEM_TITLE = bytes.fromhex("4754580000000001")  # "GTX" + 5 bytes


@dataclass(frozen=True, slots=True)
class BusConfig:
    name: str
    kind: BusKind
    device: str | None = None
    host: str | None = None
    port: int | None = None
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8
    timeout_s: float = 1.0
    inter_request_delay_s: float = 0.02
    retries: int = 2
    backoff_s: float = 0.2

    @property
    def address(self) -> str:
        """Human-readable address for the status page."""
        if self.kind.is_serial:
            return f"{self.device} {self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class MeterConfig:
    serial: str
    bus: str
    model: str
    unit_id: int = 1
    poll_interval_s: int = 60
    client_address: int = 16
    server_address: int = 1
    physical_address: int = 17
    auth: DlmsAuth = DlmsAuth.NONE
    password: bytes = field(default=b"", repr=False)
    security: DlmsSecurity = DlmsSecurity.NONE
    keys: Keys | None = field(default=None, repr=False)
    system_title: bytes = DEFAULT_SYSTEM_TITLE
    meter_system_title: bytes | None = None

    @property
    def secured(self) -> bool:
        """Needs keys: HLS-GMAC and/or ciphered APDUs."""
        return self.auth is DlmsAuth.HLS_GMAC or self.security is not DlmsSecurity.NONE
    #: P1: the meter's encryption key (from ``key_file``) and, where the variant has no published one, its
    #: authentication key (``auth_key_file``); never logged, never in status output
    key: bytes = field(default=b"", repr=False)
    auth_key: bytes = field(default=b"", repr=False)
    #: P1: the meter is DOWN when its newest complete telegram is older than this
    stale_after_s: int = 30
    #: P1: alarm when the meter's own clock and the gateway's differ by more than this (0: no check)
    max_clock_skew_s: int = 60


@dataclass(frozen=True, slots=True)
class ScanHit:
    """A device that answered a scan: its address on the bus and the model maps whose probes all matched. A device
    that answered but matched no map has empty ``map_ids`` and ``reason`` says why it was not named."""

    address: int
    map_ids: tuple[str, ...]
    models: tuple[str, ...]
    detail: str = ""  # what was found (P1: the variant and header), also when no map names it
    #: why a unit that answered was not named (DLMS/Modbus: what it answered or refused)
    reason: str = ""


_BUS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SERIAL = re.compile(rf"^[\x21-\x7e]{{{MIN_SERIAL},{MAX_SERIAL}}}$")  # as the signed record carries it


class _Table:
    def __init__(self, doc: Document, path: KeyPath, table: Any) -> None:
        self.doc, self.path = doc, path
        if not isinstance(table, dict):
            raise doc.error(path, "must be a table")
        self.t: Mapping[str, Any] = table

    def only(self, allowed: Set[str]) -> None:
        reject_unknown(self.doc, self.path, self.t, allowed)

    def fail(self, key: str | None, reason: str) -> Exception:
        return self.doc.error((*self.path, key) if key else self.path, reason)

    def text(self, key: str, default: str | None = None) -> str:
        v = self.t.get(key, default)
        if v is None:
            raise self.fail(None, f"missing required key '{key}'")
        if not isinstance(v, str) or not v:
            raise self.fail(key, "must be a non-empty string")
        return v

    def integer(self, key: str, default: int | None, lo: int, hi: int) -> int:
        v = self.t.get(key, default)
        if v is None:
            raise self.fail(None, f"missing required key '{key}'")
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.fail(key, "must be an integer")
        if not lo <= v <= hi:
            raise self.fail(key, f"must be between {lo} and {hi}, got {v}")
        return v

    def millis(self, key: str, default: int, lo: int, hi: int) -> float:
        return self.integer(key, default, lo, hi) / 1000

    def choice(self, key: str, default: str | None, choices: Sequence[str]) -> str:
        v = self.t.get(key, default)
        if v is None:
            raise self.fail(None, f"missing required key '{key}'")
        if v not in choices:
            raise self.fail(key, f"invalid value {v!r} (expected one of: {', '.join(choices)})")
        return str(v)


_P1_KEYS = ("key_file", "auth_key_file", "stale_after_s", "max_clock_skew_s")
#: The keys a ``[[bus]]`` / ``[[meter]]`` table may have (firmware-config/edge.example.toml shows each of them).
BUS_KEYS = frozenset({"name", "kind", "device", "baudrate", "parity", "stopbits", "bytesize", "host", "port",
                      "timeout_ms", "inter_request_delay_ms", "retries", "backoff_ms"})
METER_KEYS = frozenset({"serial", "bus", "model", "unit_id", "poll_interval_s", "client_address", "server_address",
                        "physical_address", "auth", "password", "security", "keys_file", "system_title",
                        "meter_system_title", *_P1_KEYS})
KEY_BYTES = 16


def _key_file(doc: Document, t: _Table, key: str) -> bytes:
    """A P1 meter's AES-128 key: 32 hex digits in a file only its owner may read (the secret-file rule). The error
    names the setting and the file, never the content."""
    if key not in t.t:
        return b""
    text = t.text(key)
    path = Path(text)
    if not path.is_absolute():
        path = Path(doc.source).resolve().parent / path
    line = doc.line_of(("meter", t.path[1], key))
    check_secret_file(path, f"{doc.source}{f':{line}' if line else ''}: {dotted_key((*t.path, key))}:")
    try:
        raw = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise t.fail(key, f"file {path} does not exist") from None
    except (OSError, UnicodeDecodeError):
        raise t.fail(key, f"cannot read {path} as text") from None
    try:
        value = bytes.fromhex(raw)
    except ValueError:
        value = b""
    if len(value) != KEY_BYTES:
        raise t.fail(key, f"{path} must hold the {KEY_BYTES}-byte key as {2 * KEY_BYTES} hex digits")
    return value


def _only_p1_keys(t: _Table, protocol: MeterProtocol) -> None:
    if protocol is not MeterProtocol.P1:
        for key in _P1_KEYS:
            if key in t.t:
                raise t.fail(key, "only P1 meters take this key")


def _p1_meter(doc: Document, t: _Table, base: MeterConfig) -> MeterConfig:
    for key in ("unit_id", "client_address", "server_address", "physical_address", "auth", "password"):
        if key in t.t:
            raise t.fail(key, "a P1 meter takes no bus address (one meter per P1 port)")
    return replace(
        base,
        key=_key_file(doc, t, "key_file"),
        auth_key=_key_file(doc, t, "auth_key_file"),
        stale_after_s=t.integer("stale_after_s", 30, 2, 3600),
        max_clock_skew_s=t.integer("max_clock_skew_s", 60, 0, 86_400),
    )


def _tables(doc: Document, key: str) -> list[Any]:
    raw = doc.data.get(key, [])
    if not isinstance(raw, list):
        raise doc.error((key,), f"must be an array of tables ([[{key}]])")
    return raw


def parse_buses(doc: Document) -> tuple[BusConfig, ...]:
    """Parse every ``[[bus]]`` of ``doc``. Raises ConfigError with file, line and reason."""
    buses: list[BusConfig] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(_tables(doc, "bus")):
        t = _Table(doc, ("bus", i), raw)
        t.only(BUS_KEYS)
        name = t.text("name")
        if not _BUS_NAME.match(name):
            raise t.fail("name", "use letters, digits, '.', '_' or '-' (max 64)")
        if name in seen:
            raise t.fail("name", f"bus {name!r} is already defined (bus #{seen[name] + 1})")
        seen[name] = i
        kind = BusKind(t.choice("kind", None, [k.value for k in BusKind]))
        common = BusConfig(
            name=name,
            kind=kind,
            timeout_s=t.millis("timeout_ms", 1000 if kind.is_serial else 30_000 if kind is BusKind.DLMS_PUSH else 3000,
                               10, 600_000),
            inter_request_delay_s=t.millis("inter_request_delay_ms", 20, 0, 10_000),
            retries=t.integer("retries", 2, 0, 10),
            backoff_s=t.millis("backoff_ms", 200, 0, 60_000),
        )
        if kind.is_serial:
            for key in ("host", "port"):
                if key in t.t:
                    raise t.fail(key, f"not used by a {kind.value} bus (it takes 'device')")
            buses.append(
                replace(
                    common,
                    device=t.text("device"),
                    baudrate=t.integer("baudrate", 115_200 if kind is BusKind.P1_SERIAL else 9600, 300, 921_600),
                    parity=t.choice("parity", "N", ["N", "E", "O"]),
                    stopbits=t.integer("stopbits", 1, 1, 2),
                    bytesize=t.integer("bytesize", 8, 7, 8),
                )
            )
        else:
            for key in ("device", "baudrate", "parity", "stopbits", "bytesize"):
                if key in t.t:
                    raise t.fail(key, f"not used by a {kind.value} bus (it takes 'host' and 'port')")
            default_port = {BusKind.DLMS_TCP: 4059, BusKind.DLMS_PUSH: 4059, BusKind.P1_TCP: 8088}.get(kind, 502)
            buses.append(replace(common, host=t.text("host"), port=t.integer("port", default_port, 1, 65535)))
    return tuple(buses)


def _title(t: _Table, key: str) -> bytes | None:
    raw = t.t.get(key)
    if raw is None:
        return None
    try:
        title = bytes.fromhex(raw) if isinstance(raw, str) else b""
    except ValueError:
        title = b""
    if len(title) != 8:
        raise t.fail(key, "a system title is 8 bytes, written as 16 hex digits")
    return title


def _keys(doc: Document, t: _Table) -> Keys:
    """Read the meter's EK/AK from ``keys_file`` (a secret file: mode 0600, checked before it is read). Errors name
    the file and the key, never its content."""
    raw = t.t.get("keys_file")
    if not isinstance(raw, str) or not raw:
        raise t.fail(None, "this meter needs 'keys_file' (a 0600 file with ek and ak, from the grid operator)")
    path = Path(raw)
    if not path.is_absolute():
        path = Path(doc.source).parent / path
    line = doc.line_of((*t.path, "keys_file"))
    check_secret_file(path, f"{doc.source}{f':{line}' if line else ''}: {'.'.join(map(str, t.path))}.keys_file:")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise t.fail("keys_file", f"cannot read {path}: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        raise t.fail("keys_file", f"{path} is not a TOML file with ek = \"...\" and ak = \"...\"") from None
    unknown = set(data) - {"ek", "ak"}
    if unknown:
        raise t.fail("keys_file", f"{path}: unknown key(s) {', '.join(sorted(unknown))} (expected ek and ak)")
    keys: dict[str, bytes] = {}
    for name in ("ek", "ak"):
        value = data.get(name)
        try:
            keys[name] = bytes.fromhex(value) if isinstance(value, str) else b""
        except ValueError:
            keys[name] = b""
        if len(keys[name]) != 16:
            raise t.fail("keys_file", f"{path}: {name} must be 32 hex digits (a 16-byte AES key)")
    return Keys(keys["ek"], keys["ak"])


def check_models(
    doc: Document, meters: Sequence[MeterConfig], buses: Sequence[BusConfig], maps: Mapping[str, MeterMap],
    index: int = 0,
) -> None:
    """Every meter's model names a meter map that speaks its bus's protocol (errors name the ``model`` line);
    ``meters`` are the ``[[meter]]`` tables from number ``index`` on."""
    by_name = {b.name: b for b in buses}
    for i, m in enumerate(meters, start=index):
        meter_map = maps.get(m.model)
        if meter_map is None:
            raise doc.error(("meter", i, "model"), f"no meter map {m.model!r} (known: {', '.join(sorted(maps))})")
        bus = by_name[m.bus]
        if meter_map.protocol is not bus.kind.protocol:
            raise doc.error(
                ("meter", i, "model"),
                f"map {m.model!r} is {meter_map.protocol.value} but bus {m.bus!r} is {bus.kind.value}",
            )
        if meter_map.p1_variant is not None:
            _check_p1_keys(doc, i, m, meter_map.p1_variant)


def _check_p1_keys(doc: Document, i: int, m: MeterConfig, variant_name: str) -> None:
    variant = VARIANTS[variant_name]
    if variant.encrypted and not m.key:
        raise doc.error(("meter", i, "model"), f"map {m.model!r} is encrypted ({variant.name}): the meter needs "
                        "key_file (its key from the grid operator)")
    if not variant.encrypted and (m.key or m.auth_key):
        raise doc.error(("meter", i, "model"), f"map {m.model!r} ({variant.name}) is not encrypted: remove key_file")
    if variant.encrypted and variant.fixed_auth_key is None and not m.auth_key:
        raise doc.error(("meter", i, "model"), f"map {m.model!r} ({variant.name}) also needs auth_key_file")


def parse_meters(
    doc: Document, buses: Sequence[BusConfig], maps: Mapping[str, MeterMap] | None = None
) -> tuple[MeterConfig, ...]:
    """Parse every ``[[meter]]`` of ``doc``, checking bus references and (given the maps) models."""
    meters = _parse_meters(doc, buses, maps)
    if maps is not None:
        check_models(doc, meters, buses, maps)
    return meters


def _parse_meters(  # noqa: PLR0912, PLR0915 - one flat validation pass
    doc: Document, buses: Sequence[BusConfig], maps: Mapping[str, MeterMap] | None
) -> tuple[MeterConfig, ...]:
    by_name = {b.name: b for b in buses}
    meters: list[MeterConfig] = []
    serials: dict[str, int] = {}
    addresses: dict[tuple[str, int, int], str] = {}
    for i, raw in enumerate(_tables(doc, "meter")):
        t = _Table(doc, ("meter", i), raw)
        t.only(METER_KEYS)
        serial = t.text("serial")
        if not _SERIAL.match(serial):
            raise t.fail("serial", f"printable ASCII without spaces, {MIN_SERIAL}..{MAX_SERIAL} characters")
        if serial in serials:
            raise t.fail("serial", f"meter {serial!r} is already defined (meter #{serials[serial] + 1})")
        serials[serial] = i
        bus_name = t.text("bus")
        bus = by_name.get(bus_name)
        if bus is None:
            raise t.fail("bus", f"no [[bus]] named {bus_name!r} (known: {', '.join(by_name) or 'none'})")
        model = t.text("model")
        if maps is not None:  # the model first: a meter on the wrong kind of bus is told so, not about its keys
            check_models(doc, [MeterConfig(serial, bus_name, model)], buses, maps, index=i)
        poll = t.integer("poll_interval_s", 60, 1, 86_400)
        _only_p1_keys(t, bus.kind.protocol)
        if bus.kind.protocol is MeterProtocol.P1:
            cfg = _p1_meter(doc, t, MeterConfig(serial=serial, bus=bus_name, model=model, poll_interval_s=poll))
            addr = (bus_name, 0, 0)
        elif bus.kind.protocol is MeterProtocol.MODBUS:
            for key in ("client_address", "server_address", "physical_address", "auth", "password", "security",
                        "keys_file", "system_title", "meter_system_title"):
                if key in t.t:
                    raise t.fail(key, "only DLMS meters take this key")
            unit_id = t.integer("unit_id", None, 1, 247)
            cfg = MeterConfig(serial=serial, bus=bus_name, model=model, unit_id=unit_id, poll_interval_s=poll)
            addr = (bus_name, unit_id, 0)
        else:
            if "unit_id" in t.t:
                raise t.fail("unit_id", "DLMS meters take client_address/server_address instead")
            auth = DlmsAuth(t.choice("auth", "none", [a.value for a in DlmsAuth]))
            password = t.t.get("password")
            if auth is DlmsAuth.LOW:
                if not isinstance(password, str) or not password:
                    raise t.fail("auth", "auth = \"low\" needs a non-empty 'password'")
            elif password is not None:
                raise t.fail("password", "a password is only used with auth = \"low\"")
            security = DlmsSecurity(t.choice("security", "none", [s.value for s in DlmsSecurity]))
            default_client = {DlmsAuth.NONE: 16, DlmsAuth.LOW: 17, DlmsAuth.HLS_GMAC: 1}[auth]
            cfg = MeterConfig(
                serial=serial,
                bus=bus_name,
                model=model,
                poll_interval_s=poll,
                client_address=t.integer("client_address", default_client, 1, 127),
                server_address=t.integer("server_address", 1, 0, 0x3FFF),
                physical_address=t.integer("physical_address", 17, 0, 0x3FFF),
                auth=auth,
                password=password.encode() if isinstance(password, str) else b"",
                security=security,
                system_title=_title(t, "system_title") or DEFAULT_SYSTEM_TITLE,
                meter_system_title=_title(t, "meter_system_title"),
            )
            if bus.kind is BusKind.DLMS_PUSH:
                if cfg.meter_system_title is None:
                    raise t.fail(None, "a meter on a dlms-push bus needs 'meter_system_title' (it names the meter)")
                if cfg.auth is not DlmsAuth.NONE:
                    raise t.fail("auth", "a pushing meter does not associate: leave auth out")
            if cfg.secured or bus.kind is BusKind.DLMS_PUSH:
                cfg = replace(cfg, keys=_keys(doc, t))
            elif "keys_file" in t.t:
                raise t.fail("keys_file", "keys are used with auth = \"hls-gmac\" or a security other than \"none\"")
            addr = (bus_name, cfg.server_address, cfg.physical_address)
            if bus.kind is BusKind.DLMS_PUSH:
                assert cfg.meter_system_title is not None
                addr = (bus_name, int.from_bytes(cfg.meter_system_title, "big"), -1)
        if addr in addresses:
            if bus.kind.protocol is MeterProtocol.P1:
                raise t.fail("bus", f"a P1 port carries one meter, and bus {bus_name!r} has {addresses[addr]!r}")
            clash_key = "unit_id" if bus.kind.protocol is MeterProtocol.MODBUS else None
            raise t.fail(clash_key, f"same bus address as meter {addresses[addr]!r}")
        addresses[addr] = serial
        meters.append(cfg)
    return tuple(meters)
