"""Readings for their owners: queries (``queries``), HTTP routes (``api``) and the live WebSocket (``live``)."""
