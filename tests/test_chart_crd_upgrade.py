"""The chart's pre-upgrade hook that replaces the CRDs (templates/crd-upgrade.yaml), rendered by helm."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.tools import TOOLS_BY_NAME

REPO = Path(__file__).resolve().parents[1]
HELM = TOOLS_BY_NAME["kubectl"].dir / "bin/helm"
pytestmark = pytest.mark.skipif(not HELM.is_file(), reason=f"helm not installed ({HELM}): run `make tools`")


def _render(*sets: str) -> dict[str, dict[str, Any]]:
    out = subprocess.run(
        [str(HELM), "template", "f", str(REPO / "charts/foresail"), "-n", "foresail-system", *sets, "--show-only", "templates/crd-upgrade.yaml"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if "could not find template" in out.stderr:
        return {}
    assert out.returncode == 0, out.stderr
    return {d["kind"]: d for d in yaml.safe_load_all(out.stdout) if d}


def test_the_hook_applies_exactly_the_chart_crds() -> None:
    objs = _render()
    assert set(objs) == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Job"}
    files = {p.name: p.read_text() for p in sorted((REPO / "charts/foresail/crds").glob("*.yaml"))}
    assert objs["ConfigMap"]["data"] == files
    names = sorted(yaml.safe_load(t)["metadata"]["name"] for t in files.values())
    assert objs["ClusterRole"]["rules"][0]["resourceNames"] == names
    assert objs["ClusterRole"]["rules"][0]["verbs"] == ["get", "update"]
    for o in objs.values():
        assert o["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade", o["kind"]
        assert o["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
    assert int(objs["Job"]["metadata"]["annotations"]["helm.sh/hook-weight"]) > int(objs["ConfigMap"]["metadata"]["annotations"]["helm.sh/hook-weight"])
    pod = objs["Job"]["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"][:3] == ["crds", "apply", "/crds"]
    assert c["securityContext"]["readOnlyRootFilesystem"] and c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] and pod["serviceAccountName"] == objs["ServiceAccount"]["metadata"]["name"]


def test_off_with_crds_upgrade_false_and_on_for_values_without_crds() -> None:
    assert _render("--set", "crds.upgrade=false") == {}
    assert "Job" in _render("--set", "crds=null"), "helm upgrade --reuse-values from a release without `crds` still upgrades them"
