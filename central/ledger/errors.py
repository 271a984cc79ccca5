"""Ledger exceptions. Adapters translate LiteSVM results, solana-py/httpx errors and JSON-RPC errors into these."""

from __future__ import annotations

from central.errors import CentralError


class LedgerError(CentralError):
    """Base of every ledger failure."""


class LedgerUnavailableError(LedgerError):
    """The ledger could not be reached or answered garbage (transient: retry later)."""


class TransactionTooLargeError(LedgerError):
    """A transaction (or one packing unit on its own) exceeds the 1232-byte packet limit."""


class TransactionRejectedError(LedgerError):
    """The ledger refused a transaction before executing it (bad signature, unknown or expired blockhash,
    duplicate, malformed). Nothing was applied and no fee was charged."""


class AlreadyProcessedError(TransactionRejectedError):
    """The ledger already holds a transaction with this signature (sent before, by us or a retry): this send added
    nothing, but the transaction itself was executed, and its signature status says how."""


class BlockhashNotFoundError(TransactionRejectedError):
    """The transaction's recent blockhash is unknown or expired."""


class TransactionFailedError(LedgerError):
    """Preflight simulation failed: the transaction would fail, so it was not sent. ``err`` is the Solana
    transaction error (JSON form) and ``logs`` the program logs."""

    def __init__(self, message: str, *, err: object = None, logs: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.err = err
        self.logs = logs


class AirdropUnavailableError(LedgerError):
    """Airdrops are a development facility; this ledger does not offer them (or the faucet is empty)."""


class LedgerStoreError(LedgerError):
    """The embedded ledger's on-disk store is unusable (unwritable directory, corrupt snapshot)."""


class KeyStoreError(LedgerError):
    """The platform's key store (key files or a PKCS#11 token) cannot give a key: missing, unsafe, the token cannot
    be opened or refused an operation. Messages name files, tokens and labels, never a secret or a PIN."""


class KeyMissingError(KeyStoreError):
    """The key store has no key for this role (``ledger init`` creates them, ``keys init`` on a token)."""


class KeyFileError(KeyStoreError):
    """A platform keypair file is missing, unreadable, has unsafe permissions or is malformed. The message names the
    file, never its content."""
