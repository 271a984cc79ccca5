"""`make test` relies on pytest-xdist's ``loadgroup`` keeping each file's tests on one worker (tests/conftest.py marks
every file as one group); files such as tests/web build each test on the one before. If a pytest or xdist upgrade
stops xdist from tagging node ids with their group (pytest 9.2 with xdist 3.8 did), this fails at once instead of
those files failing in puzzling ways."""

from __future__ import annotations

import pytest


def test_this_file_is_one_xdist_group(request: pytest.FixtureRequest) -> None:
    if not getattr(request.config.option, "loadgroup", False):  # set on xdist workers under --dist loadgroup
        pytest.skip("not running under pytest-xdist --dist loadgroup")
    assert request.node.nodeid.endswith("@tests/test_xdist_grouping.py"), request.node.nodeid
