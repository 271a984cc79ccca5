"""Constants and helpers shared by the meter tests (unique module name: test dirs have no __init__.py)."""

from __future__ import annotations

NOON = 1_700_006_400 + 12 * 3600  # 2023-11-15 12:00 UTC
MODELS = ["eastron-sdm630", "carlo-gavazzi-em24", "sunspec-203", "eastron-sdm120"]
