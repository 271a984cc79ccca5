"""The meter maps ship with an installed package, not only with a source checkout.

``pip install 'gridtokenx[edge]'`` (docs/edge.md) and the Docker image install a wheel; without the maps in it the
daemon stopped at start with "meter map directory does not exist" unless ``[poll] maps_dir`` pointed at a copy.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from edge.meters import maps
from edge.meters.maps import INSTALLED_MAPS, default_maps_dir, load_maps

ROOT = Path(__file__).parents[3]


def test_the_wheel_installs_every_map_where_the_daemon_looks() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["data-files"][INSTALLED_MAPS.as_posix()]
    shipped = {path for pattern in patterns for path in ROOT.glob(pattern)}
    assert shipped == set((ROOT / "firmware-config" / "meters").glob("*.toml"))


def test_a_checkout_reads_its_own_maps() -> None:
    assert default_maps_dir() == ROOT / "firmware-config" / "meters"


def test_an_installed_package_reads_the_maps_under_its_prefix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed = tmp_path / INSTALLED_MAPS
    installed.mkdir(parents=True)
    for path in (ROOT / "firmware-config" / "meters").glob("*.toml"):
        (installed / path.name).write_bytes(path.read_bytes())
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    monkeypatch.setattr(maps, "__file__", str(site / "edge" / "meters" / "maps.py"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path))
    assert default_maps_dir() == installed
    assert "eastron-sdm630" in load_maps(default_maps_dir())
