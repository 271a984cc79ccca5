"""Verified ingest of signed meter readings: pure core (``core``), port + in-memory fake (``port``, ``memory``),
service (``service``), and adapters (``postgres``, ``mqtt``)."""
