"""The market's exceptions (escrow, orders, epochs, clearing, settlement)."""

from central.errors import CentralError


class MarketError(CentralError):
    """Base of every error the market raises on purpose."""


class InvalidOrderError(MarketError):
    """An order (or an order book handed to the clearing engine) breaks a rule; the message says which."""


class EpochClosedError(MarketError):
    """The epoch an order or cancellation targets no longer accepts changes."""


class InsufficientEscrowError(MarketError):
    """The user's available escrow does not cover the lock or withdrawal."""


class NotFoundError(MarketError):
    """No such order/transfer for this user."""


class ConflictError(MarketError):
    """The request conflicts with the current state (e.g. cancelling a filled order, no linked wallet)."""


class TooManyWaitingError(MarketError):
    """Too many deposits built for this user wait for the wallet's signature (each is a stored row)."""


class InvalidTransactionError(MarketError):
    """A submitted transaction is malformed, not the one built, or not signed by the wallet."""
