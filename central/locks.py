"""Every PostgreSQL advisory-lock key central takes, in one place.

PostgreSQL has one advisory-lock space per database, shared by every process and every subsystem: two subsystems that
picked the same number would silently exclude each other. So no module invents a key; each takes its key from here,
and ``tests/central/test_locks.py`` checks that all of them are distinct.

Three kinds:

- :class:`LockKey`: one ``bigint`` key (``pg_advisory_lock(key)`` and friends). The values spell a short ASCII tag.
- :class:`LockSpace`: the first ``int4`` of the two-key form ``pg_advisory_lock(space, n)`` (a key space apart from
  the ``bigint`` keys), for a family of locks (one per device, one per epoch).
- :class:`LockText`: a text prefix hashed by PostgreSQL (``hashtextextended(prefix || id, 0)``) for a family of
  ``bigint`` keys computed in SQL (one per user, one per meter serial).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LockKey:
    """A single ``bigint`` advisory-lock key."""

    name: str
    key: int


@dataclass(frozen=True)
class LockSpace:
    """The first (``int4``) key of a family of two-key advisory locks."""

    name: str
    space: int


@dataclass(frozen=True)
class LockText:
    """A text prefix PostgreSQL hashes into a family of ``bigint`` keys (``hashtextextended``)."""

    name: str
    prefix: str


#: The migration run ("gtx-mig"): any number of processes may migrate at once, one applies.
MIGRATIONS = LockKey("migrations", 0x6774782D6D6967)
#: The single accountant ("GTXACCT"): one process settles windows at a time.
ACCOUNTANT = LockKey("accountant", 0x47_54_58_41_43_43_54)
#: The identity challenge sweeper ("gtx-swp"): one process sweeps per round.
CHALLENGE_SWEEP = LockKey("challenge-sweep", 0x6774782D737770)
#: The certificate expiry sweeper ("gtx-rec"): one process sweeps per round.
CERTIFICATE_SWEEP = LockKey("certificate-sweep", 0x6774782D726563)
#: The market clearer ("gtx-clr"): the whole clearing transaction holds it.
MARKET_CLEARING = LockKey("market-clearing", 0x6774782D636C72)
#: Growing the market's address lookup tables ("gtx-alt").
MARKET_TABLES = LockKey("market-tables", 0x6774782D616C74)
#: The standing-order placer ("gtx-sto"): one leader places the epoch's standing orders.
MARKET_STANDING = LockKey("market-standing", 0x6774782D73746F)
#: The reading partition and archive duty ("gtx-arc"): one process creates ahead and archives per round.
READING_ARCHIVE = LockKey("reading-archive", 0x6774782D617263)
#: Any one structural change of the reading partitions ("gtx-arw"): packing (REINDEX CONCURRENTLY) and archiving
#: (export, then DROP) exclude each other across processes, whoever runs them (the job's leader, the ``archive run``
#: command, a test); REINDEX CONCURRENTLY waits for older snapshots while holding the partition, so the two deadlock.
READING_PARTITIONS = LockKey("reading-partitions", 0x6774782D617277)

#: Per device, while a batch of its readings is judged and stored ("GTXR").
INGEST_DEVICE = LockSpace("ingest-device", 0x4754_5852)
#: Per market epoch: placing/cancelling shares it, closing takes it exclusively ("gtxE").
MARKET_EPOCH = LockSpace("market-epoch", 0x67747845)

#: Per user: serialises a user's meter-claim attempts.
METER_CLAIM_USER = LockText("meter-claim-user", "meter-claim:")
#: Per meter serial: serialises wrong-key counting across accounts.
METER_CLAIM_SERIAL = LockText("meter-claim-serial", "meter-claim-serial:")

KEYS: tuple[LockKey, ...] = (
    MIGRATIONS, ACCOUNTANT, CHALLENGE_SWEEP, CERTIFICATE_SWEEP, MARKET_CLEARING, MARKET_TABLES, READING_ARCHIVE,
    MARKET_STANDING, READING_PARTITIONS,
)
SPACES: tuple[LockSpace, ...] = (INGEST_DEVICE, MARKET_EPOCH)
TEXTS: tuple[LockText, ...] = (METER_CLAIM_USER, METER_CLAIM_SERIAL)
