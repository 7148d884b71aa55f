"""The chart's dashboard and alerting rules against the local cluster's Prometheus, which scrapes the operator's
own /metrics as the chart's operator PodMonitor would: every PromQL expression parses and runs, and the
per-service series the dashboard is built on exist for a live service."""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import yaml

from e2e.helpers import http_in_cluster, prom_query
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster

DASHBOARD = REPO / "charts/foresail/dashboards/foresail.json"
RULES = REPO / "charts/foresail/rules/foresail.rules.yaml"


def expressions() -> list[str]:
    """Every PromQL expression of the dashboard (its variables set to match all) and of the rules."""
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    exprs += [v["query"]["query"] for v in dash["templating"]["list"] if v["type"] == "query"]
    exprs += [r["expr"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    return [e.replace("$namespace", ".*").replace("$inferenceservice", ".*") for e in exprs]


def run(cluster: Cluster, expr: str) -> dict[str, Any]:
    """The query API's answer: label_values(...) is Grafana's, asked of the series API as Grafana does."""
    if expr.startswith("label_values("):
        inner = expr[len("label_values(") : expr.rindex(",")].strip()
        url = f"{cluster.network.prometheus_url}/api/v1/series?match[]={urllib.parse.quote(inner)}"
    else:
        url = f"{cluster.network.prometheus_url}/api/v1/query?query={urllib.parse.quote(expr)}"
    code, body = http_in_cluster(cluster, url)
    assert code == 200, (expr, body)
    out: dict[str, Any] = json.loads(body)
    return out


def test_dashboard_and_rule_expressions_run_and_the_service_series_exist(operator: Kube, cluster: Cluster, namespace: str) -> None:
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    obj: dict[str, Any] = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    obj["metadata"]["name"] = "observed"
    obj["spec"]["scaling"] = {"minReplicas": 1, "maxReplicas": 2, "capacityPerReplicaRps": 20, "overrides": {"tickSeconds": 2}}
    operator.create(obj, namespace)
    sel = f'{{namespace="{namespace}", inferenceservice="observed"}}'
    for metric in ("foresail_desired_replicas", "foresail_actual_replicas", "foresail_ready_replicas", "foresail_slo_p99_ms"):

        def scraped(m: str = metric) -> list[dict[str, Any]]:
            return prom_query(cluster, m + sel)

        wait_for(f"{metric}{sel} scraped from the operator", scraped, timeout=300)
    wait_for(
        "the service's MetricsAvailable gauge at 1 (the chart's default Prometheus URL reaches the cluster's Prometheus)",
        lambda: prom_query(cluster, f'foresail_inferenceservice_condition{{namespace="{namespace}", inferenceservice="observed", condition="MetricsAvailable"}} == 1'),
        timeout=300,
    )
    for expr in expressions():
        answer = run(cluster, expr)
        assert answer["status"] == "success", (expr, answer)
    loop = prom_query(cluster, "histogram_quantile(0.99, sum by (le) (rate(foresail_autoscaler_loop_seconds_bucket[5m])))")
    print(f"\n[figure] {len(expressions())} dashboard and rule expressions run; autoscaler pass p99 {loop[0]['value'][1] if loop else 'n/a'} s")
