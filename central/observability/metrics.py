"""Prometheus metrics owned by the core (HTTP, pool). Subsystems define their own module-level metrics on the
default registry with the ``gtx_`` prefix; ``/metrics`` exposes them all."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

HTTP_LATENCY = Histogram(
    "gtx_http_request_duration_seconds",
    "HTTP request latency by route template, method and status.",
    ("method", "route", "status"),
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
HTTP_ERRORS = Counter(
    "gtx_http_errors_total",
    "Error responses by route template and error code.",
    ("route", "code"),
)
POOL_SIZE = Gauge("gtx_db_pool_size", "Open connections in the asyncpg pool.")
POOL_IDLE = Gauge("gtx_db_pool_idle", "Idle connections in the asyncpg pool.")
POOL_IN_USE = Gauge("gtx_db_pool_in_use", "Connections checked out of the asyncpg pool.")
POOL_MAX = Gauge("gtx_db_pool_max", "Maximum size of the asyncpg pool.")
MQTT_CONNECTED = Gauge("gtx_mqtt_connected", "1 while the process's MQTT client is connected.")
