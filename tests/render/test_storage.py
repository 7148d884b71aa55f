"""storageUri rendering (the init container and the model volume) and what the pods report about a fetch."""

from __future__ import annotations

from typing import Any

import pytest

from foresail.render.storage import INIT_CONTAINER, fetch_observation, fetch_signature, parse_storage_uri, parse_termination
from foresail.render.triton import render_deployment
from tests.builders import IsvcBuilder

DIGEST = "sha256:" + "ab" * 32


def _pod_spec(repository: dict[str, Any]) -> dict[str, Any]:
    dep = render_deployment(IsvcBuilder().set("spec.model.repository", repository).build(), operator_image="registry.local/foresail@sha256:1")
    spec: dict[str, Any] = dep["spec"]["template"]["spec"]
    return spec


def test_s3_init_container() -> None:
    pod = _pod_spec({"storageUri": "s3://models/emulated", "s3": {"endpoint": "http://10.1.0.1:8333/", "secretName": "s3-creds"}})
    (init,) = pod["initContainers"]
    assert init["name"] == INIT_CONTAINER
    assert init["image"] == "registry.local/foresail@sha256:1"
    assert init["args"] == [
        "storage-init", "--uri", "s3://models/emulated", "--dest", "/mnt/models",
        "--endpoint", "http://10.1.0.1:8333", "--region", "us-east-1",
    ]  # fmt: skip
    assert [e["valueFrom"]["secretKeyRef"] for e in init["env"]] == [
        {"name": "s3-creds", "key": "AWS_ACCESS_KEY_ID"},
        {"name": "s3-creds", "key": "AWS_SECRET_ACCESS_KEY"},
    ]
    assert init["terminationMessagePath"] == "/dev/termination-log"
    assert init["securityContext"] == pod["containers"][0]["securityContext"]  # restricted, like Triton
    assert {"name": "models", "mountPath": "/mnt/models"} in init["volumeMounts"]
    models = next(v for v in pod["volumes"] if v["name"] == "models")
    assert models == {"name": "models", "emptyDir": {}}
    triton_mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "models")
    assert triton_mount["readOnly"] is True


@pytest.mark.parametrize(
    ("repository", "tail"),
    [
        ({"storageUri": "s3://models"}, ["--endpoint", "https://s3.us-east-1.amazonaws.com", "--region", "us-east-1"]),
        ({"storageUri": "s3://models", "s3": {"region": "eu-west-3"}}, ["--endpoint", "https://s3.eu-west-3.amazonaws.com", "--region", "eu-west-3"]),
        ({"storageUri": "gs://models/x"}, ["--endpoint", "https://storage.googleapis.com", "--region", "auto"]),
        ({"storageUri": "s3://models", "s3": {"addressingStyle": "virtual"}},
         ["--endpoint", "https://s3.us-east-1.amazonaws.com", "--region", "us-east-1", "--addressing-style", "virtual"]),
        ({"storageUri": "s3://models", "s3": {"addressingStyle": "path"}}, ["--endpoint", "https://s3.us-east-1.amazonaws.com", "--region", "us-east-1"]),
        ({"storageUri": "https://h/m.tar.gz", "sha256": "c" * 64}, ["--sha256", "c" * 64]),
        ({"storageUri": "https://h/m.zip"}, []),
    ],
    ids=["s3 default endpoint", "s3 region", "gs", "virtual-hosted", "path-style written out: no argument", "archive with sha256", "archive"],
)
def test_init_container_arguments(repository: dict[str, Any], tail: list[str]) -> None:
    (init,) = _pod_spec(repository)["initContainers"]
    assert init["args"][5:] == tail
    assert init["env"] == []


def test_configmap_has_no_init_container() -> None:
    assert "initContainers" not in _pod_spec({"configMap": {"name": "m"}})


