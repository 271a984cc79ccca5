"""Issue 10, D2 (gateway side): on an open broker, whoever is not central cannot make the gateway delete readings,
register itself or rewrite its chain. Real Mosquitto, the real daemon, a genuine central peer that seals with the
pinned test key and an impostor peer that seals with its own key."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import secrets
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from edge.config import load_config
from edge.daemon import Daemon
from edge.keystore import read_seed
from edge.meters.fake import FakeMeterReader
from edge.status import StatusBoard
from edge.web import qr_payload
from protocol import topics
from protocol.ack import Ack
from protocol.keys import DeviceKey
from protocol.signed import format_pairing_code, pairing_code, seal_sync_reply
from protocol.sync import SyncReply
from tests.edge.daemon.central_peer import TEST_CENTRAL_KEY, CentralPeer
from tests.edge.daemon.daemon_config import PASSWORD, config_text
from tests.edge.daemon.in_process import fake_meters, running, until


def _get(port: int, path: str) -> tuple[int, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"x:{PASSWORD}".encode()).decode())
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.read()




def _nothing_deleted(daemon: Daemon) -> bool:
    assert daemon.outbox is not None
    st = daemon.outbox.stats()
    return st.depth == st.last_seq and st.dead_letters == 0


@pytest.mark.slow
async def test_forged_and_replayed_central_messages_are_ignored_and_counted(  # type: ignore[no-untyped-def]
    tmp_path: Path, broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    src = tmp_path / "edge.toml"
    src.write_text(config_text(tmp_path / "state", mqtt_port=broker.port))
    cfg = load_config(src)
    meter = FakeMeterReader("FG-1")
    daemon = Daemon(cfg, fake_meters(meter))
    stop = asyncio.Event()
    impostor_key = DeviceKey.generate()
    with (
        CentralPeer(broker.host, broker.port, ack=False) as central,
        CentralPeer(broker.host, broker.port, key=impostor_key) as impostor,  # acks every batch, with its own key
    ):
        task = asyncio.create_task(daemon.run(stop))
        try:
            await asyncio.wait_for(daemon.ready.wait(), 10)
            board: StatusBoard = daemon.board  # type: ignore[assignment]
            dev = board.device_id
            seed = read_seed(cfg.key_path)
            code = format_pairing_code(pairing_code(seed))
            assert board.pairing_code == code
            ignored = board.ignored

            # 1. forged acks (signed with another key, and unsigned v1 ones) for batches really in flight
            await until(lambda: ignored.forged["ack"] >= 2, 20, "forged acks for two batches")
            first_batch = Ack.from_json(json.loads(impostor.sent_on(topics.ack(dev))[0])["body"])
            impostor.publish_raw(topics.ack(dev), first_batch.to_json())  # protocol v1: unsigned
            # 2. a forged challenge carrying the right pairing code, and a forged sync reply
            impostor.challenge(dev, code)
            forged_sync = SyncReply(secrets.token_bytes(32), 9, b"\1" * 32)
            impostor.publish_raw(topics.sync_reply(dev), seal_sync_reply(impostor_key, dev, forged_sync))
            await until(
                lambda: ignored.forged["ack"] >= 3 and ignored.forged["challenge"] == 1 and ignored.forged["sync"] == 1,
                10,
                "forged challenge, sync reply and unsigned ack counted",
            )
            assert _nothing_deleted(daemon)
            assert board.link.acked_records == 0
            assert central.challenge_replies == impostor.challenge_replies == []  # nothing signed

            # 3. genuine acks delete; a replay of one deletes nothing more
            central.ack = True
            await until(lambda: board.link.acked_records > 0, 20, "a genuine ack")
            meter.fail_with = "meter unplugged"  # no new readings: let everything drain
            assert daemon.outbox is not None
            # Drained, and the last ack's bookkeeping done (the outbox commits the delete before the counters move).
            await until(
                lambda: daemon.outbox.stats().depth == 0 and board.link.inflight_batches == 0,  # type: ignore[union-attr]
                30,
                "outbox drained by genuine acks",
            )
            acked, replayed = board.link.acked_records, ignored.replayed["ack"]
            central.publish_raw(topics.ack(dev), central.sent_on(topics.ack(dev))[0])
            await until(lambda: ignored.replayed["ack"] == replayed + 1, 10, "replayed ack counted")
            assert board.link.acked_records == acked

            # 4. a genuine challenge for a wrong pairing code (a relayed registration) is not signed
            wrong = "ZZZZ-ZZZZ" if code != "ZZZZ-ZZZZ" else "0000-0000"
            central.challenge(dev, wrong)
            await until(lambda: ignored.unpaired == 1, 10, "unpaired challenge counted")
            # 5. the right code is signed once; the replay of that challenge is not answered again
            central.challenge(dev, code.lower().replace("-", ""))
            await until(lambda: central.challenge_replies, 10, "challenge reply")
            central.publish_raw(topics.challenge(dev), central.sent_on(topics.challenge(dev))[-1])
            await until(lambda: ignored.replayed["challenge"] == 1, 10, "replayed challenge counted")
            # 6. a genuine sync reply for a request that is not outstanding is not applied
            last_seq = daemon.outbox.stats().last_seq
            central.publish_raw(
                topics.sync_reply(dev),
                seal_sync_reply(TEST_CENTRAL_KEY, dev, SyncReply(secrets.token_bytes(32), last_seq + 100, b"\2" * 32)),
            )
            await until(lambda: ignored.replayed["sync"] == 1, 10, "replayed sync reply counted")
            assert daemon.outbox.stats().last_seq == last_seq

            assert daemon.web_port is not None
            status, body = await asyncio.to_thread(_get, daemon.web_port, "/api/status")
            assert status == 200
            snap = json.loads(body)
            _, page = await asyncio.to_thread(_get, daemon.web_port, "/")
        finally:
            stop.set()
            await asyncio.wait_for(task, 15)
    assert central.challenge_replies == [(dev, True)]
    assert central.errors == impostor.errors == []
    counts = snap["ignored_from_central"]
    assert counts["ack"]["forged"] >= 3
    assert counts["ack"]["replayed"] >= 1
    assert counts["challenge"] == {"forged": 1, "replayed": 1, "unpaired": 1}
    assert counts["sync"] == {"forged": 1, "replayed": 1}
    # the pairing code: on the authenticated page, its QR payload and /api/status; never on MQTT or in the logs
    assert snap["pairing_code"] == code
    assert f"id='pairing-code'>{code}" in page.decode()
    assert qr_payload(dev, code) == f"gridtokenx:{dev}?pairing={code}"
    raw_code = code.replace("-", "")
    for payload in central.status.values():
        assert raw_code.encode() not in payload.replace(b"-", b"")
    assert raw_code not in caplog.text.replace("-", "")


@pytest.mark.slow
async def test_forged_sync_reply_for_the_outstanding_request_signs_nothing(tmp_path: Path, broker) -> None:  # type: ignore[no-untyped-def]
    """An impostor reads the sync request off the open broker and answers it (with a made-up chain head) as fast as
    central does: the gateway acts only on central's signed answer and its chain continues central's without a gap
    or a fork."""
    src = tmp_path / "edge.toml"
    src.write_text(config_text(tmp_path / "state", mqtt_port=broker.port))
    db = tmp_path / "state" / "outbox.sqlite"
    with CentralPeer(broker.host, broker.port) as central:
        daemon = Daemon(load_config(src), fake_meters(FakeMeterReader("RS-1")), flush_on_stop_s=2)
        stop = asyncio.Event()
        task = asyncio.create_task(daemon.run(stop))
        await until(lambda: len(central.records) >= 3, 20, "three readings at central")
        stop.set()
        await asyncio.wait_for(task, 15)
        for suffix in ("", "-wal", "-shm"):  # the outbox is lost, the key is not
            await asyncio.to_thread(Path(f"{db}{suffix}").unlink, missing_ok=True)
        before = len(central.records)
        impostor = CentralPeer(broker.host, broker.port, key=DeviceKey.generate(), sync_answer=(1000, b"\3" * 32))
        with impostor:
            daemon = Daemon(
                load_config(src), fake_meters(FakeMeterReader("RS-1", clock_ms=before * 1000)), flush_on_stop_s=2
            )
            async with running(daemon) as board:
                await until(lambda: board.ignored.forged["sync"] >= 1, 20, "forged sync reply counted")
                await until(lambda: len(central.records) >= before + 3, 30, "records after central's resync")
    assert central.conflicts == []
    assert central.check_chain() >= before + 3  # seq 1..N: nothing was signed after the forged head
