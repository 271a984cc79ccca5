"""Fixtures shared by the edge meter tests (Modbus and DLMS): the shipped meter maps and a manual clock at noon."""

from __future__ import annotations

import pytest

from edge.meters.maps import MeterMap, default_maps_dir, load_maps
from edge.simulator.profiles import ManualClock
from tests.edge.meters.meter_helpers import NOON


@pytest.fixture(scope="session")
def maps() -> dict[str, MeterMap]:
    return load_maps(default_maps_dir())


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOON)
