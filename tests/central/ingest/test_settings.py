from __future__ import annotations

import pytest

from central.config import parse_section
from central.errors import ConfigError
from central.ingest.settings import IngestSettings
from central.minting.settings import MintingSettings


def test_defaults_and_overrides() -> None:
    assert parse_section(IngestSettings, "ingest", {}) == IngestSettings("central", 16, 300_000)
    got = parse_section(IngestSettings, "ingest",
                        {"share_group": "ingest-b", "concurrency": 8, "max_future_ms": 60_000})
    assert (got.share_group, got.concurrency, got.max_future_ms) == ("ingest-b", 8, 60_000)
    assert parse_section(IngestSettings, "ingest", {}).max_age_ms == 60 * 86_400_000
    assert parse_section(IngestSettings, "ingest", {"max_age_ms": 3_600_000}).max_age_ms == 3_600_000


@pytest.mark.parametrize(
    "section",
    [{"share_group": "a/b"}, {"share_group": "+"}, {"concurrency": 0}, {"concurrency": "4"}, {"concurrency": True},
     {"max_future_ms": -1}, {"max_age_ms": 0}, {"max_age_ms": 367 * 86_400_000}, {"unknown": 1}],
)
def test_bad_settings_name_the_key(section: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="ingest"):
        parse_section(IngestSettings, "ingest", section)


def test_accounting_max_windows_setting() -> None:
    assert parse_section(MintingSettings, "minting", {}).accounting_max_windows == 10_000
    assert parse_section(MintingSettings, "minting", {"accounting_max_windows": 5}).accounting_max_windows == 5
    for bad in (0, 1_000_001, "5", True):
        with pytest.raises(ConfigError, match="accounting_max_windows"):
            parse_section(MintingSettings, "minting", {"accounting_max_windows": bad})
