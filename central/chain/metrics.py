"""Prometheus metrics of the chain outbox (default registry, served by central's ``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

INTENTS = Counter("gtx_chain_intents_total", "Intents reaching an outcome, by outbox kind and outcome "
                  "(submitted, confirmed, failed, retried, expired).", ("kind", "outcome"))
TRANSACTIONS = Counter("gtx_chain_transactions_sent_total", "Transactions recorded and sent by the outbox.",
                       ("kind",))
OPEN_SUBMISSIONS = Gauge("gtx_chain_open_submissions", "Submitted transactions not yet confirmed, failed or expired "
                         "at the last reconcile.", ("kind",))
