"""Solana ledger access for central: the ``Ledger`` port, its embedded (LiteSVM) and rpc adapters, transaction
building and packing shared by both, and platform setup (``init_ledger``)."""
