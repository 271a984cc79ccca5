"""The market's exceptions (escrow, orders, epochs, clearing, settlement)."""

from central.errors import CentralError


class MarketError(CentralError):
    """Base of every error the market raises on purpose."""


class InvalidOrderError(MarketError):
    """An order (or an order book handed to the clearing engine) breaks a rule; the message says which."""
