"""Simulated meters for the Modbus integration tests (real pymodbus server, TCP and RTU on a pty pair)."""

from __future__ import annotations

import pytest

from edge.meters.maps import MeterMap
from edge.simulator.modbus import SimulatedModbusMeter
from edge.simulator.profiles import Kind, ManualClock, Profile, SimulatedRegisters
from tests.edge.meters.meter_helpers import MODELS


@pytest.fixture
def sims(maps: dict[str, MeterMap], clock: ManualClock) -> list[SimulatedModbusMeter]:
    """Units 1..4: one of each shipped Modbus model; odd units prosumers, even units consumers."""
    return [
        SimulatedModbusMeter(
            unit,
            maps[model],
            SimulatedRegisters(
                Profile(Kind.PROSUMER if unit % 2 else Kind.CONSUMER, seed=unit),
                clock.now - 86400,
                import_wh=1_000_000 * unit,
                export_wh=10_000 * unit,
            ),
            clock,
        )
        for unit, model in enumerate(MODELS, start=1)
    ]
