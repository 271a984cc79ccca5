"""The matching core's encodings: the burn memo round-trips, the claim verifies only as signed and only when its
totals add up (Hypothesis)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from central.market.matching import (
    HourRow,
    canonical,
    claim_body,
    memo_text,
    parse_memo,
    share_bp,
    statement,
    verify_claim,
)
from protocol.keys import DeviceKey

KEY = DeviceKey.from_seed(bytes(range(32)))
OTHER = DeviceKey.from_seed(bytes(32))
T0 = datetime(2026, 1, 1, tzinfo=UTC)

hours = st.lists(
    st.tuples(st.integers(0, 10**7), st.integers(0, 10**7), st.integers(0, 24 * 30)).map(
        lambda t: HourRow("m1", T0 + timedelta(hours=t[2]), max(t[0], t[1]), min(t[0], t[1]),
                          share_bp(min(t[0], t[1]), max(t[0], t[1])), ["sig"])
    ),
    max_size=20,
)


@given(serial=st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
       h=st.integers(0, 10**6), wh=st.integers(1, 10**12))
def test_memo_round_trips(serial: str, h: int, wh: int) -> None:
    rid, hour = uuid.uuid4(), T0 + timedelta(hours=h)
    fields = parse_memo(memo_text(rid, serial, hour, wh))
    assert fields is not None
    assert (fields["id"], fields["meter"], datetime.fromisoformat(fields["hour"]), int(fields["wh"])) == (
        str(rid), serial, hour, wh)
    assert parse_memo("hello") is None


@given(rows=hours, bump=st.integers(1, 1000))
def test_claim_verifies_only_as_signed(rows: list[HourRow], bump: int) -> None:
    s = statement(uuid.UUID(int=7), "2026-01", rows)
    assert s.matched_wh <= s.import_wh
    body = claim_body(s, T0)
    sig = KEY.sign(canonical(body))
    assert verify_claim(KEY.public_key, body, sig)
    assert not verify_claim(OTHER.public_key, body, sig)
    tampered = {**body, "statement": {**body["statement"], "matched_wh": s.matched_wh + bump}}
    assert not verify_claim(KEY.public_key, tampered, sig)
    # re-signed but inconsistent totals: still not a valid claim
    assert not verify_claim(KEY.public_key, tampered, KEY.sign(canonical(tampered)))
