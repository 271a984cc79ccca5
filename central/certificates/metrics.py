"""Prometheus metrics of the certificates subsystem (default registry, ``gtx_`` prefix; served on ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter

ISSUED = Counter("gtx_certificates_issued_total", "Certificates issued (mint sealed on chain).")
ISSUED_WH = Counter("gtx_certificates_issued_wh_total", "Energy certified, in Wh.")
REFUSED = Counter("gtx_certificates_issue_refused_total", "Issue requests refused, by reason.", ("reason",))
TRANSFERRED_WH = Counter("gtx_certificates_transferred_wh_total", "Certificate energy transferred, in Wh.")
RETIRED_WH = Counter("gtx_certificates_retired_wh_total", "Certificate energy retired (burned), in Wh.")
REVOKED = Counter("gtx_certificates_revoked_total", "Certificates revoked.")
EXPIRED = Counter("gtx_certificates_expired_total", "Certificates frozen by the expiry sweep.")
