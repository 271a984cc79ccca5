"""Chain outbox exceptions."""

from __future__ import annotations

from central.errors import CentralError


class OutboxError(CentralError):
    """The outbox was misused (a builder returned units for intents it was not given) or could not finish."""
