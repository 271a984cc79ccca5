"""The broker started from the shipped configuration (firmware-config/mosquitto/) with the dynamic-security state
``gridtokenx-central broker init`` writes, changed only through central's adapter (``DynsecAccess``): anonymous
clients are refused, a gateway is confined to ``gtx/v1/d/<its id>/…`` and to its own direction on them, central alone
reads readings and writes acks, a revoked gateway is disconnected and cannot come back, and the edge verifies the
broker's TLS certificate."""

from __future__ import annotations

import asyncio
from pathlib import Path

from central.broker.dynsec import DynsecAccess
from edge.config import load_config
from edge.daemon import Daemon, static_meters
from protocol import topics
from protocol.broker import broker_password
from protocol.keys import DeviceKey
from protocol.signed import pairing_code
from tests.central.broker.mqtt_client import Client, wait_for
from tests.edge.daemon.daemon_config import config_text
from tests.edge.daemon.in_process import run_until
from tests.locked_broker import LockedBroker
from tests.pki import make_pki

NOT_AUTHORIZED = 0x87


def _device() -> tuple[DeviceKey, str]:
    key = DeviceKey.generate()
    return key, broker_password(pairing_code(key.seed), key.device_id)


def _refused(client: Client) -> bool:
    return (bool(client.connect_results) and client.connect_results[-1].is_failure) or (
        not client.connect_results and bool(client.disconnects))


async def test_anonymous_and_unknown_clients_are_refused(locked: LockedBroker, access: DynsecAccess) -> None:
    key, password = _device()
    await access.grant(key.device_id, password)
    assert locked.pki is not None
    tries = [
        Client(locked.port),  # anonymous, plain listener
        Client(locked.tls_port, ca=str(locked.pki.ca)),  # anonymous over TLS
        Client(locked.port, key.device_id, "not-the-password"),
        Client(locked.port, DeviceKey.generate().device_id, password),  # a gateway nobody registered
    ]
    for c in tries:
        c.start_and_wait()
        try:
            assert _refused(c), c.connect_results
        finally:
            c.stop()
    ok = Client(locked.tls_port, key.device_id, password, ca=str(locked.pki.ca)).start_and_wait()
    try:
        assert ok.connected, ok.connect_results
    finally:
        ok.stop()


async def test_a_gateway_uses_only_its_own_topics_and_central_alone_reads_and_acks(
    locked: LockedBroker, access: DynsecAccess
) -> None:
    (a, pw_a), (b, pw_b) = _device(), _device()
    await access.grant(a.device_id, pw_a)
    await access.grant(b.device_id, pw_b)
    central = Client(locked.port, locked.central_username, locked.central_password).start_and_wait()
    dev_a = Client(locked.port, a.device_id, pw_a).start_and_wait()
    dev_b = Client(locked.port, b.device_id, pw_b).start_and_wait()
    try:
        assert central.connected
        assert dev_a.connected
        assert dev_b.connected
        assert not central.subscribe(topics.SHARED_READINGS)[0].is_failure
        assert not central.subscribe(topics.status("+"))[0].is_failure
        assert not dev_b.subscribe(topics.ack(b.device_id))[0].is_failure

        # A may not listen beyond its own acks, challenges and sync replies
        for topic_filter in ("gtx/v1/#", "#", f"gtx/v1/d/{a.device_id}/#", topics.readings("+"),
                             topics.ack(b.device_id), topics.readings(a.device_id), "$CONTROL/dynamic-security/#"):
            assert dev_a.subscribe(topic_filter)[0].value == NOT_AUTHORIZED, topic_filter
        for kind in (topics.TopicKind.ACK, topics.TopicKind.CHALLENGE, topics.TopicKind.SYNC_REPLY):
            assert not dev_a.subscribe(topics.topic(a.device_id, kind))[0].is_failure

        # A may not write as B, nor as central (an ack, even on its own topic), nor command the broker
        for topic in (topics.readings(b.device_id), topics.status(b.device_id), topics.ack(b.device_id),
                      topics.ack(a.device_id), topics.challenge(a.device_id), "$CONTROL/dynamic-security/v1"):
            assert dev_a.publish(topic, b"forged").value == NOT_AUTHORIZED, topic
        assert not dev_a.publish(topics.readings(a.device_id), b"mine").is_failure
        assert not dev_a.publish(topics.status(a.device_id), b'{"v":1,"online":true}').is_failure

        # central writes B's ack; B receives it and nothing A forged
        assert not central.publish(topics.ack(b.device_id), b"from central").is_failure
        assert wait_for(lambda: dev_b.got(topics.ack(b.device_id)) == [b"from central"])
        assert wait_for(lambda: central.got(topics.readings(a.device_id)) == [b"mine"])
        assert wait_for(lambda: central.got(topics.status(a.device_id)) != [])
        await asyncio.sleep(0.3)
        assert central.got(topics.readings(b.device_id)) == []
        assert central.got(topics.status(b.device_id)) == []
        assert dev_b.got(topics.ack(b.device_id)) == [b"from central"]
        assert dev_a.messages == []
    finally:
        for c in (central, dev_a, dev_b):
            c.stop()


