"""spec.model.repository.storageUri end to end: the emulated model repository in a bucket of a real
S3-compatible server (SeaweedFS, built from its Go module, in the cluster's client namespace), fetched by the
replicas' storage-init init container (the operator's image) into the model volume; the content digest in
status.model; wrong credentials, a missing prefix and an archive checksum mismatch each a Ready=False
condition with reason ModelFetchFailed naming the cause."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import time
from typing import Any

import httpx
import pytest
import yaml

from foresail.api.objects import condition, pod_is_live, pod_is_ready
from foresail.clients.storage import tree_digest
from hack.base import netns
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.testbed.cluster import Cluster
from hack.testbed.cluster.s3 import S3Server

BUCKET = "models"
PREFIX = "repo"  # s3://models/repo holds the repository: repo/emulated/config.pbtxt, repo/emulated/1/model.py
ARCHIVE_KEY = "archives/emulated.tar.gz"
SECRET = "s3-creds"


def _s3(cluster: Cluster, server: S3Server, method: str, path: str, body: bytes = b"") -> int:
    url, headers = server.signed(method, path, body)

    def call() -> int:
        return httpx.request(method, url, headers=headers, content=body, timeout=30).status_code

    return netns.call_in(cluster.network.client_ns, call, timeout=40)


@pytest.fixture(scope="module")
def store(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The object store with the emulated model under s3://models/repo and as a tar.gz archive; the digest
    storage-init must report for either."""
    t0 = time.monotonic()
    server = cluster.start_s3()
    print(f"\n[figure] SeaweedFS S3 ready: {time.monotonic() - t0:.1f}s")
    tree = tmp_path_factory.mktemp("repo")
    shutil.copytree(REPO / "e2e/models/emulated", tree / "emulated", ignore=shutil.ignore_patterns("__pycache__"))
    assert _s3(cluster, server, "PUT", f"/{BUCKET}") == 200
    for f in sorted(p for p in tree.rglob("*") if p.is_file()):
        assert _s3(cluster, server, "PUT", f"/{BUCKET}/{PREFIX}/{f.relative_to(tree).as_posix()}", f.read_bytes()) == 200
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(tree / "emulated", arcname="emulated")
    archive = buf.getvalue()
    assert _s3(cluster, server, "PUT", f"/{BUCKET}/{ARCHIVE_KEY}", archive) == 200
    return {
        "server": server,
        "digest": tree_digest(tree).digest,
        "archive_url": server.archive_url(BUCKET, ARCHIVE_KEY),
        "archive_sha256": hashlib.sha256(archive).hexdigest(),
    }


def _secret(kube: Kube, ns: str, access: str, secret: str) -> None:
    kube.kubectl(
        "create", "secret", "generic", SECRET, "-n", ns,
        f"--from-literal=AWS_ACCESS_KEY_ID={access}", f"--from-literal=AWS_SECRET_ACCESS_KEY={secret}",
    )  # fmt: skip


def _isvc(name: str, repository: dict[str, Any]) -> dict[str, Any]:
    obj: dict[str, Any] = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    obj["metadata"]["name"] = name
    obj["spec"]["model"]["repository"] = repository
    obj["spec"]["scaling"] = {"minReplicas": 1, "maxReplicas": 1, "overrides": {"tickSeconds": 2, "forecastEnabled": False}}
    obj["spec"]["warmup"] = {"requests": 5, "timeoutSeconds": 120}
    return obj


def _s3_repository(store: dict[str, Any], prefix: str = PREFIX) -> dict[str, Any]:
    server: S3Server = store["server"]
    return {"storageUri": f"s3://{BUCKET}/{prefix}", "s3": {"endpoint": server.endpoint, "secretName": SECRET}}


