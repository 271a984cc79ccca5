"""Structured logging and Prometheus metrics for central."""
