"""The wallet subsystem's exceptions: linking, balances and the faucet (translated to HTTP statuses at the route
boundary, ``central/wallets/routes.py``)."""

from central.errors import CentralError


class WalletError(CentralError):
    """Base of the wallet subsystem's errors."""


class BadWalletAddressError(WalletError):
    """Not a base58 Ed25519 public key."""


class LinkRejectedError(WalletError):
    """The signed link message is malformed, for another user, or its signature does not verify."""


class LinkExpiredError(WalletError):
    """The link message's expiry has passed; ask for a new one."""


class NonceRejectedError(WalletError):
    """The link nonce is unknown, already used, expired, or was issued for another user or wallet."""


class WalletTakenError(WalletError):
    """The wallet is already linked to another account."""


class TooManyLinkRequestsError(WalletError):
    """Too many unexpired link messages outstanding for one user; wait for them to expire."""


class FaucetUnavailableError(WalletError):
    """The quote faucet exists only on the embedded (development) ledger."""


class ChainUnavailableError(WalletError):
    """The ledger could not be reached or refused the request."""
