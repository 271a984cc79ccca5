"""Stage 2 of the demo: fresh state, a fresh database, and the real processes — a private Mosquitto, the meter
simulator, central (embedded ledger + JSON-RPC) and the edge daemon — on free ports."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import paho.mqtt.client as paho
from demo_support.procs import Proc, Processes, free_port, wait_for_line, wait_until_http, wait_until_port
from demo_support.report import Gaps, say
from paho.mqtt.enums import CallbackAPIVersion

from edge.demo import DEMO_DLMS_SERIAL, DEMO_P1_SERIAL, DEMO_SERIAL_PREFIX, write_demo_config
from tests.locked_broker import SHIPPED, local_config
from tests.pki import Pki, make_pki

SOFTHSM_MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MARKER = ".gridtokenx-demo"


@dataclass(frozen=True)
class Settings:
    root: Path  # the checkout
    state: Path  # .demo
    db_name: str
    meters: int
    speed: int  # simulated seconds per real second
    window_s: int  # settlement window (minting, certificates)
    epoch_s: int  # market epoch
    poll_s: int  # edge poll interval
    hsm: bool = False  # every platform key in a SoftHSM2 token (PKCS#11) instead of key files
    p1: bool = False  # one more meter: a DSMR P1 meter pushing telegrams over TCP
    dlms_ciphered: bool = False  # plus a ciphered DLMS meter (HLS-GMAC, auth+enc; issue 13)


@dataclass
class Stack:
    settings: Settings
    procs: Processes
    dsn: str
    mqtt_port: int
    sim_port: int
    http_port: int
    rpc_port: int
    status_port: int
    status_password: str
    central_toml: Path
    edge_toml: Path
    #: The broker's TLS listener (the gateway's) beside ``mqtt_port`` (central's plain one), and the CA it pins.
    tls_port: int = 0
    broker_dir: Path | None = None
    device_id: str = ""
    central: Proc | None = None
    edge: Proc | None = None
    p1_port: int | None = None
    dlms_port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.status_port}/"

    def central_cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.bin("gridtokenx-central"), "-c", str(self.central_toml), *args], input=stdin, capture_output=True,
            text=True, env=self.procs.env, timeout=120, check=False,
        )

    def bin(self, name: str) -> str:
        return str(Path(sys.executable).parent / name)

    def serials(self) -> list[str]:
        modbus = [f"{DEMO_SERIAL_PREFIX}{unit:02d}" for unit in range(1, self.settings.meters + 1)]
        return [*modbus, *([DEMO_P1_SERIAL] if self.settings.p1 else []),
                *([DEMO_DLMS_SERIAL] if self.dlms_port is not None else [])]


def fresh_state_dir(state: Path) -> None:
    """Empty ``state`` — only if it is the demo's own directory (marker file) or does not exist yet."""
    if state.exists():
        if any(state.iterdir()) and not (state / MARKER).exists():
            raise SystemExit(f"{state} exists and is not a demo state directory; refusing to delete it")
        shutil.rmtree(state)
    state.mkdir(parents=True)
    (state / MARKER).write_text("state of `make demo`; deleted at the start of every run\n", encoding="utf-8")


