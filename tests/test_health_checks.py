"""The chart's Argo CD health checks (charts/foresail/health/<group>/<kind>/health.lua), run by a Lua 5.1
interpreter (Argo CD's gopher-lua speaks 5.1) against the fixture objects of each ``health_test.yaml``, the
way Argo CD's own resource_customizations tests run them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

HEALTH = Path(__file__).resolve().parents[1] / "charts/foresail/health"
KINDS = sorted(p.parent for p in HEALTH.glob("*/*/health.lua"))
CASES = [
    (kind, case)
    for kind in KINDS
    for case in yaml.safe_load((kind / "health_test.yaml").read_text())["tests"]
]


def health(script: str, obj: dict[str, Any]) -> dict[str, str]:
    """Argo CD's contract: the object as the global ``obj``, the script's body returns {status, message}."""
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    got = lua.execute(script)
    return {"status": got["status"], "message": got["message"]}


def test_every_kind_has_its_check_and_cases() -> None:
    assert {f"{k.parent.name}/{k.name}" for k in KINDS} == {"foresail.dev/InferenceService", "foresail.dev/EvalJob", "foresail.dev/Tenant"}
    for kind in KINDS:
        statuses = {c["healthStatus"]["status"] for k, c in CASES if k == kind}
        assert {"Healthy", "Progressing", "Degraded"} <= statuses, kind.name


@pytest.mark.parametrize(("kind", "case"), CASES, ids=[f"{k.name}/{Path(c['inputPath']).stem}" for k, c in CASES])
def test_health(kind: Path, case: dict[str, Any]) -> None:
    obj = yaml.safe_load((kind / case["inputPath"]).read_text())
    assert health((kind / "health.lua").read_text(), obj) == case["healthStatus"]