async def test_a_revoked_gateway_is_disconnected_and_cannot_reconnect(
    locked: LockedBroker, access: DynsecAccess
) -> None:
    (a, pw_a), (b, pw_b) = _device(), _device()
    await access.grant(a.device_id, pw_a)
    await access.grant(b.device_id, pw_b)
    dev_a = Client(locked.port, a.device_id, pw_a).start_and_wait()
    dev_b = Client(locked.port, b.device_id, pw_b).start_and_wait()
    try:
        assert dev_a.connected
        assert dev_b.connected
        await access.revoke(a.device_id)
        assert wait_for(lambda: dev_a.disconnects, 5), "the revoked gateway is still connected"
        assert dev_b.connected  # the others stay
        await access.revoke(a.device_id)  # again: nothing to do, no error
    finally:
        dev_a.stop()
        dev_b.stop()
    again = Client(locked.port, a.device_id, pw_a).start_and_wait()
    try:
        assert _refused(again), again.connect_results
    finally:
        again.stop()


async def test_a_new_registration_replaces_the_password_and_drops_the_old_session(
    locked: LockedBroker, access: DynsecAccess
) -> None:
    a, old = _device()
    await access.grant(a.device_id, old)
    squatter = Client(locked.port, a.device_id, old).start_and_wait()
    try:
        assert squatter.connected
        new = broker_password("ABCD-EFGH", a.device_id)
        await access.grant(a.device_id, new, replace=False)  # a repair keeps what is there
        await asyncio.sleep(0.2)
        assert squatter.connected
        await access.grant(a.device_id, new)
        assert wait_for(lambda: squatter.disconnects, 5)
    finally:
        squatter.stop()
    for password, admitted in ((old, False), (new, True)):
        c = Client(locked.port, a.device_id, password).start_and_wait()
        try:
            assert c.connected is admitted
        finally:
            c.stop()


def _edge_config(tmp_path: Path, name: str, port: int, ca: Path) -> Path:
    text = config_text(tmp_path / "state", mqtt_port=port).replace(
        "[mqtt]\n", '[mqtt]\ncredential = "device-key"\n'
    ) + f'\n[mqtt.tls]\nca_file = "{ca}"\n'
    path = tmp_path / f"{name}.toml"
    path.touch(mode=0o600)  # it holds the status page's password
    path.write_text(text)
    return path


async def test_the_edge_talks_tls_and_refuses_a_broker_certificate_it_does_not_trust(
    tmp_path: Path, locked: LockedBroker, access: DynsecAccess
) -> None:
    assert locked.pki is not None
    trusted = load_config(_edge_config(tmp_path, "trusting", locked.tls_port, locked.pki.ca))
    daemon = Daemon(trusted, static_meters([]), flush_on_stop_s=0.1)
    key = DeviceKey.from_seed(_seed(trusted.key_path))
    await access.grant(key.device_id, broker_password(pairing_code(key.seed), key.device_id))
    await run_until(daemon, lambda: daemon.board is not None and daemon.board.link.connects >= 1, 15)
    assert daemon.board is not None
    assert daemon.board.link.broker == f"mqtts://127.0.0.1:{locked.tls_port}"

    # the same gateway with another CA in its configuration: the handshake fails, nothing is sent
    other_ca = make_pki(tmp_path / "other-pki", name="impostor").ca
    distrusting = load_config(_edge_config(tmp_path, "distrusting", locked.tls_port, other_ca))
    daemon = Daemon(distrusting, static_meters([]), flush_on_stop_s=0.1)
    await run_until(daemon, lambda: daemon.board is not None and "certificate verify failed" in (
        daemon.board.link.last_error or ""), 15)
    assert daemon.board is not None
    assert daemon.board.link.connects == 0
    assert f"dropped 0 {key.device_id}" not in locked.log  # never got as far as a CONNECT


def _seed(path: Path) -> bytes:
    from edge.keystore import load_or_create_seed  # noqa: PLC0415

    return load_or_create_seed(path).seed
