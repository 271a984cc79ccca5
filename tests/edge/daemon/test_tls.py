"""MQTT over TLS with a client certificate and a username/password, against a real Mosquitto."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge.config import load_config
from edge.daemon import Daemon, static_meters
from edge.meters.fake import FakeMeterReader
from tests.edge.daemon.central_peer import CentralPeer
from tests.edge.daemon.daemon_config import config_text
from tests.edge.daemon.in_process import fake_meters, run_until
from tests.services import MOSQUITTO, free_port, wait_port

PASSWORDS = {"gw-0001": "gw-secret-123", "central": "central-secret-456"}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
          *, ca: bool = False, san: bool = False) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
    return b.sign(issuer_key, hashes.SHA256())


def _write(d: Path, name: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> tuple[Path, Path]:
    c, k = d / f"{name}.pem", d / f"{name}.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    k.chmod(0o600)
    return c, k


@dataclass
class TlsBroker:
    port: int
    ca: Path
    client: tuple[Path, Path]


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    d = tmp_path / "pki"
    d.mkdir()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("test CA", ca_key, "test CA", ca_key, ca=True)
    ca_path, _ = _write(d, "ca", ca, ca_key)
    srv_key = ec.generate_private_key(ec.SECP256R1())
    srv_cert, srv_keyf = _write(d, "server", _cert("127.0.0.1", srv_key, "test CA", ca_key, san=True), srv_key)
    cl_key = ec.generate_private_key(ec.SECP256R1())
    client = _write(d, "client", _cert("gw-0001", cl_key, "test CA", ca_key), cl_key)
    passwd = d / "passwd"
    passwd.touch(mode=0o600)
    for user, pw in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, pw], check=True, capture_output=True)
    port = free_port()
    conf = d / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\ncafile {ca_path}\ncertfile {srv_cert}\nkeyfile {srv_keyf}\n"
        f"require_certificate true\nallow_anonymous false\npassword_file {passwd}\n"
        # as root, mosquitto would switch to user "mosquitto", who cannot read files in pytest's 0700 tmp dirs
        "persistence false\nlog_dest none\nuser root\n"
    )
    proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port("127.0.0.1", port)
        yield TlsBroker(port, ca_path, client)
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(10)


def _cfg(tmp_path: Path, b: TlsBroker, password: str) -> Path:
    text = config_text(tmp_path / "state", mqtt_port=b.port).replace(
        "[mqtt]\n",
        f'[mqtt]\nusername = "gw-0001"\npassword = "{password}"\n',
    ) + f'\n[mqtt.tls]\nca_file = "{b.ca}"\ncert_file = "{b.client[0]}"\nkey_file = "{b.client[1]}"\n'
    p = tmp_path / "edge.toml"
    p.write_text(text)
    return p


async def test_publishes_over_tls_with_client_certificate_and_password(tmp_path: Path, tls_broker: TlsBroker) -> None:
    cfg = load_config(_cfg(tmp_path, tls_broker, PASSWORDS["gw-0001"]))
    assert cfg.mqtt.tls is not None
    meter = FakeMeterReader("TLS-1")
    daemon = Daemon(cfg, fake_meters(meter), flush_on_stop_s=1)
    tls = (str(tls_broker.ca), str(tls_broker.client[0]), str(tls_broker.client[1]))
    with CentralPeer("127.0.0.1", tls_broker.port, tls=tls, username="central",
                     password=PASSWORDS["central"]) as central:
        await run_until(daemon, lambda: len(central.records) >= 2, 15)
    assert central.errors == []
    central.check_chain()
    assert daemon.board is not None
    assert daemon.board.link.broker.startswith("mqtts://")


async def test_wrong_password_is_refused_and_shown(tmp_path: Path, tls_broker: TlsBroker) -> None:
    cfg = load_config(_cfg(tmp_path, tls_broker, "not-the-password"))
    daemon = Daemon(cfg, static_meters([]), flush_on_stop_s=0.1)
    await run_until(
        daemon, lambda: daemon.board is not None and "refused" in (daemon.board.link.last_error or ""), 10
    )
    assert daemon.board is not None
    assert daemon.board.link.connects == 0
