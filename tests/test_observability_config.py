"""The shipped monitoring configuration: Prometheus alert rules (with their unit tests run by ``promtool test rules``),
the Prometheus config, and the Grafana dashboards (JSON schema, PromQL that parses, metrics that central exports)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml
from prometheus_client import REGISTRY

import central.app  # noqa: F401 - imports every subsystem, so every metric family is registered
from central.accounting.metrics import AccountingMetrics
from central.ingest.metrics import IngestMetrics

ROOT = Path(__file__).parents[1]
PROMETHEUS = ROOT / "firmware-config" / "prometheus"
GRAFANA = ROOT / "firmware-config" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
METRIC = re.compile(r"\b(gtx_[a-z0-9_]+)")
#: Suffixes Prometheus adds to a family's samples.
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    if not Path(PROMTOOL).exists():
        pytest.fail("promtool is missing: `make setup` installs Debian's prometheus package (.ci/services.sh)")
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def _exported_names() -> set[str]:
    AccountingMetrics.for_registry()
    IngestMetrics.for_registry()
    names: set[str] = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + s for s in SUFFIXES)
        names.update(sample.name for sample in family.samples)
    return names


def _rule_exprs() -> list[str]:
    doc = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def _dashboard_exprs(path: Path) -> list[str]:
    return [t["expr"] for p in json.loads(path.read_text())["panels"] for t in p["targets"]]


def test_alert_rules_pass_their_unit_tests() -> None:
    checked = _promtool("check", "rules", "alerts.yml", cwd=PROMETHEUS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", "alerts.test.yml", cwd=PROMETHEUS)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_unit_test_that_fires_it() -> None:
    alerts = {r["alert"] for g in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for r in g["rules"]}
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    fired = {case["alertname"] for t in tests for case in t.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert alerts - fired == set(), "alerts without a test case that expects them to fire"


def test_prometheus_config_is_valid() -> None:
    checked = _promtool("check", "config", "prometheus.yml", cwd=PROMETHEUS)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_rules_and_dashboards_read_only_metrics_central_exports() -> None:
    exported = _exported_names()
    used = {m for e in _rule_exprs() for m in METRIC.findall(e)}
    used |= {m for d in DASHBOARDS for e in _dashboard_exprs(d) for m in METRIC.findall(e)}
    assert used, "no gtx_ metric found in the rules or dashboards"
    assert used - exported == set(), "metrics named in alerts or dashboards that central does not export"


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_dashboard_matches_the_schema_and_its_queries_parse(path: Path, tmp_path: Path) -> None:
    schema = json.loads((GRAFANA / "dashboard.schema.json").read_text())
    board = json.loads(path.read_text())
    jsonschema.validate(board, schema)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in board["panels"]:
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24, f"panel {p['title']!r} is wider than the grid"
    # PromQL syntax: promtool parses each query as a recording rule.
    rules = {"groups": [{"name": "q", "rules": [
        {"record": f"q:{i}", "expr": e} for i, e in enumerate(_dashboard_exprs(path))
    ]}]}
    (tmp_path / "q.yml").write_text(yaml.safe_dump(rules))
    checked = _promtool("check", "rules", "q.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_provisioning_points_at_the_dashboards() -> None:
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "gridtokenx.yml").read_text())["providers"]
    assert providers[0]["options"]["path"] == "/var/lib/grafana/dashboards/gridtokenx"
    datasource = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uids = {d["uid"] for d in datasource["datasources"]}
    assert {t["datasource"]["uid"] for d in DASHBOARDS for p in json.loads(d.read_text())["panels"]
            for t in p["targets"]} <= uids
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    mounts = " ".join(compose["grafana"]["volumes"])
    assert "firmware-config/grafana/dashboards:/var/lib/grafana/dashboards/gridtokenx" in mounts
