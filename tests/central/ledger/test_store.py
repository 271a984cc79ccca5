"""The ledger log's encoding and crash behaviour (Hypothesis): account images round-trip; a log cut at any byte
replays exactly the frames that were complete, and appends continue cleanly after it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from solders.account import Account
from solders.pubkey import Pubkey

from central.ledger.store import LogFile, decode_accounts, encode_accounts

pubkeys = st.binary(min_size=32, max_size=32).map(Pubkey.from_bytes)
accounts = st.builds(Account, st.integers(0, 2**64 - 1), st.binary(max_size=300), pubkeys, st.booleans(),
                     st.integers(0, 2**64 - 1))


@given(st.lists(st.tuples(pubkeys, st.one_of(st.none(), accounts)), max_size=8))
def test_account_images_round_trip(images: list[tuple[Pubkey, Account | None]]) -> None:
    decoded, end = decode_accounts(encode_accounts(images), 0)
    assert end == len(encode_accounts(images))
    assert [a for a, _ in decoded] == [a for a, _ in images]
    for (_, got), (_, want) in zip(decoded, images, strict=True):
        if want is None:
            assert (got.lamports, got.data) == (0, b"")
        else:
            assert got == want


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=12), st.data())
def test_a_log_cut_anywhere_replays_the_complete_frames(bodies: list[bytes], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "ledger.log"
        log = LogFile(path, fsync_interval=0)
        offsets = [log.append(b) for b in bodies]
        size = log.size
        log.close()
        cut = data.draw(st.integers(0, size))
        with path.open("r+b") as f:
            f.truncate(cut)
        complete = [b for b, off in zip(bodies, [*offsets[1:], size], strict=True) if off <= cut]
        again = LogFile(path, fsync_interval=0)
        try:
            assert [body for _, body in again.replay()] == complete
            again.append(b"after")
            assert [body for _, body in again.replay()] == [*complete, b"after"]
        finally:
            again.close()


def test_a_corrupted_frame_ends_the_replay(tmp_path: Path) -> None:
    path = tmp_path / "ledger.log"
    log = LogFile(path, fsync_interval=0)
    log.append(b"one")
    second = log.append(b"two")
    log.append(b"three")
    log.close()
    raw = bytearray(path.read_bytes())
    raw[second + 8] ^= 0xFF  # flip a byte of the second frame's body: its CRC no longer matches
    path.write_bytes(bytes(raw))
    again = LogFile(path, fsync_interval=0)
    try:
        assert [b for _, b in again.replay()] == [b"one"]
    finally:
        again.close()
