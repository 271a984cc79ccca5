"""Wallets: linking a user's Solana wallet by signature, and reading its on-chain balances."""
