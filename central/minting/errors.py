"""Errors of the minting subsystem."""

from central.errors import CentralError


class MintingError(CentralError):
    """Base of the minting subsystem's errors."""


class IntentNotFoundError(MintingError):
    """No mint intent with that key."""


class IntentNotRetryableError(MintingError):
    """Only failed intents can be retried (a submitted one might still land)."""
