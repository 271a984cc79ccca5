"""The meter-claim rules on the in-memory store (no PostgreSQL): outcomes, the per-user and per-serial hourly
limits with their wait, the audit trail, release. The same service runs on PostgreSQL in test_meters.py."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest

from central.config import IdentityConfig
from central.identity.claims import MeterService
from central.identity.errors import (
    ClaimRateLimitedError,
    InvalidMeterKeyError,
    MeterClaimedError,
    MeterNotOwnedError,
    RateLimitedError,
)
from central.identity.hashing import hash_secret_sync
from central.identity.memory import MemoryMeterStore, MeterRow
from tests.central.clock import Clock

KEY = "key-of-S-1"
_KEY_HASH = hash_secret_sync(KEY, 4)  # cheap: the check uses the hash's own cost


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryMeterStore:
    s = MemoryMeterStore(clock)
    s.add_meter(MeterRow("S-1", _KEY_HASH))
    s.add_meter(MeterRow("S-2", _KEY_HASH))
    return s


def service(store: MemoryMeterStore, clock: Clock, **config: int) -> MeterService:
    return MeterService(store, IdentityConfig(**config), clock)  # type: ignore[arg-type]


async def claim(svc: MeterService, user: UUID, serial: str = "S-1", key: str = KEY) -> str:
    """The outcome the audit trail records for one attempt."""
    try:
        await svc.claim(user, serial, key, address="10.0.0.1", user_agent="ua")
    except (InvalidMeterKeyError, MeterClaimedError, RateLimitedError) as exc:
        return type(exc).__name__
    return "ok"


async def test_outcomes_and_audit(store: MemoryMeterStore, clock: Clock) -> None:
    svc = service(store, clock)
    alice, bob = uuid4(), uuid4()
    assert await claim(svc, alice, key="wrong") == "InvalidMeterKeyError"
    assert await claim(svc, alice, serial="NOPE") == "InvalidMeterKeyError"  # unknown serial looks the same
    meter = await svc.claim(alice, "S-1", KEY, address="10.0.0.1", user_agent="ua")
    assert (meter.serial, meter.claimed_at) == ("S-1", clock.now)
    assert await claim(svc, alice) == "ok"  # already owned: idempotent
    assert await claim(svc, bob) == "MeterClaimedError"  # revealed only to a caller with the key
    assert [m.serial for m in await svc.list_owned(alice)] == ["S-1"]
    audit = await svc.attempts(None, 100)
    assert [a.outcome for a in audit] == ["claimed_by_other", "already_owned", "claimed", "wrong_key", "wrong_key"]
    assert [a.outcome for a in await svc.attempts(bob, 100)] == ["claimed_by_other"]
    assert store.ownerships[0].owner_id == alice


async def test_five_attempts_per_user_per_hour_then_wait(store: MemoryMeterStore, clock: Clock) -> None:
    svc = service(store, clock)
    user = uuid4()
    for _ in range(5):
        assert await claim(svc, user, key="wrong") == "InvalidMeterKeyError"
        clock.advance(minutes=1)
    with pytest.raises(ClaimRateLimitedError) as refused:
        await svc.claim(user, "S-1", KEY, address="a", user_agent="u")
    # the oldest counted attempt was 5 minutes ago: it leaves the hour in 55 minutes
    assert refused.value.retry_after_s == 55 * 60
    assert "try again later" in str(refused.value)
    assert KEY not in str(refused.value)
    # rate-limited attempts are recorded but do not count towards the limit
    assert [a.outcome for a in await svc.attempts(user, 1)] == ["rate_limited"]
    clock.advance(minutes=55, seconds=1)
    assert await claim(svc, user) == "ok"


async def test_the_limit_is_configured_and_per_user(store: MemoryMeterStore, clock: Clock) -> None:
    svc = service(store, clock, claim_attempts_per_hour=2)
    alice, bob = uuid4(), uuid4()
    for _ in range(2):
        await claim(svc, alice, key="wrong")
    assert await claim(svc, alice) == "ClaimRateLimitedError"
    assert await claim(svc, bob, serial="S-2") == "ok"


async def test_wrong_keys_per_serial_over_all_accounts(store: MemoryMeterStore, clock: Clock) -> None:
    svc = service(store, clock, claim_failures_per_serial_per_hour=3)
    for _ in range(3):
        assert await claim(svc, uuid4(), key="wrong") == "InvalidMeterKeyError"
    assert await claim(svc, uuid4()) == "ClaimRateLimitedError"  # even with the right key
    assert await claim(svc, uuid4(), serial="S-2") == "ok"  # other serials are not affected


async def test_release(store: MemoryMeterStore, clock: Clock) -> None:
    svc = service(store, clock)
    alice, bob = uuid4(), uuid4()
    with pytest.raises(MeterNotOwnedError):
        await svc.release(alice, "S-1")
    await svc.claim(alice, "S-1", KEY, address="a", user_agent="u")
    with pytest.raises(MeterNotOwnedError):
        await svc.release(bob, "S-1")
    clock.advance(minutes=10)
    await svc.release(alice, "S-1")
    assert await svc.list_owned(alice) == []
    assert store.ownerships[0].released_at == clock.now
    clock.advance(minutes=1)
    assert (await svc.claim(bob, "S-1", KEY, address="a", user_agent="u")).claimed_at == clock.now