def test_s3_model_serves_with_its_digest(operator: Kube, cluster: Cluster, namespace: str, store: dict[str, Any]) -> None:
    server: S3Server = store["server"]
    _secret(operator, namespace, server.access_key, server.secret_key)
    t0 = time.monotonic()
    operator.create(_isvc("from-s3", _s3_repository(store)), namespace)

    def serving() -> dict[str, Any] | None:
        isvc = operator.get("fisvc", "-n", namespace, "from-s3")
        c = condition(isvc, "Ready")
        return isvc if c and c["status"] == "True" and c["reason"] == "Serving" else None

    isvc = wait_for("the s3 InferenceService Serving", serving, timeout=240)
    print(f"\n[figure] storageUri s3:// -> Serving: {time.monotonic() - t0:.1f}s")
    model = wait_for("status.model", lambda: operator.get("fisvc", "-n", namespace, "from-s3")["status"].get("model"), timeout=60)
    assert model["digest"] == store["digest"], model
    assert (model["storageUri"], model["files"]) == (f"s3://{BUCKET}/{PREFIX}", 2)
    pods = [p for p in operator.pods(namespace, "foresail.dev/inferenceservice=from-s3") if pod_is_live(p) and pod_is_ready(p)]
    init = pods[0]["status"]["initContainerStatuses"][0]
    assert init["name"] == "storage-init" and init["state"]["terminated"]["exitCode"] == 0
    body = json.dumps({"inputs": [{"name": "INPUT0", "shape": [1, 16], "datatype": "FP32", "data": [1.0] * 16}]})
    url = f"http://{pods[0]['status']['podIP']}:8000/v2/models/emulated/infer"
    out = subprocess.run(cluster.exec_cmd(["curl", "-sf", "-m", "30", "-X", "POST", url, "-d", body]), capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["outputs"][0]["data"] == [2.0] * 16
    assert isvc["status"]["readyReplicas"] == 1


def test_archive_model_serves_with_the_same_digest(operator: Kube, namespace: str, store: dict[str, Any]) -> None:
    """The same repository as an http tar.gz with its sha256: Serving, and the digest of the same files."""
    t0 = time.monotonic()
    operator.create(_isvc("from-archive", {"storageUri": store["archive_url"], "sha256": store["archive_sha256"]}), namespace)

    def serving_model() -> dict[str, Any] | None:
        isvc = operator.get("fisvc", "-n", namespace, "from-archive")
        c = condition(isvc, "Ready")
        ok = c and c["status"] == "True" and c["reason"] == "Serving"
        return isvc["status"].get("model") if ok else None

    model = wait_for("the archive InferenceService Serving with status.model", serving_model, timeout=240)
    print(f"\n[figure] storageUri http archive -> Serving: {time.monotonic() - t0:.1f}s")
    assert model["digest"] == store["digest"], model
    assert model["storageUri"] == store["archive_url"]


FAILURES = [
    ("wrong credentials", "s3", "Forbidden: listing s3://models/repo: 403"),
    ("missing prefix", "s3-missing", "NotFound: no objects under s3://models/no-such-model"),
    ("archive checksum mismatch", "archive", "ChecksumMismatch: "),
]


@pytest.mark.parametrize(("kind", "words"), [c[1:] for c in FAILURES], ids=[c[0] for c in FAILURES])
def test_fetch_failures_are_conditions(operator: Kube, namespace: str, store: dict[str, Any], kind: str, words: str) -> None:
    server: S3Server = store["server"]
    if kind == "s3":
        _secret(operator, namespace, server.access_key, "not-the-secret")
        repository = _s3_repository(store)
    elif kind == "s3-missing":
        _secret(operator, namespace, server.access_key, server.secret_key)
        repository = _s3_repository(store, "no-such-model")
    else:
        repository = {"storageUri": store["archive_url"], "sha256": "0" * 64}
    obj = _isvc("fails", repository)
    obj["spec"]["warmup"] = {"enabled": False}
    operator.create(obj, namespace)

    def failed() -> dict[str, Any] | None:
        c = condition(operator.get("fisvc", "-n", namespace, "fails"), "Ready")
        return c if c and c["status"] == "False" and c["reason"] == "ModelFetchFailed" else None

    t0 = time.monotonic()
    c = wait_for(f"Ready=False ModelFetchFailed ({kind})", failed, timeout=150)
    print(f"\n[figure] {kind}: ModelFetchFailed after {time.monotonic() - t0:.1f}s: {c['message']}")
    assert c["message"].startswith(f"spec.model.repository.storageUri: {words}"), c["message"]
    if kind == "archive":
        assert f"expected {'0' * 64}" in c["message"]
        assert store["archive_sha256"] in c["message"]


@pytest.mark.parametrize(
    ("repository", "words"),
    [
        ({"storageUri": "s3://b/m"}, "spec.model.repository.storageUri: Invalid value"),
        ({"storageUri": "https://h/model.onnx"}, "storageUri must be s3://bucket[/prefix]"),
        ({"storageUri": "https://h/m.zip", "s3": {"region": "eu-west-1"}}, "spec.model.repository.s3: Invalid value"),
        ({"storageUri": "s3://models/m", "sha256": "0" * 64}, "sha256 applies only to an http(s):// archive"),
    ],
    ids=["bucket of one letter", "not an archive", "s3 settings on an archive", "sha256 on s3"],
)
def test_malformed_storage_uris_refused_at_admission(operator: Kube, namespace: str, repository: dict[str, Any], words: str) -> None:
    obj = _isvc("bad", repository)
    obj["metadata"]["namespace"] = namespace
    out = operator.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(obj), check=False)
    assert out.returncode != 0
    assert words in out.stderr, out.stderr