@pytest.mark.parametrize(("sub_path", "extra"), [("", {}), ("repos/a", {"subPath": "repos/a"})], ids=["whole claim", "subPath"])
def test_pvc_init_container_digests_the_claim_read_only(sub_path: str, extra: dict[str, str]) -> None:
    """A pvc repository: the init container mounts what Triton mounts (the claim, its subPath), read only, and
    only digests it (--hash); the volume stays the claim, read only."""
    pod = _pod_spec({"pvc": {"claimName": "models", "subPath": sub_path}})
    (init,) = pod["initContainers"]
    assert (init["name"], init["image"]) == (INIT_CONTAINER, "registry.local/foresail@sha256:1")
    assert init["args"] == ["storage-init", "--hash", "/mnt/models"]
    assert {"name": "models", "mountPath": "/mnt/models", "readOnly": True, **extra} in init["volumeMounts"]
    assert init["securityContext"] == pod["containers"][0]["securityContext"]
    assert next(v for v in pod["volumes"] if v["name"] == "models") == {
        "name": "models", "persistentVolumeClaim": {"claimName": "models", "readOnly": True},
    }  # fmt: skip
    triton_mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "models")
    assert triton_mount == {"name": "models", "mountPath": "/models", "readOnly": True, **extra}


def test_parse_storage_uri() -> None:
    assert parse_storage_uri("s3://models/a/b/") == parse_storage_uri("s3://models/a/b/")
    u = parse_storage_uri("s3://models/a/b/")
    assert (u.scheme, u.bucket, u.prefix, u.is_bucket) == ("s3", "models", "a/b/", True)
    assert parse_storage_uri("https://h/x/m.tgz").archive == "tar.gz"
    assert parse_storage_uri("http://h/m.tar?sig=1").archive == "tar"
    with pytest.raises(ValueError, match="must be"):
        parse_storage_uri("s3://b")


def _pod(name: str, created: str, state: dict[str, Any], last: dict[str, Any] | None = None) -> dict[str, Any]:
    st = {"name": INIT_CONTAINER, "state": state, "lastState": last or {}}
    return {"metadata": {"name": name, "creationTimestamp": created}, "status": {"initContainerStatuses": [st]}}


OK = {"terminated": {"exitCode": 0, "message": f"digest={DIGEST} files=2 bytes=10\n"}}
FAILED = {"terminated": {"exitCode": 1, "message": "Forbidden: listing s3://models/x: 403 AccessDenied\n"}}
BACKOFF = {"waiting": {"reason": "CrashLoopBackOff"}}


def test_termination_line() -> None:
    got = parse_termination(f"digest={DIGEST} files=2 bytes=10\n")
    assert got is not None
    assert (got.digest, got.files, got.bytes) == (DIGEST, 2, 10)
    assert parse_termination("Forbidden: no") is None
    assert parse_termination("") is None


CASES = [
    ("fetched", [_pod("a", "2026-01-01T00:00:01Z", OK)], DIGEST, None),
    ("crash loop: the last failure's line", [_pod("a", "2026-01-01T00:00:01Z", BACKOFF, FAILED)], None, "Forbidden: listing"),
    ("first failure, not restarted yet", [_pod("a", "2026-01-01T00:00:01Z", FAILED)], None, "Forbidden"),
    (
        "one pod fetched: no failure",
        [_pod("a", "2026-01-01T00:00:01Z", OK), _pod("b", "2026-01-01T00:00:02Z", BACKOFF, FAILED)],
        DIGEST,
        None,
    ),
    (
        "secret missing",
        [_pod("a", "2026-01-01T00:00:01Z", {"waiting": {"reason": "CreateContainerConfigError", "message": 'secret "s3" not found'}})],
        None,
        'CreateContainerConfigError: secret "s3" not found',
    ),
    ("still fetching", [_pod("a", "2026-01-01T00:00:01Z", {"running": {}})], None, None),
    ("no pods", [], None, None),
]


