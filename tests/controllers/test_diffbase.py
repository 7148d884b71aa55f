"""kopf's diff base as digests (issue 15, defect 9: specs over ~256 KiB): what kopf's processing sees with the
storage the operator configures, played the way ``kopf._core.reactor.processing`` plays it (fetch, build,
clear, diff; store after handling), with named cases."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any, cast

import kopf
import pytest
from kopf._cogs.structs import diffs

from foresail.controllers.diffbase import DigestDiffBaseStorage
from foresail.controllers.operator import configure

ANNOTATIONS_LIMIT = 256 * 1024  # the apiserver's limit on all annotations of an object together


def configured() -> tuple[kopf.DiffBaseStorage, kopf.ProgressStorage]:
    settings = kopf.OperatorSettings()
    configure(settings=settings)  # type: ignore[call-arg]  # a kopf startup handler: kopf passes the rest
    return settings.persistence.diffbase_storage, settings.persistence.progress_storage


def isvc(spec_bytes: int = 0, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "foresail.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": "big", "namespace": "a", "uid": "u1", "resourceVersion": "1", "labels": {"team": "a"}},
        "spec": {"model": {"name": "m"}, "slo": {"p99LatencyMs": 100}, "scaling": {"minReplicas": 1}, **spec},
        "status": {"desiredReplicas": 1},
    }
    if spec_bytes:
        body["spec"]["triton"] = {"env": [{"name": f"V{i}", "value": "x" * 8000} for i in range(spec_bytes // 8000)]}
    return body


def changed(storage: kopf.DiffBaseStorage, progress: kopf.ProgressStorage, raw: dict[str, Any]) -> set[str]:
    """The top-level stanzas kopf's diff says changed since the last store."""
    body = kopf.Body(cast(kopf.RawBody, raw))
    old = storage.fetch(body=body)
    new = progress.clear(essence=storage.build(body=body))
    old = progress.clear(essence=old) if old is not None else None
    return {d[1][0] if d[1] else "*" for d in diffs.diff(old, new)}


def handled(storage: kopf.DiffBaseStorage, progress: kopf.ProgressStorage, raw: dict[str, Any]) -> dict[str, Any]:
    """The object after kopf stored its diff base (the patch's annotations merged in)."""
    body = kopf.Body(cast(kopf.RawBody, raw))
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=progress.clear(essence=storage.build(body=body)))
    out = copy.deepcopy(raw)
    out["metadata"].setdefault("annotations", {}).update(patch.get("metadata", {}).get("annotations", {}))
    return out


def _spec(o: dict[str, Any]) -> None:
    o["spec"]["scaling"]["minReplicas"] = 2


def _label(o: dict[str, Any]) -> None:
    o["metadata"]["labels"]["tier"] = "gold"


def _status(o: dict[str, Any]) -> None:
    o["status"]["desiredReplicas"] = 7
    o["metadata"]["resourceVersion"] = "2"


def _progress(o: dict[str, Any]) -> None:
    o["metadata"]["annotations"]["foresail.dev/on_isvc"] = '{"retries": 1}'


def _user_annotation(o: dict[str, Any]) -> None:
    o["metadata"]["annotations"]["example.com/owner"] = "team-a"


CASES: list[tuple[str, Callable[[dict[str, Any]], None] | None, set[str]]] = [
    ("nothing changed (a re-listing): no diff", None, set()),
    ("the spec changed: a diff on spec (on.update(field='spec') fires)", _spec, {"spec"}),
    ("a label added: a diff on metadata only", _label, {"metadata"}),
    ("a user's annotation added: a diff on metadata only", _user_annotation, {"metadata"}),
    ("status written (the autoscaler's every tick): no diff", _status, set()),
    ("kopf's own progress annotation: no diff", _progress, set()),
]


@pytest.mark.parametrize(("name", "change", "want"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("spec_bytes", [pytest.param(0, id="small spec"), pytest.param(600_000, id="600 KB spec")])
def test_kopf_sees_the_changes_it_saw_before(
    name: str, change: Callable[[dict[str, Any]], None] | None, want: set[str], spec_bytes: int
) -> None:
    storage, progress = configured()
    first = isvc(spec_bytes)
    assert changed(storage, progress, first) == {"*"}, "never handled: the whole object is new"
    after = handled(storage, progress, first)
    if change is not None:
        change(after)
    assert changed(storage, progress, after) == want, name


@pytest.mark.parametrize("spec_kib", [1, 250, 300, 1400])
def test_the_diff_base_annotation_does_not_grow_with_the_spec(spec_kib: int) -> None:
    """Fails with kopf's AnnotationsDiffBaseStorage: a copy of the spec, refused by the apiserver over 256 KiB."""
    storage, progress = configured()
    after = handled(storage, progress, isvc(spec_kib * 1024))
    sizes = {k: len(k) + len(v) for k, v in after["metadata"]["annotations"].items()}
    assert sum(sizes.values()) < 1024, sizes
    assert sum(sizes.values()) < ANNOTATIONS_LIMIT


def test_a_diff_base_written_by_kopfs_own_storage_is_read_and_then_replaced() -> None:
    """An operator upgraded from the full-copy storage: no spurious update, and the next store shrinks it."""
    legacy = kopf.AnnotationsDiffBaseStorage(prefix="foresail.dev", key="last-handled-configuration")
    storage, progress = configured()
    raw = handled(legacy, progress, isvc(20_000))
    old = raw["metadata"]["annotations"]["foresail.dev/last-handled-configuration"]
    assert len(old) > 16_000
    assert changed(storage, progress, raw) == set()
    _spec(raw)
    assert changed(storage, progress, raw) == {"spec"}
    new = handled(storage, progress, raw)["metadata"]["annotations"]["foresail.dev/last-handled-configuration"]
    assert len(new) < 400 and "spec" in json.loads(new)["foresail.dev/digests"]


def test_the_operator_configures_the_digest_storage_and_only_spec_handlers() -> None:
    """The digests rebuild the essence without kopf's extra fields: every change handler's field lies in spec."""
    storage, _ = configured()
    assert isinstance(storage, DigestDiffBaseStorage)
    import foresail.controllers.operator  # noqa: F401  (registers the handlers)

    registry = kopf.get_default_registry()
    fields = {h.field for h in registry._changing._handlers if h.field}
    assert fields and all(f[0] == "spec" for f in fields), fields
