"""MQTT over TLS with a client certificate and a username/password, against a real Mosquitto."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from edge.config import load_config
from edge.daemon import Daemon, static_meters
from edge.meters.fake import FakeMeterReader
from tests.edge.daemon.central_peer import CentralPeer
from tests.edge.daemon.daemon_config import config_text
from tests.edge.daemon.in_process import fake_meters, run_until
from tests.pki import make_pki
from tests.services import free_port, mosquitto, terminate, wait_port

PASSWORDS = {"gw-0001": "gw-secret-123", "central": "central-secret-456"}


@dataclass
class TlsBroker:
    port: int
    ca: Path
    client: tuple[Path, Path]


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[TlsBroker]:
    d = tmp_path / "pki"
    pki = make_pki(d, hosts=("127.0.0.1",), clients=("gw-0001",))
    passwd = d / "passwd"
    passwd.touch(mode=0o600)
    for user, pw in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, pw], check=True, capture_output=True)
    port = free_port()
    conf = d / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\ncafile {pki.ca}\ncertfile {pki.server_cert}\nkeyfile {pki.server_key}\n"
        f"require_certificate true\nallow_anonymous false\npassword_file {passwd}\n"
        # as root, mosquitto would switch to user "mosquitto", who cannot read files in pytest's 0700 tmp dirs
        "persistence false\nlog_dest none\nuser root\n"
    )
    proc = mosquitto(conf)
    try:
        wait_port("127.0.0.1", port)
        yield TlsBroker(port, pki.ca, pki.clients["gw-0001"])
    finally:
        terminate(proc, timeout=10)


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