@pytest.mark.parametrize(("pods", "digest", "failure"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_fetch_observation(pods: list[dict[str, Any]], digest: str | None, failure: str | None) -> None:
    isvc = IsvcBuilder().set("spec.model.repository", {"storageUri": "s3://models/x"}).build()
    got, failed = fetch_observation(isvc, pods)
    assert (got.digest if got else None) == digest
    if got is not None:
        assert got.storage_uri == "s3://models/x"
    if failure is None:
        assert failed is None
    else:
        assert failed is not None
        assert failed.message.startswith(failure)
        assert failed.pod == "a"


def test_fetch_observation_ignores_other_sources() -> None:
    isvc = IsvcBuilder().build()
    assert fetch_observation(isvc, [_pod("a", "t", FAILED)]) == (None, None)


def test_observe_reports_a_failed_fetch_and_records_the_digest() -> None:
    from datetime import UTC, datetime

    from foresail.render.isvc_status import observe

    isvc = IsvcBuilder().set("spec.model.repository", {"storageUri": "s3://models/x"}).build()
    dep = {"spec": {"replicas": 1}, "status": {"replicas": 1}}
    now = datetime(2026, 12, 5, tzinfo=UTC)
    failing = observe(isvc, dep, [_pod("a", "t", BACKOFF, FAILED)], now)
    ready = next(c for c in failing.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "ModelFetchFailed")
    assert ready.message == "spec.model.repository.storageUri: Forbidden: listing s3://models/x: 403 AccessDenied (pod a)"
    fetched = observe(isvc, dep, [_pod("a", "t", OK)], now)
    assert fetched.model is not None
    assert (fetched.model.digest, fetched.model.storage_uri) == (DIGEST, "s3://models/x")
    assert next(c for c in fetched.conditions if c.type == "Ready").reason == "NoReadyReplicas"


def test_observe_records_a_pvc_digest_per_claim_and_subpath() -> None:
    """A pvc repository: the digest its newest replica reported, naming the claim and subPath; kept while the
    spec names the same ones, dropped when it names others (and no replica reported yet); a repository its init
    container cannot read is ModelFetchFailed naming the pvc."""
    from datetime import UTC, datetime

    from foresail.render.isvc_status import observe

    isvc = IsvcBuilder().set("spec.model.repository", {"pvc": {"claimName": "models", "subPath": "a"}}).build()
    dep = {"spec": {"replicas": 1}, "status": {"replicas": 1}}
    now = datetime(2026, 12, 5, tzinfo=UTC)
    newer = {"terminated": {"exitCode": 0, "message": f"digest=sha256:{'cd' * 32} files=3 bytes=9"}}
    st = observe(isvc, dep, [_pod("old", "2026-01-01T00:00:01Z", OK), _pod("new", "2026-01-01T00:00:02Z", newer)], now)
    assert st.model is not None
    assert (st.model.digest, st.model.pvc, st.model.storage_uri, st.model.files) == (f"sha256:{'cd' * 32}", "models/a", "", 3)
    kept = isvc.model_copy(update={"status": st})
    assert observe(kept, dep, [], now).model == st.model
    other = IsvcBuilder().set("spec.model.repository", {"pvc": {"claimName": "models", "subPath": "b"}}).build()
    assert observe(other.model_copy(update={"status": st}), dep, [], now).model is None
    unreadable = {"terminated": {"exitCode": 1, "message": "ReadFailed: [Errno 13] Permission denied: '/mnt/models/m'"}}
    failing = observe(isvc, dep, [_pod("a", "t", BACKOFF, unreadable)], now)
    ready = next(c for c in failing.conditions if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "ModelFetchFailed")
    assert ready.message.startswith("spec.model.repository.pvc: ReadFailed: [Errno 13] Permission denied")


RUNNING = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
PULL = {"waiting": {"reason": "ImagePullBackOff", "message": "no image"}}
SIGNATURES = [
    ("running: nothing to say yet", _pod("a", "t", RUNNING), None),
    ("waiting to start (PodInitializing): nothing", _pod("a", "t", {"waiting": {"reason": "PodInitializing"}}), None),
    ("fetched", _pod("a", "t", OK), (0, 0, None, "")),
    ("failed", _pod("a", "t", FAILED), (0, 1, None, "")),
    ("failed, then backing off: the same failure, one more restart", _pod("a", "t", BACKOFF, FAILED), (0, None, 1, "")),
    ("its image cannot be pulled", _pod("a", "t", PULL), (0, None, None, "ImagePullBackOff")),
    ("no storage-init container", {"metadata": {"name": "a"}, "status": {"initContainerStatuses": [{"name": "other", "state": OK}]}}, None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "pod", "want"), SIGNATURES, ids=[c[0] for c in SIGNATURES])
def test_fetch_signature(name: str, pod: dict[str, Any], want: tuple[Any, ...] | None) -> None:
    assert fetch_signature(pod) == want, name
