"""The chart's alerting rules (charts/foresail/rules/) pass ``promtool check rules`` and the ``promtool test
rules`` file tests/rules/foresail_test.yaml; the PrometheusRule template carries the same groups. promtool
is built with Prometheus into the pinned tools (``make tools``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from hack.tools import TOOLS_BY_NAME

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "charts/foresail/rules/foresail.rules.yaml"
PROMTOOL = TOOLS_BY_NAME["prometheus"].dir / "bin/promtool"
needs_promtool = pytest.mark.skipif(not PROMTOOL.is_file(), reason=f"promtool not built ({PROMTOOL}): run `make tools`")


def promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROMTOOL), *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120)


@needs_promtool
def test_rules_pass_promtool_check() -> None:
    out = promtool("check", "rules", str(RULES))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 6 rules found" in out.stdout


@needs_promtool
def test_rules_pass_their_promtool_tests() -> None:
    out = promtool("test", "rules", "foresail_test.yaml", cwd=REPO / "tests/rules")
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_alert_has_a_promtool_test() -> None:
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    tested = {t["alertname"] for case in yaml.safe_load((REPO / "tests/rules/foresail_test.yaml").read_text())["tests"] for t in case["alert_rule_test"]}
    assert alerts == tested


HELM = TOOLS_BY_NAME["kubectl"].dir / "bin/helm"


@pytest.mark.skipif(not HELM.is_file(), reason=f"helm not installed ({HELM}): run `make tools`")
def test_the_chart_carries_the_rules_and_the_dashboard_unchanged() -> None:
    sets = ["--set=monitoring.prometheusRule.enabled=true", "--set=monitoring.dashboard.enabled=true", "--set=monitoring.podMonitor.enabled=true"]
    out = subprocess.run(
        [str(HELM), "template", "f", str(REPO / "charts/foresail"), *sets, "--show-only", "templates/monitoring.yaml"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    objs = {o["kind"]: o for o in yaml.safe_load_all(out.stdout) if o}
    assert set(objs) == {"Service", "PodMonitor", "PrometheusRule", "ConfigMap"}
    assert objs["PrometheusRule"]["spec"] == yaml.safe_load(RULES.read_text())
    dashboard = objs["ConfigMap"]
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dashboard["data"]["foresail.json"] == (REPO / "charts/foresail/dashboards/foresail.json").read_text()


@needs_promtool
def test_the_dashboards_expressions_parse(tmp_path: Path) -> None:
    """Every panel's PromQL (variables set to match all), checked by promtool as recording rules; the e2e
    (e2e/test_observability.py) runs them against the local cluster's Prometheus."""
    dash = json.loads((REPO / "charts/foresail/dashboards/foresail.json").read_text())
    exprs = [t["expr"].replace("$namespace", ".*").replace("$inferenceservice", ".*") for p in dash["panels"] for t in p["targets"]]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:expr{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    (tmp_path / "dashboard.rules.yaml").write_text(yaml.safe_dump(rules))
    out = promtool("check", "rules", "dashboard.rules.yaml", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in out.stdout
