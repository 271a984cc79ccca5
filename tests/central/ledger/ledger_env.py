"""The ledger under test in the contract tests: the port, the embedded ledger behind it and which adapter it is."""

from __future__ import annotations

from dataclasses import dataclass

from central.ledger.embedded import EmbeddedLedger
from central.ledger.port import Ledger


@dataclass
class LedgerEnv:
    ledger: Ledger
    #: The embedded ledger behind it (to advance slots in tests).
    embedded: EmbeddedLedger
    kind: str
