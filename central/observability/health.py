"""Gauges of what the database knows about the platform's health, refreshed by the ``health-gauges`` job: the edge
fleet (from the gateways' retained status messages, ``protocol/status.py``), the minting backlog and the chain
outbox's oldest open work. The alert rules (``firmware-config/prometheus/alerts.yml``) and the dashboards
(``firmware-config/grafana/``) read them.

Every central node computes them from the same database, so every node exports the same values; the rules
aggregate with ``max``. Only registered gateways count (a status from an unknown device id never reaches the table).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client import Gauge

#: A gateway republishes its status every 60 s while connected (protocol.status.STATUS_INTERVAL_S); one silent
#: for this long is counted as ``stale`` even if its last word was "online" (e.g. a broker that lost the will).
STALE_AFTER_S = 300

FLEET_GATEWAYS = Gauge(
    "gtx_fleet_gateways",
    "Registered, non-revoked gateways by state: online, offline, stale (online but silent > 5 min), never (no status "
    "yet).",
    ("state",),
    multiprocess_mode="livemax",
)
FLEET_OUTBOX_RECORDS = Gauge(
    "gtx_fleet_outbox_records", "Readings waiting in the gateways' outboxes for central's ack, summed over the fleet.",
    multiprocess_mode="livemax",
)
FLEET_OUTBOX_MAX = Gauge(
    "gtx_fleet_outbox_records_max", "The largest single gateway outbox (readings waiting for an ack).",
    multiprocess_mode="livemax",
)
FLEET_OUTBOX_OLDEST = Gauge(
    "gtx_fleet_outbox_oldest_seconds", "Age of the oldest reading any gateway still waits to have acknowledged.",
    multiprocess_mode="livemax",
)
FLEET_ALARMING = Gauge(
    "gtx_fleet_gateways_alarming", "Online gateways reporting at least one alarm.", multiprocess_mode="livemax",
)
FLEET_METERS_DOWN = Gauge(
    "gtx_fleet_meters_down", "Meters whose last read failed, summed over online gateways.", multiprocess_mode="livemax",
)
MINT_BACKLOG = Gauge(
    "gtx_mint_backlog_intents",
    "Mint intents not yet confirmed, by state: ready (claimable), accrued (owner has no wallet yet), submitted.",
    ("state",),
    multiprocess_mode="livemax",
)
MINT_LAG = Gauge(
    "gtx_mint_lag_seconds",
    "Age of the oldest mint intent that could be minted (ready or submitted; accrued ones wait for a wallet).",
    multiprocess_mode="livemax",
)
CHAIN_OLDEST_OPEN = Gauge(
    "gtx_chain_oldest_open_seconds", "Age of the oldest submitted, unresolved chain transaction, by outbox kind.",
    ("kind",), multiprocess_mode="livemax",
)
CHAIN_FAILED = Gauge(
    "gtx_chain_failed_intents", "Chain intents in state failed (need an operator: retry or cancel), by outbox kind.",
    ("kind",), multiprocess_mode="livemax",
)

_FLEET = """
SELECT count(*) FILTER (WHERE last_seen_at IS NULL) AS never,
       count(*) FILTER (WHERE last_seen_at IS NOT NULL AND NOT online) AS offline,
       count(*) FILTER (WHERE online AND last_seen_at < now() - make_interval(secs => $1)) AS stale,
       count(*) FILTER (WHERE online AND last_seen_at >= now() - make_interval(secs => $1)) AS online,
       coalesce(sum(outbox_depth), 0) AS outbox_sum,
       coalesce(max(outbox_depth), 0) AS outbox_max,
       coalesce(max(outbox_oldest_age_s), 0) AS outbox_oldest,
       count(*) FILTER (WHERE online AND cardinality(alarms) > 0) AS alarming,
       coalesce(sum(meters_down) FILTER (WHERE online), 0) AS meters_down
FROM devices WHERE status <> 'revoked'
"""

_MINTS = """
SELECT count(*) FILTER (WHERE state = 'pending' AND (not_before IS NULL OR not_before <= now())) AS ready,
       count(*) FILTER (WHERE state = 'pending' AND not_before > now()) AS accrued,
       count(*) FILTER (WHERE state = 'submitted') AS submitted,
       coalesce(extract(epoch FROM now() - min(created_at) FILTER (
           WHERE state = 'submitted' OR (state = 'pending' AND (not_before IS NULL OR not_before <= now())))), 0)
           AS lag_s
FROM chain_intent WHERE kind = $1 AND state IN ('pending', 'submitted')
"""

_CHAIN = """
SELECT k.kind,
       (SELECT coalesce(extract(epoch FROM now() - min(s.created_at)), 0) FROM chain_submission s
         WHERE s.kind = k.kind AND s.state = 'submitted') AS oldest_open_s,
       (SELECT count(*) FROM chain_intent i WHERE i.kind = k.kind AND i.state = 'failed') AS failed
FROM (SELECT DISTINCT kind FROM chain_intent) k
"""


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    fleet: dict[str, int]
    mints: dict[str, float]
    chain: dict[str, tuple[float, int]]


async def refresh(pool: Any, mint_kind: str) -> HealthSnapshot:
    """Read the health figures from the database and set the gauges; returns what it set. ``mint_kind`` is the
    chain outbox kind of energy mints."""
    async with pool.acquire() as conn:
        fleet = dict(await conn.fetchrow(_FLEET, STALE_AFTER_S))
        mints = dict(await conn.fetchrow(_MINTS, mint_kind))
        chain = {r["kind"]: (float(r["oldest_open_s"]), int(r["failed"])) for r in await conn.fetch(_CHAIN)}
    for state in ("online", "offline", "stale", "never"):
        FLEET_GATEWAYS.labels(state=state).set(fleet[state])
    FLEET_OUTBOX_RECORDS.set(fleet["outbox_sum"])
    FLEET_OUTBOX_MAX.set(fleet["outbox_max"])
    FLEET_OUTBOX_OLDEST.set(fleet["outbox_oldest"])
    FLEET_ALARMING.set(fleet["alarming"])
    FLEET_METERS_DOWN.set(fleet["meters_down"])
    for state in ("ready", "accrued", "submitted"):
        MINT_BACKLOG.labels(state=state).set(mints[state])
    MINT_LAG.set(float(mints["lag_s"]))
    for kind, (oldest, failed) in chain.items():
        CHAIN_OLDEST_OPEN.labels(kind=kind).set(oldest)
        CHAIN_FAILED.labels(kind=kind).set(failed)
    return HealthSnapshot(
        {k: int(v) for k, v in fleet.items()}, {k: float(v) for k, v in mints.items()}, chain
    )
