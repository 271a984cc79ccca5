"""Fixtures of the P1 tests: the shipped meter maps and a manual clock at noon."""

from __future__ import annotations

import pytest

from edge.meters.maps import MeterMap, default_maps_dir, load_maps
from edge.simulator.profiles import ManualClock
from tests.edge.p1.p1_helpers import NOON


@pytest.fixture(scope="session")
def maps() -> dict[str, MeterMap]:
    return load_maps(default_maps_dir())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOON)
