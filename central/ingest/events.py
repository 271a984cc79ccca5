"""What ingest announces to the rest of central, so that readers (``central.readings.live``) need not import its
PostgreSQL adapter."""

from __future__ import annotations

#: LISTEN/NOTIFY channel announcing newly stored readings: ``{"device", "first", "last", "meters": [uuid...]}``.
#: Sent by ``central.ingest.postgres`` in the transaction that stores them.
NOTIFY_CHANNEL = "gtx_readings"
