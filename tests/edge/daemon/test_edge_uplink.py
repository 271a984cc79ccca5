"""The uplink against the in-memory link, with a real outbox and real protocol messages."""

from __future__ import annotations

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
from protocol.challenge import Challenge, ChallengeReply, verify_challenge
from protocol.errors import Reason
from protocol.keys import DeviceKey
from protocol.sync import SyncReply, SyncRequest


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
        key=key, outbox=outbox, signer=ProtocolSigner(key), link=link, mqtt=mqtt, outbox_cfg=cfg.outbox,
        board=board, version="t", monotonic=clock.mono, wall_ms=clock.wall_ms,
    )
    return up, link


def fill(outbox: Outbox, key: DeviceKey, n: int) -> None:
    s = ProtocolSigner(key)
    for i in range(n):
        outbox.append("M1", MeterSample(1_700_000_000_000 + i, i, 0, None), 0, s)


def batches(link: FakeLink, key: DeviceKey) -> list[list[int]]:
    return [[r.seq for r in decode_batch(p)] for p in link.on(topics.readings(key.device_id))]


def ack_all(up: Uplink, seqs: list[int]) -> None:
    up.on_message(topics.ack(up.device_id), Ack(seqs[0], seqs[-1], len(seqs), 0).to_json())


def test_connect_publishes_retained_online_status_and_backlog_is_rate_limited(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    fill(outbox, key, 500)
    up, link = make(cfg, outbox, key, clock, backlog_rate=100, batch_size=50, inflight_batches=4)
    up.on_connected()
    (status,) = [(p, r) for t, p, _, r in link.published if t == topics.status(key.device_id)]
    assert b'"online":true' in status[0]
    assert status[1] is True
    up.pump()
    assert batches(link, key) == []  # no tokens yet at t=0
    clock.t += 0.5
    up.pump()
    assert batches(link, key) == [list(range(1, 51))]  # 50 tokens
    for _ in range(5):
        clock.t += 0.5
        up.pump()
    sent = batches(link, key)
    assert len(sent) == 3  # window 4, one slot kept free for live records
    assert [b[0] for b in sent] == [1, 51, 101]  # oldest first
    ack_all(up, sent[0])
    assert outbox.stats().depth == 450
    # a fresh reading goes out at once, through the slot reserved for live data, even with the backlog pending
    fill(outbox, key, 1)
    clock.t += 0.001
    up.pump()
    assert batches(link, key)[-1] == [501]


def test_every_batch_verifies_and_acked_records_are_deleted(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    up, link = make(cfg, outbox, key, clock)
    up.on_connected()
    for _ in range(7):
        fill(outbox, key, 3)
        up.pump()
        for seqs in batches(link, key)[-1:]:
            ack_all(up, seqs)
    assert outbox.stats().depth == 0
    assert [s for b in batches(link, key) for s in b] == list(range(1, 22))
    assert up._board.link.acked_records == 21


def test_missing_ack_resends_and_reconnect_resends_inflight(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    up, link = make(cfg, outbox, key, clock, ack_timeout_s=5.0)
    up.on_connected()
    fill(outbox, key, 3)
    up.pump()
    assert batches(link, key) == [[1, 2, 3]]
    clock.t += 6
    up.pump()
    assert batches(link, key) == [[1, 2, 3], [1, 2, 3]]
    up.on_disconnected()
    link.up = False
    fill(outbox, key, 2)
    up.pump()
    link.up = True
    up.on_connected()
    clock.t += 1
    up.pump()
    assert batches(link, key)[2:] == [[1, 2, 3, 4, 5]]  # all of it is backlog now, oldest first


def test_rejections_go_to_dead_letters_or_retry(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    up, link = make(cfg, outbox, key, clock)
    up.on_connected()
    fill(outbox, key, 3)
    up.pump()
    up.on_message(
        topics.ack(key.device_id),
        Ack(1, 3, 1, 0, ((2, Reason.BAD_SIGNATURE), (3, Reason.DEVICE_NOT_VERIFIED))).to_json(),
    )
    st = outbox.stats()
    assert (st.depth, st.dead_letters) == (1, 1)
    clock.t += cfg.outbox.retry_after_s + 1
    up.pump()
    assert batches(link, key)[-1] == [3]


def test_unknown_or_partial_ack_deletes_nothing(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    up, _ = make(cfg, outbox, key, clock)
    up.on_connected()
    fill(outbox, key, 4)
    up.on_message(topics.ack(key.device_id), Ack(1, 4, 2, 0).to_json())  # not a batch we sent, counts don't cover it
    up.on_message(topics.ack(key.device_id), b'{"garbage":')
    assert outbox.stats().depth == 4


def test_answers_challenge_and_becomes_verified_after_accepted_readings(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    up, link = make(cfg, outbox, key, clock)
    up.on_connected()
    nonce = bytes(range(32))
    expired = Challenge(nonce, clock.wall_ms() - 1)
    up.on_message(topics.challenge(key.device_id), expired.to_json())
    assert link.on(topics.challenge_reply(key.device_id)) == []
    ch = Challenge(nonce, clock.wall_ms() + 60_000)
    up.on_message(topics.challenge(key.device_id), ch.to_json())
    (raw,) = link.on(topics.challenge_reply(key.device_id))
    reply = ChallengeReply.from_json(raw)
    verify_challenge(key.public_key, nonce, ch.expires_ms, reply.signature)
    assert not up._board.verified
    fill(outbox, key, 1)
    up.pump()
    ack_all(up, [1])
    assert up._board.verified
    assert outbox.get_meta("accepted_after_challenge_ms") is not None


def test_lost_database_resyncs_with_central_without_operator(tmp_path: Path, cfg, key) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    ob = Outbox.open(tmp_path / "fresh.sqlite", new_device=False)
    try:
        fill(ob, key, 2)  # waits unsigned
        up, link = make(cfg, ob, key, clock)
        up.on_connected()
        up.pump()
        (req_raw,) = link.on(topics.sync(key.device_id))
        req = SyncRequest.from_json(req_raw)
        up.on_message(topics.sync_reply(key.device_id), SyncReply(bytes(32), 7, bytes(32)).to_json())  # wrong nonce
        assert ob.needs_sync
        head = bytes([9]) * 32
        up.on_message(topics.sync_reply(key.device_id), SyncReply(req.nonce, 7, head).to_json())
        assert not ob.needs_sync
        clock.t += 1
        up.pump()
        recs = [r for p in link.on(topics.readings(key.device_id)) for r in decode_batch(p)]
        assert [r.seq for r in recs] == [8, 9]
        assert recs[0].prev_hash == head
    finally:
        ob.close()


@pytest.mark.parametrize("payload", [b"", b"{}", b"\xff", b'{"v":2,"nonce":"00"}'])
def test_malformed_messages_are_ignored(cfg, outbox, key, payload: bytes) -> None:  # type: ignore[no-untyped-def]
    up, link = make(cfg, outbox, key, Clock())
    up.on_connected()
    for kind in (topics.ack, topics.challenge, topics.sync_reply):
        up.on_message(kind(key.device_id), payload)
    assert link.on(topics.challenge_reply(key.device_id)) == []


def test_forged_ack_with_huge_range_and_matching_counts_deletes_nothing(cfg, outbox, key) -> None:  # type: ignore[no-untyped-def]
    """Issue 10, D3: counts in an ack are never trusted; only the batch in flight is acked."""
    clock = Clock()
    up, _ = make(cfg, outbox, key, clock)
    up.on_connected()
    fill(outbox, key, 4)
    up.on_message(topics.ack(key.device_id), Ack(1, 4, 4, 0).to_json())  # counts cover it, but it was never sent
    assert outbox.stats().depth == 4
    up.on_message(topics.ack(key.device_id), Ack(1, 1_000_000_000, 1_000_000_000, 0).to_json())
    assert outbox.stats().depth == 4
