"""``[zones]`` (central/market/config.py): parsed once into per-hour zone trees, time of use, meters, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from central.errors import ConfigError
from central.market.config import ZonesConfig
from central.market.zones import ROOT, Boundary
from gtxconfig import build_table

OPERATOR = "6aiCznzG1uio372aZuQsqSLSpGiut3WtcBqJi4Pf7rXH"


def zones(data: dict[str, Any]) -> ZonesConfig:
    return build_table(ZonesConfig, data, name="zones", error_type=ConfigError)


TREE: dict[str, Any] = {
    "grid_operator": OPERATOR,
    "default_zone": "north",
    "zone": [
        {"name": "grid", "retail": 300, "feed_in": 80},
        {"name": "north", "parent": "grid", "fee_per_kwh": 20, "loss_bps": 100, "retail": 300, "feed_in": 80,
         "tou": [{"hours": [17, 18, 19], "fee_per_kwh": 40, "retail": 420}]},
        {"name": "a", "parent": "north", "fee_bps": 50, "meters": ["SN-1", "SN-2"]},
    ],
}


def test_tree_time_of_use_and_meters() -> None:
    z = zones(TREE)
    assert z.names == ("grid", "north", "a")
    day = z.params_at(datetime(2026, 12, 7, 9, 15, tzinfo=UTC))
    peak = z.params_at(datetime(2026, 12, 7, 18, 0, tzinfo=UTC))
    assert [x.parent for x in day.zones] == [ROOT, 0, 1]
    assert day.zones[1].boundary == Boundary(20, 0, 100)
    assert (day.zones[1].retail, peak.zones[1].retail) == (300, 420)
    assert peak.zones[1].boundary == Boundary(40, 0, 100)
    assert peak.zones[2].boundary == Boundary(0, 50, 0)
    assert day.path_fee == (0, 20, 20)
    assert (z.zone_of_meter("SN-2"), z.zone_of_meter("unknown")) == (2, 1)
    assert zones({}).names == ("grid",)
    assert zones({}).zone_of_meter("x") == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"grid_operator": ""}, "zones.grid_operator: is required"),
        ({"default_zone": "south"}, "zones.default_zone: no zone 'south'"),
        ({"zone": [{"name": "x", "parent": "y"}]}, "must be the root"),
        ({"zone": [{"name": "grid"}, {"name": "b", "parent": "c"}, {"name": "c", "parent": "grid"}]},
         "parent 'c' must be listed before it"),
        ({"zone": [{"name": "grid"}, {"name": "grid", "parent": "grid"}]}, "listed twice"),
        ({"zone": [{"name": "grid", "meters": ["m"]}, {"name": "b", "parent": "grid", "meters": ["m"]}]},
         "meter 'm' is in two zones"),
        ({"zone": [{"name": "grid"}, {"name": "b", "parent": "grid", "loss_bps": 3000},
                   {"name": "c", "parent": "b", "loss_bps": 3000}]}, "path to the root exceeds a limit"),
        ({"zone": [{"name": "grid"}, {"name": "b", "parent": "grid", "tou": [{"hours": [24]}]}]}, "hours"),
        ({"zone": [{"name": "grid", "fee_per_kwh": 1}]}, "the root zone has no boundary"),
        ({"utility_user": "not-a-uuid"}, "zones.utility_user: must be a user id"),
        ({"grid_operator": "not-a-key"}, "zones.grid_operator: must be a wallet address"),
    ],
)
def test_invalid_trees_are_refused_with_the_key(change: dict[str, Any], message: str) -> None:
    data = {**TREE, "default_zone": "", **change}
    with pytest.raises(ConfigError, match=message):
        zones(data)
