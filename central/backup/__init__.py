"""Backups that restore: a consistent snapshot of central's state — the PostgreSQL database, the embedded ledger's
log and faucet key, the platform key files — with a manifest of checksums (``gridtokenx-central backup`` /
``restore``; docs/operations.md, "Backup and restore")."""
