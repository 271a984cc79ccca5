"""The uplink against the in-memory link, with a real outbox and real protocol messages."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.config import EdgeConfig, MqttConfig
from edge.fakes import FakeLink
from edge.meters.base import MeterSample
from edge.outbox import Outbox
from edge.signing import ProtocolSigner
from edge.status import LinkState, StatusBoard
from edge.uplink import Uplink
from protocol import topics
from protocol.ack import Ack
from protocol.batch import decode_batch
from protocol.challenge import ChallengeReply, verify_challenge
from protocol.errors import Reason
from protocol.keys import DeviceKey
from protocol.signed import (
    PairedChallenge,
    format_pairing_code,
    pairing_code,
    seal_ack,
    seal_challenge,
    seal_sync_reply,
)
from protocol.sync import SyncReply, SyncRequest
from tests.edge.daemon.central_peer import TEST_CENTRAL_KEY as CENTRAL


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def mono(self) -> float:
        return self.t

    def wall_ms(self) -> int:
        return 1_700_000_000_000 + int(self.t * 1000)


def make(cfg: EdgeConfig, outbox: Outbox, key: DeviceKey, clock: Clock, **mq: object) -> tuple[Uplink, FakeLink]:
    link = FakeLink()
    mqtt = MqttConfig(**{**{f: getattr(cfg.mqtt, f) for f in MqttConfig.__slots__}, **mq})  # type: ignore[arg-type]
    board = StatusBoard(device_id=key.device_id, version="t", started_ms=0, link=LinkState("mqtt://x"))
    up = Uplink(
        key=key, central_public_key=CENTRAL.public_key, outbox=outbox, signer=ProtocolSigner(key), link=link,
        mqtt=mqtt, outbox_cfg=cfg.outbox, board=board, version="t", monotonic=clock.mono, wall_ms=clock.wall_ms,
    )
    return up, link


def fill(outbox: Outbox, key: DeviceKey, n: int) -> None:
    s = ProtocolSigner(key)
    start = outbox.chain_head()[0]  # a meter's readings go forward in time, also over several fills
    for i in range(start, start + n):
        outbox.append("M1", MeterSample(1_700_000_000_000 + i, i, 0, None), 0, s)


def batches(link: FakeLink, key: DeviceKey) -> list[list[int]]:
    return [[r.seq for r in decode_batch(p)] for p in link.on(topics.readings(key.device_id))]


async def connected(cfg: EdgeConfig, outbox: Outbox, key: DeviceKey, **mq: object) -> tuple[Uplink, FakeLink, Clock]:
    """An uplink (``make``) on a fresh clock, told its link is up."""
    clock = Clock()
    up, link = make(cfg, outbox, key, clock, **mq)
    up.on_connected()
    await up.drain()
    return up, link, clock


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Outbox]:
    """An outbox whose database was lost: it must learn where its chain stands from central (sync)."""
    ob = Outbox.open(tmp_path / "fresh.sqlite", new_device=False)
    yield ob
    ob.close()


async def asking_to_sync(cfg: EdgeConfig, fresh: Outbox, key: DeviceKey) -> tuple[Uplink, FakeLink, Clock, SyncRequest]:
    """Two readings wait unsigned in ``fresh``; the connected uplink has sent its sync request (returned)."""
    fill(fresh, key, 2)
    up, link, clock = await connected(cfg, fresh, key)
    await up.pump()
    (req_raw,) = link.on(topics.sync(key.device_id))
    return up, link, clock, SyncRequest.from_json(req_raw)


async def deliver(up: Uplink, topic: str, payload: bytes) -> None:
    up.on_message(topic, payload)
    await up.drain()


async def ack_all(up: Uplink, seqs: list[int]) -> None:
    await send_ack(up, Ack(seqs[0], seqs[-1], len(seqs), 0))


async def send_ack(up: Uplink, ack: Ack) -> None:
    await deliver(up, topics.ack(up.device_id), seal_ack(CENTRAL, up.device_id, ack))


async def send_sync(up: Uplink, reply: SyncReply) -> None:
    await deliver(up, topics.sync_reply(up.device_id), seal_sync_reply(CENTRAL, up.device_id, reply))


async def send_challenge(up: Uplink, ch: PairedChallenge) -> None:
    await deliver(up, topics.challenge(up.device_id), seal_challenge(CENTRAL, up.device_id, ch))


async def test_connect_publishes_retained_online_status_and_backlog_is_rate_limited(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    fill(outbox, key, 500)
    up, link, clock = await connected(cfg, outbox, key, backlog_rate=100, batch_size=50, inflight_batches=4)
    (status,) = [(p, r) for t, p, _, r in link.published if t == topics.status(key.device_id)]
    assert b'"online":true' in status[0]
    assert status[1] is True
    await up.pump()
    assert batches(link, key) == []  # no tokens yet at t=0
    clock.t += 0.5
    await up.pump()
    assert batches(link, key) == [list(range(1, 51))]  # 50 tokens
    for _ in range(5):
        clock.t += 0.5
        await up.pump()
    sent = batches(link, key)
    assert len(sent) == 3  # window 4, one slot kept free for live records
    assert [b[0] for b in sent] == [1, 51, 101]  # oldest first
    await ack_all(up, sent[0])
    assert outbox.stats().depth == 450
    # a fresh reading goes out at once, through the slot reserved for live data, even with the backlog pending
    fill(outbox, key, 1)
    clock.t += 0.001
    await up.pump()
    assert batches(link, key)[-1] == [501]


async def test_every_batch_verifies_and_acked_records_are_deleted(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    up, link, _ = await connected(cfg, outbox, key)
    for _ in range(7):
        fill(outbox, key, 3)
        await up.pump()
        for seqs in batches(link, key)[-1:]:
            await ack_all(up, seqs)
    assert outbox.stats().depth == 0
    assert [s for b in batches(link, key) for s in b] == list(range(1, 22))
    assert up._board.link.acked_records == 21


async def test_missing_ack_resends_and_reconnect_resends_inflight(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    up, link, clock = await connected(cfg, outbox, key, ack_timeout_s=5.0)
    fill(outbox, key, 3)
    await up.pump()
    assert batches(link, key) == [[1, 2, 3]]
    clock.t += 6
    await up.pump()
    assert batches(link, key) == [[1, 2, 3], [1, 2, 3]]
    up.on_disconnected()
    await up.drain()
    link.up = False
    fill(outbox, key, 2)
    await up.pump()
    link.up = True
    up.on_connected()
    await up.drain()
    clock.t += 1
    await up.pump()
    assert batches(link, key)[2:] == [[1, 2, 3, 4, 5]]  # all of it is backlog now, oldest first


async def test_rejections_go_to_dead_letters_or_retry(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    up, link, clock = await connected(cfg, outbox, key)
    fill(outbox, key, 3)
    await up.pump()
    await send_ack(up, Ack(1, 3, 1, 0, ((2, Reason.BAD_SIGNATURE), (3, Reason.DEVICE_NOT_VERIFIED))))
    st = outbox.stats()
    assert (st.depth, st.dead_letters) == (1, 1)
    clock.t += cfg.outbox.retry_after_s + 1
    await up.pump()
    assert batches(link, key)[-1] == [3]


async def test_unknown_or_partial_ack_deletes_nothing(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    up, _, _ = await connected(cfg, outbox, key)
    fill(outbox, key, 4)
    await send_ack(up, Ack(1, 4, 2, 0))  # not a batch we sent, counts don't cover it
    await deliver(up, topics.ack(key.device_id), b'{"garbage":')
    assert outbox.stats().depth == 4


async def test_answers_challenge_and_becomes_verified_after_accepted_readings(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    up, link, clock = await connected(cfg, outbox, key)
    nonce = bytes(range(32))
    code = pairing_code(key.seed)
    await send_challenge(up, PairedChallenge.issue(code, nonce, key.public_key, clock.wall_ms() - 1))  # expired
    assert link.on(topics.challenge_reply(key.device_id)) == []
    ch = PairedChallenge.issue(format_pairing_code(code).lower(), nonce, key.public_key, clock.wall_ms() + 60_000)
    await send_challenge(up, ch)
    (raw,) = link.on(topics.challenge_reply(key.device_id))
    reply = ChallengeReply.from_json(raw)
    verify_challenge(key.public_key, nonce, ch.expires_ms, reply.signature)
    assert not up._board.verified
    fill(outbox, key, 1)
    await up.pump()
    await ack_all(up, [1])
    assert up._board.verified
    assert outbox.get_meta("accepted_after_challenge_ms") is not None


async def test_lost_database_resyncs_with_central_without_operator(cfg, fresh, key) -> None:  # type: ignore[no-untyped-def]
    up, link, clock, req = await asking_to_sync(cfg, fresh, key)
    await send_sync(up, SyncReply(bytes(32), 7, bytes(32)))  # wrong nonce
    assert fresh.needs_sync
    head = bytes([9]) * 32
    await send_sync(up, SyncReply(req.nonce, 7, head))
    assert not fresh.needs_sync
    clock.t += 1
    await up.pump()
    recs = [r for p in link.on(topics.readings(key.device_id)) for r in decode_batch(p)]
    assert [r.seq for r in recs] == [8, 9]
    assert recs[0].prev_hash == head


@pytest.mark.parametrize("payload", [b"", b"{}", b"\xff", b'{"v":2,"nonce":"00"}'])
async def test_malformed_messages_are_ignored(cfg, outbox, key, payload: bytes) -> None:  # type: ignore[no-untyped-def]
    up, link, _ = await connected(cfg, outbox, key)
    for kind in (topics.ack, topics.challenge, topics.sync_reply):
        await deliver(up, kind(key.device_id), payload)
    assert link.on(topics.challenge_reply(key.device_id)) == []


async def test_forged_ack_with_huge_range_and_matching_counts_deletes_nothing(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    """Issue 10, D3: counts in an ack are never trusted; only the batch in flight is acked."""
    up, _, _ = await connected(cfg, outbox, key)
    fill(outbox, key, 4)
    await send_ack(up, Ack(1, 4, 4, 0))  # counts cover it, but it was never sent
    assert outbox.stats().depth == 4
    await send_ack(up, Ack(1, 1_000_000_000, 1_000_000_000, 0))
    assert outbox.stats().depth == 4


def tampered(envelope: bytes) -> bytes:
    obj = json.loads(envelope)
    assert '"accepted":3' in obj["body"]
    obj["body"] = obj["body"].replace('"accepted":3', '"accepted":2')
    return json.dumps(obj, separators=(",", ":")).encode()


async def test_acks_not_sealed_by_the_pinned_central_key_delete_nothing(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    """Issue 10, D2: an ack for the very batch in flight deletes nothing unless central signed it for this device."""
    up, link, _ = await connected(cfg, outbox, key)
    fill(outbox, key, 3)
    await up.pump()
    assert batches(link, key) == [[1, 2, 3]]
    ack = Ack(1, 3, 3, 0)
    other = DeviceKey.generate()
    forgeries = [
        ack.to_json(),  # protocol v1: unsigned
        seal_ack(DeviceKey.generate(), key.device_id, ack),  # signed by someone else
        seal_ack(CENTRAL, other.device_id, ack),  # central's, but for another device
        seal_sync_reply(CENTRAL, key.device_id, SyncReply(bytes(32), 3, bytes(32))),  # central's, but not an ack
        tampered(seal_ack(CENTRAL, key.device_id, ack)),
    ]
    for payload in forgeries:
        await deliver(up, topics.ack(key.device_id), payload)
    assert outbox.stats().depth == 3
    assert up._board.ignored.forged == {"ack": len(forgeries), "challenge": 0, "sync": 0}
    await send_ack(up, ack)  # the genuine one
    assert outbox.stats().depth == 0
    await send_ack(up, ack)  # replayed
    assert up._board.ignored.replayed["ack"] == 1
    assert up._board.link.acked_records == 3


async def test_challenge_signed_only_when_sealed_by_central_with_this_gateways_pairing_code(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    up, link, clock = await connected(cfg, outbox, key)
    code = pairing_code(key.seed)
    exp = clock.wall_ms() + 60_000

    def challenge(code: str, sealer: DeviceKey = CENTRAL) -> bytes:
        ch = PairedChallenge.issue(code, bytes(range(32)) if sealer is CENTRAL else bytes(32), key.public_key, exp)
        return seal_challenge(sealer, key.device_id, ch)

    wrong = "ZZZZZZZZ" if code != "ZZZZZZZZ" else "00000000"
    await deliver(up, topics.challenge(key.device_id), challenge(code, DeviceKey.generate()))  # forged, right code
    await deliver(up, topics.challenge(key.device_id), challenge(wrong))  # central's, but a relayed registration
    assert link.on(topics.challenge_reply(key.device_id)) == []
    assert up._board.challenge_answered_ms is None
    await deliver(up, topics.challenge(key.device_id), challenge(code))
    await deliver(up, topics.challenge(key.device_id), challenge(code))  # replayed
    assert len(link.on(topics.challenge_reply(key.device_id))) == 1
    ig = up._board.ignored
    assert (ig.forged["challenge"], ig.unpaired, ig.replayed["challenge"]) == (1, 1, 1)
    snap = up._board.snapshot(0, outbox.stats(), [])
    assert snap["ignored_from_central"]["challenge"] == {"forged": 1, "replayed": 1, "unpaired": 1}


async def test_answered_challenge_nonces_are_bounded(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    up, link, clock = await connected(cfg, outbox, key)
    code = pairing_code(key.seed)
    for i in range(300):
        await send_challenge(up, PairedChallenge.issue(code, i.to_bytes(32, "big"), key.public_key,
                                                       clock.wall_ms() + 60_000))
    assert len(link.on(topics.challenge_reply(key.device_id))) == 300
    assert len(up._answered) == 256
    clock.t += 61  # all expired: forgotten at the next answer
    await send_challenge(up, PairedChallenge.issue(code, bytes([1]) * 32, key.public_key, clock.wall_ms() + 60_000))
    assert len(up._answered) == 1


async def test_forged_sync_reply_with_the_outstanding_nonce_is_not_applied(cfg, fresh, key) -> None:  # type: ignore[no-untyped-def]
    up, _, _, req = await asking_to_sync(cfg, fresh, key)
    reply = SyncReply(req.nonce, 7, bytes([9]) * 32)
    await deliver(up, topics.sync_reply(key.device_id), reply.to_json())  # unsigned
    await deliver(up, topics.sync_reply(key.device_id), seal_sync_reply(DeviceKey.generate(), key.device_id, reply))
    assert fresh.needs_sync
    assert up._board.ignored.forged["sync"] == 2
    await send_sync(up, reply)
    assert not fresh.needs_sync
    await send_sync(up, reply)  # replayed
    assert up._board.ignored.replayed["sync"] == 1


async def test_acks_and_sends_touch_sqlite_only_on_the_outbox_thread(cfg, outbox, key, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 10, D3: the uplink's SQLite work (connect, fetch, apply_ack) never runs on the event loop."""
    clock = Clock()
    up, link = make(cfg, outbox, key, clock)
    fill(outbox, key, 3)
    applied_on: list[str] = []
    real_apply_ack = outbox.apply_ack

    def apply_ack(*args: object, **kwargs: object) -> object:
        applied_on.append(threading.current_thread().name)
        return real_apply_ack(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(outbox, "apply_ack", apply_ack)
    sql_on: set[str] = set()
    outbox._conn.set_trace_callback(lambda _sql: sql_on.add(threading.current_thread().name))
    try:
        up.on_connected()
        await up.drain()
        clock.t += 10  # past the backlog start delay
        await up.pump()
        assert batches(link, key) == [[1, 2, 3]]
        await ack_all(up, [1, 2, 3])
    finally:
        outbox._conn.set_trace_callback(None)
    assert outbox.stats().depth == 0
    assert len(applied_on) == 1
    assert applied_on[0].startswith("outbox")
    assert sql_on
    assert threading.current_thread().name not in sql_on
    assert all(name.startswith("outbox") for name in sql_on)
