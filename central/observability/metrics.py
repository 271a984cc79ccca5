"""Prometheus metrics owned by the core (HTTP, pool, broker). Subsystems define their own module-level metrics on
the default registry with the ``gtx_`` prefix; ``/metrics`` exposes them all.

With ``serve --workers N`` (N > 1) the workers run in prometheus_client's multiprocess mode (the parent sets
``PROMETHEUS_MULTIPROC_DIR`` before starting them) and ``/metrics`` — whichever worker answers — aggregates all of
them: counters and histograms are summed, the gauges below are summed over live workers. Gauges must therefore be
``.set()`` (``set_function`` is per process) and say how they combine (``multiprocess_mode``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

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
POOL_SIZE = Gauge("gtx_db_pool_size", "Open connections in the asyncpg pools (all workers).",
                  multiprocess_mode="livesum")
POOL_IDLE = Gauge("gtx_db_pool_idle", "Idle connections in the asyncpg pools.", multiprocess_mode="livesum")
POOL_IN_USE = Gauge("gtx_db_pool_in_use", "Connections checked out of the asyncpg pools.",
                    multiprocess_mode="livesum")
POOL_MAX = Gauge("gtx_db_pool_max", "Maximum size of the asyncpg pools.", multiprocess_mode="livesum")
MQTT_CONNECTED = Gauge("gtx_mqtt_connected", "Worker processes whose MQTT client is connected.",
                       multiprocess_mode="livesum")
WORKERS = Gauge("gtx_http_workers", "Worker processes serving HTTP.", multiprocess_mode="livesum")


def exposition(multiproc_dir: str) -> bytes:
    """The text exposition: this process's registry, or every worker's when ``multiproc_dir`` is set."""
    if not multiproc_dir:
        return bytes(generate_latest())
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=multiproc_dir)  # type: ignore[no-untyped-call]
    return bytes(generate_latest(registry))
