"""Errors of the energy accounting core."""

from central.errors import CentralError


class AccountingError(CentralError):
    """Base of the accounting subsystem's errors."""


class WindowConfigError(AccountingError):
    """A accounting window length that cannot be aligned to UTC days."""
