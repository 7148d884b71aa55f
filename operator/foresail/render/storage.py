"""``spec.model.repository.storageUri`` and ``pvc`` (pure): the URI parsed, the init container that fetches a
storageUri into the model volume, or digests a pvc repository in place (``foresail storage-init --hash``, read
only), both from the operator's image, and what the replicas' pods say about it (the digest of a success, the
one-line reason of a failure: the init container's termination message).

The init container writes one line to its termination message: ``digest=sha256:<hex> files=<n> bytes=<n>``
when the repository is in place, ``<Reason>: <message>`` when it is not (and exits non-zero). The reconciler
reads the line from the pods' ``initContainerStatuses``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from foresail.api.inferenceservice import InferenceService
from foresail.api.repository import ARCHIVE_URI, BUCKET_URI, ModelStatus, RepositorySource, S3AddressingStyle

__all__ = [
    "INIT_CONTAINER",
    "INIT_MOUNT",
    "SECRET_KEYS",
    "TERMINATION_PATH",
    "FetchFailure",
    "StorageUri",
    "default_endpoint",
    "fetch_observation",
    "fetch_signature",
    "parse_storage_uri",
    "parse_termination",
    "render_storage_init",
]

INIT_CONTAINER = "storage-init"
INIT_MOUNT = "/mnt/models"
TERMINATION_PATH = "/dev/termination-log"
# the Secret's keys (KServe's names) -> the init container's environment
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
DIGEST_LINE = re.compile(r"^digest=(sha256:[0-9a-f]{64}) files=(\d+) bytes=(\d+)$")


@dataclass(frozen=True)
class StorageUri:
    scheme: str  # s3, gs, http, https
    bucket: str = ""  # s3, gs
    prefix: str = ""  # s3, gs: key prefix without a leading "/" ("" = the whole bucket)
    url: str = ""  # http(s): the archive's URL
    archive: str = ""  # http(s): tar, tar.gz, zip

    @property
    def is_bucket(self) -> bool:
        return self.scheme in ("s3", "gs")


def parse_storage_uri(uri: str) -> StorageUri:
    """The URI's parts; a ValueError says what is wrong (the same expressions as the CRD's rule)."""
    if re.fullmatch(BUCKET_URI, uri):
        scheme, rest = uri.split("://", 1)
        bucket, _, prefix = rest.partition("/")
        return StorageUri(scheme, bucket=bucket, prefix=prefix)
    if re.fullmatch(ARCHIVE_URI, uri):
        path = urlsplit(uri).path
        kind = "zip" if path.endswith(".zip") else "tar" if path.endswith(".tar") else "tar.gz"
        return StorageUri(urlsplit(uri).scheme, url=uri, archive=kind)
    raise ValueError(f"storageUri {uri!r}: must be s3://bucket[/prefix], gs://bucket[/prefix] or an http(s) archive URL")


def default_endpoint(scheme: str, region: str) -> str:
    return "https://storage.googleapis.com" if scheme == "gs" else f"https://s3.{region}.amazonaws.com"


def _init_container(image: str, args: list[str], mount: dict[str, Any], env: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": INIT_CONTAINER,
        "image": image,
        "args": args,
        "env": env,
        "volumeMounts": [mount],
        "terminationMessagePath": TERMINATION_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
    }


def render_storage_init(repo: RepositorySource, image: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The init container and the model volume of a storageUri repository (an emptyDir it fills) or of a pvc
    one (the claim, read only, which it digests in place: every file read once per pod start, so that
    changed files give a new digest); None for configMap (the operator digests its data itself). The
    container runs as the pod's user (the pod's hardening applies to it too) and writes only into the
    emptyDir of a storageUri."""
    if repo.pvc is not None:
        mount: dict[str, Any] = {"name": "models", "mountPath": INIT_MOUNT, "readOnly": True}
        if repo.pvc.sub_path:
            mount["subPath"] = repo.pvc.sub_path
        container = _init_container(image, ["storage-init", "--hash", INIT_MOUNT], mount, [])
        return container, {"name": "models", "persistentVolumeClaim": {"claimName": repo.pvc.claim_name, "readOnly": True}}
    if repo.storage_uri is None:
        return None
    uri = parse_storage_uri(repo.storage_uri)
    args = ["storage-init", "--uri", repo.storage_uri, "--dest", INIT_MOUNT]
    env: list[dict[str, Any]] = []
    if uri.is_bucket:
        s3 = repo.s3
        region = s3.region if s3 is not None else "us-east-1"
        region = "auto" if uri.scheme == "gs" and (s3 is None or s3.region == "us-east-1") else region
        endpoint = s3.endpoint if s3 is not None and s3.endpoint else default_endpoint(uri.scheme, region)
        args += ["--endpoint", endpoint.rstrip("/"), "--region", region]
        if s3 is not None and s3.addressing_style is S3AddressingStyle.VIRTUAL:  # path: no argument, templates unchanged
            args += ["--addressing-style", "virtual"]
        if s3 is not None and s3.secret_name:
            env = [
                {"name": k, "valueFrom": {"secretKeyRef": {"name": s3.secret_name, "key": k}}} for k in SECRET_KEYS
            ]
    elif repo.sha256:
        args += ["--sha256", repo.sha256]
    return _init_container(image, args, {"name": "models", "mountPath": INIT_MOUNT}, env), {"name": "models", "emptyDir": {}}