async def fresh_database(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise SystemExit(f"database name {name!r} must be a plain lower-case identifier")
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(host="127.0.0.1", port=5432, user="postgres", database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def central_config(s: Settings, *, dsn: str, http_port: int, mqtt_port: int, rpc_port: int) -> str:
    st = s.state.resolve()
    base = f"http://127.0.0.1:{http_port}"
    return f"""# Written by `make demo` (tests/demo.py): development settings, never for production.
[http]
host = "127.0.0.1"
port = {http_port}
public_base_url = "{base}"

[database]
dsn = "{dsn}"

[mqtt]
host = "127.0.0.1"
port = {mqtt_port}
signing_key_file = "{st / 'central-signing.key'}"
username = "gtx-central"
password_file = "{st / 'broker' / 'central.password'}"

[broker]
dynsec = true

[auth]
jwt_secret = "{secrets.token_urlsafe(48)}"
password_bcrypt_cost = 10

[mailer]
kind = "dev"
dev_dir = "{st / 'mail'}"

[log]
level = "INFO"
format = "json"

[identity]
web_base_url = "{base}"
register_max_per_address_per_hour = 1000  # every demo owner registers from 127.0.0.1

[ledger]
backend = "embedded"
data_dir = "{st / 'ledger'}"
keys_dir = "{st / 'keys'}"
create_keys = true
{_hsm_settings(st) if s.hsm else ""}rpc_host = "127.0.0.1"
rpc_port = {rpc_port}
rpc_ws_port = 0
slot_ms = 100

[minting]
window_ms = {s.window_s * 1000}
accounting_interval_s = 0.5
accrual_recheck_s = 2.0

[market]
epoch_length_s = {s.epoch_s}
clear_interval_s = 0.5
settle_interval_s = 0.5
reconcile_interval_s = 5.0

[certificates]
window_s = {s.window_s}
"""


def _hsm_settings(st: Path) -> str:
    pin_file = st / "softhsm" / "user.pin"
    return (f'key_store = "pkcs11"\n'
            f'hsm = {{ module = "{SOFTHSM_MODULE}", token_label = "gridtokenx-demo", pin_file = "{pin_file}" }}\n')


def softhsm_token(state: Path, procs: Processes) -> None:
    """A SoftHSM2 token for the platform keys in ``state/softhsm`` (its own softhsm2.conf, which the children find
    through ``SOFTHSM2_CONF``); central generates its keys there (``ledger init`` with ``create_keys``)."""
    d = state / "softhsm"
    (d / "tokens").mkdir(parents=True)
    conf = d / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {d / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    pin = secrets.token_hex(8)
    pin_file = d / "user.pin"
    pin_file.write_text(pin + "\n", encoding="utf-8")
    pin_file.chmod(0o600)
    procs.env["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "gridtokenx-demo", "--pin", pin,
                    "--so-pin", secrets.token_hex(8)], check=True, capture_output=True, env=procs.env, timeout=60)
    say(f"softhsm2         token 'gridtokenx-demo' in {d}: every platform key is generated there (PKCS#11)")


def prepare(s: Settings, procs: Processes, dsn: str) -> Stack:
    http_port, mqtt_port, rpc_port, sim_port, status_port, tls_port = (free_port() for _ in range(6))
    if s.hsm:
        softhsm_token(s.state, procs)
    central_toml = s.state / "central.toml"
    central_toml.write_text(central_config(s, dsn=dsn, http_port=http_port, mqtt_port=mqtt_port, rpc_port=rpc_port),
                            encoding="utf-8")
    central_toml.chmod(0o600)
    central_key = central_signing_key(central_toml, procs)
    password = secrets.token_urlsafe(9)
    p1_port = free_port() if s.p1 else None
    dlms_port = free_port() if s.dlms_ciphered else None
    edge_toml = write_demo_config(s.state / "edge", mqtt_port=mqtt_port, sim_port=sim_port, meters=s.meters,
                                  interval_s=s.poll_s, status_port=status_port, status_password=password,
                                  central_public_key=central_key, p1_port=p1_port, dlms_ciphered_port=dlms_port,
                                  speed=s.speed)
    # readings central turns away before the gateway is verified are retried after 2 s (not 5 min): nothing is lost
    text = edge_toml.read_text(encoding="utf-8").replace("[outbox]\n", "[outbox]\nretry_after_s = 2\n", 1)
    # the gateway talks TLS to the broker's 8883-style listener, verifying its certificate against the demo's CA, and
    # logs in with its key-derived credential (granted when the installer registers it; refused until then)
    broker_dir = (s.state / "broker").resolve()
    pki = make_pki(broker_dir / "pki", name="demo")
    text = text.replace(f"port = {mqtt_port}\n", f'port = {tls_port}\ncredential = "device-key"\n', 1)
    text = text.replace("reconnect_max_s = 10\n", "reconnect_max_s = 2\n", 1)
    text = text.replace("[central]\n", f'[mqtt.tls]\nca_file = "{pki.ca}"\n[central]\n', 1)
    edge_toml.write_text(text, encoding="utf-8")
    return Stack(s, procs, dsn, mqtt_port, sim_port, http_port, rpc_port, status_port, password, central_toml,
                 edge_toml, p1_port=p1_port, tls_port=tls_port, broker_dir=broker_dir, dlms_port=dlms_port)


def central_signing_key(central_toml: Path, procs: Processes) -> str:
    """``gridtokenx-central signing-key init``: central's message-signing key (protocol v1.1); its public key (base58),
    which the gateway pins in ``[central] public_key``."""
    r = subprocess.run([str(Path(sys.executable).parent / "gridtokenx-central"), "-c", str(central_toml), "signing-key",
                        "init"], capture_output=True, text=True, env=procs.env, timeout=60, check=False)
    lines = r.stdout.split()
    if r.returncode != 0 or not lines:
        raise RuntimeError(f"gridtokenx-central signing-key init failed (exit {r.returncode}): "
                           f"{r.stderr.strip()[-800:]}")
    say(f"signing-key init central's message-signing key created; public key {lines[-1]} pinned in the gateway config")
    return lines[-1]


def start_broker(stack: Stack) -> None:
    """``gridtokenx-central broker init`` (central's broker password, the dynamic-security plugin's first file), then
    Mosquitto from the shipped firmware-config/mosquitto/mosquitto.conf, only its ports and paths made local."""
    d = stack.broker_dir
    assert d is not None
    r = stack.central_cli("broker", "init", "--dynsec-file", str(d / "dynamic-security.json"))
    if r.returncode != 0:
        raise RuntimeError(f"gridtokenx-central broker init failed (exit {r.returncode}): {r.stderr.strip()[-800:]}")
    conf = d / "mosquitto.conf"
    pki = Pki(d / "pki" / "ca.pem", d / "pki" / "server.pem", d / "pki" / "server.key")
    text = local_config(SHIPPED.read_text(encoding="utf-8"), workdir=d, tls_port=stack.tls_port,
                        plain_port=stack.mqtt_port, pki=pki)
    conf.write_text(text.replace(f"log_dest file {d / 'mosquitto.log'}", "log_dest stdout"), encoding="utf-8")
    proc = stack.procs.start("mosquitto", [MOSQUITTO, "-c", str(conf)])
    wait_until_port(proc, stack.mqtt_port, 10)
    wait_until_port(proc, stack.tls_port, 10)
    say(f"mosquitto        pid {proc.pid:<7} shipped config (dynamic security, anonymous refused): gateways "
        f"mqtts://127.0.0.1:{stack.tls_port}, central mqtt://127.0.0.1:{stack.mqtt_port}")
    say(f"                 a client without credentials: {anonymous_connect(stack.mqtt_port)}")


def anonymous_connect(port: int) -> str:
    """What the broker answers a client that brings no user name (the broker's own CONNACK reason)."""
    answers: list[str] = []
    client = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    client.on_connect = lambda _c, _u, _f, reason, _p: answers.append(str(reason))
    try:
        client.connect("127.0.0.1", port, keepalive=10)
        for _ in range(50):
            if answers:
                break
            client.loop(timeout=0.1)
    except OSError as exc:
        return f"no connection ({exc})"
    finally:
        client.disconnect()
    if not answers:
        return "no answer"
    return "ACCEPTED (the broker is open!)" if answers[0] == "Success" else f"refused: {answers[0]}"


def start_simulator(stack: Stack) -> None:
    s = stack.settings
    # the P1 meter is the last owner: prosumer or consumer by its place, as people.py deals the roles out
    p1 = [] if stack.p1_port is None else ["--p1-port", str(stack.p1_port), "--p1-kind",
                                           "prosumer" if s.meters % 2 == 0 else "consumer"]
    proc = stack.procs.start("simulator", [
        sys.executable, "-m", "edge.simulator", "--port", str(stack.sim_port), "--count", str(s.meters),
        "--speed", str(s.speed), *p1,
        *(["--dlms-ciphered-port", str(stack.dlms_port)] if stack.dlms_port is not None else []),
    ])
    line = wait_for_line(proc, '"ready": true', 20)
    kinds = [m["kind"] for m in json.loads(line)["meters"]]
    say(f"edge.simulator   pid {proc.pid:<7} modbus-tcp 127.0.0.1:{stack.sim_port}: {len(kinds)} SDM630 meters "
        f"({', '.join(kinds)}), time x{s.speed}")
    if stack.p1_port is not None:
        say(f"edge.simulator   pid {proc.pid:<7} p1-tcp 127.0.0.1:{stack.p1_port}: DSMR 5 P1 meter {DEMO_P1_SERIAL} "
            "pushing a telegram every second (like a ser2net or Wi-Fi P1 dongle)")
    if stack.dlms_port is not None:
        say(f"                 dlms-tcp 127.0.0.1:{stack.dlms_port}: a ciphered Landis+Gyr E450 (prosumer; HLS-GMAC, "
            "authenticated+encrypted APDUs, keys in a 0600 file)")


def init_ledger(stack: Stack, gaps: Gaps) -> None:
    """``gridtokenx-central ledger init``; if the CLI lacks it, the same function it would call (and say so)."""
    r = stack.central_cli("ledger", "init")
    if r.returncode == 0:
        info = _json_in(r.stdout)
    else:
        what = "is missing from central/cli.py" if "invalid choice" in r.stderr else "failed"
        gaps.note(f"`gridtokenx-central ledger init` {what}",
                  f"exit {r.returncode}: {r.stderr.strip().splitlines()[-1] if r.stderr.strip() else r.stdout}; "
                  "ran central.ledger.cli.init_command, which it would call, instead")
        code = ("import sys; from central.config import load_config; from central.ledger.cli import init_command; "
                "sys.exit(init_command(load_config(sys.argv[1], []).ledger))")
        r = subprocess.run([sys.executable, "-c", code, str(stack.central_toml)], capture_output=True, text=True,
                           env=stack.procs.env, timeout=120, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"ledger init failed (exit {r.returncode}): {r.stderr.strip()[-800:]}")
        info = _json_in(r.stdout)
    if {"energy_mint", "quote_mint"} <= info.keys():
        say(f"ledger init      energy mint {info['energy_mint']} ({info.get('energy_decimals')} decimals), "
            f"quote mint {info['quote_mint']} ({info.get('quote_decimals')})")
    else:
        say(f"ledger init      {json.dumps(info)[:300]}")


def _json_in(text: str) -> dict[str, Any]:
    """The JSON object a command printed (after any other lines), or its text when it printed none."""
    try:
        found = json.loads(text[text.index("{"):])
    except ValueError:
        return {"output": text.strip()}
    return found if isinstance(found, dict) else {"output": text.strip()}


def start_central(stack: Stack) -> None:
    proc = stack.procs.start("central", [stack.bin("gridtokenx-central"), "-c", str(stack.central_toml), "serve"])
    stack.central = proc
    wait_until_http(proc, f"{stack.base_url}/readyz", 90)
    say(f"central          pid {proc.pid:<7} {stack.base_url} (ready: database, broker, ledger), "
        f"JSON-RPC http://127.0.0.1:{stack.rpc_port}")


def init_edge(stack: Stack) -> None:
    r = subprocess.run([stack.bin("gridtokenx-edge"), "--config", str(stack.edge_toml), "init"],
                       capture_output=True, text=True, env=stack.procs.env, timeout=60, check=False)
    m = re.search(r"device id: (\S+)", r.stdout)
    if r.returncode != 0 or m is None:
        raise RuntimeError(f"gridtokenx-edge init failed (exit {r.returncode}): {r.stderr.strip()[-800:]}")
    stack.device_id = m.group(1)
    say(f"gridtokenx-edge init: gateway key created, device id {stack.device_id}")


def start_edge(stack: Stack) -> None:
    proc = stack.procs.start("edge", [stack.bin("gridtokenx-edge"), "--config", str(stack.edge_toml), "run"])
    stack.edge = proc
    wait_until_http(proc, f"http://127.0.0.1:{stack.status_port}/healthz", 30)
    say(f"gridtokenx-edge  pid {proc.pid:<7} polling {stack.settings.meters} meters every {stack.settings.poll_s} s, "
        f"status page {stack.status_url}")


def child_env(root: Path) -> dict[str, str]:
    """The children run this checkout's code (PYTHONPATH first), whatever the venv's editable install points at."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    return env
