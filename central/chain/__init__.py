"""Durable chain outbox: exactly-once chain changes (minting, settlement) recorded in PostgreSQL."""