@dataclass(frozen=True)
class FetchFailure:
    pod: str
    message: str  # the init container's one line: "<Reason>: <message>"
    exit_code: int


def parse_termination(message: str) -> ModelStatus | None:
    """The digest line of a successful fetch (None when the message is not one)."""
    m = DIGEST_LINE.match(message.strip().splitlines()[-1] if message.strip() else "")
    if m is None:
        return None
    return ModelStatus(digest=m.group(1), files=int(m.group(2)), bytes=int(m.group(3)))


def _init_status(pod: dict[str, Any]) -> dict[str, Any] | None:
    for st in (pod.get("status") or {}).get("initContainerStatuses") or []:
        if st.get("name") == INIT_CONTAINER:
            return dict(st)
    return None


FETCH_WAITING_ERRORS = ("CreateContainerConfigError", "ErrImagePull", "ImagePullBackOff", "InvalidImageName")


def fetch_signature(pod: dict[str, Any]) -> tuple[Any, ...] | None:
    """What of a pod's storage-init container the service's status is made of (an ended fetch, its exit code,
    its restarts, a waiting error); None while it runs or waits to start, or when the pod has none. A new
    signature is worth a reconcile: the digest or the failure reaches the status without waiting for the
    resync."""
    st = _init_status(pod)
    if st is None:
        return None
    term = (st.get("state") or {}).get("terminated")
    last = (st.get("lastState") or {}).get("terminated")
    waiting = str(((st.get("state") or {}).get("waiting") or {}).get("reason") or "")
    if term is None and last is None and waiting not in FETCH_WAITING_ERRORS:
        return None
    return (
        int(st.get("restartCount", 0) or 0),
        None if term is None else int(term.get("exitCode", 1)),
        None if last is None else int(last.get("exitCode", 1)),
        waiting if waiting in FETCH_WAITING_ERRORS else "",
    )


def fetch_observation(isvc: InferenceService, pods: list[dict[str, Any]]) -> tuple[ModelStatus | None, FetchFailure | None]:
    """What the replicas' init containers report: the digest of the newest successful fetch (or pvc digest),
    and a failure (the newest pod whose init container last terminated non-zero, or cannot start) when no pod
    reported one."""
    source = ModelStatus.source_of(isvc.spec.model.repository)
    if source is None:
        return None, None
    newest = sorted(pods, key=lambda p: str(p["metadata"].get("creationTimestamp") or ""), reverse=True)
    digest: ModelStatus | None = None
    failure: FetchFailure | None = None
    for pod in newest:
        st = _init_status(pod)
        if st is None:
            continue
        name = str(pod["metadata"]["name"])
        term = (st.get("state") or {}).get("terminated")
        if term is not None and int(term.get("exitCode", 1)) == 0:
            found = parse_termination(str(term.get("message") or ""))
            if found is not None and digest is None:
                digest = found.model_copy(update=source)
            continue
        if failure is not None:
            continue
        last = term or (st.get("lastState") or {}).get("terminated")
        waiting = (st.get("state") or {}).get("waiting") or {}
        if last is not None and int(last.get("exitCode", 0)) != 0:
            msg = str(last.get("message") or last.get("reason") or "").strip().splitlines()
            failure = FetchFailure(name, (msg[-1] if msg else f"exit code {last.get('exitCode')}")[:900], int(last["exitCode"]))
        elif waiting.get("reason") in FETCH_WAITING_ERRORS:
            failure = FetchFailure(name, f"{waiting['reason']}: {waiting.get('message', '')}"[:900], 0)
    if digest is not None:
        return digest, None
    return None, failure
