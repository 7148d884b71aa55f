"""Pods run from their images: a user's numpy model loads in the Triton image, the security context holds for
real, Triton pods are admitted where ``restricted`` is enforced, pod template overlays are validated, and an
OCI archive pushed to a registry runs."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from e2e.helpers import http_in_cluster, pod_log
from foresail.api.objects import condition, is_condition_true, pod_is_live, pod_is_ready
from hack import tools
from hack.base.kube import Kube
from hack.base.paths import REPO
from hack.base.wait import wait_for
from hack.images.build import ensure as build_images
from hack.images.oci import write_archive
from hack.testbed.cluster import Cluster
from hack.testbed.manifests import TRITON_IMAGE, service, triton_deployment
from hack.testbed.runtime.images import FORESAIL_IMAGE
from hack.testbed.runtime.sandbox import Sandbox

USER_MODEL = '''import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        out = []
        for r in requests:
            x = pb_utils.get_input_tensor_by_name(r, "X").as_numpy()
            out.append(pb_utils.InferenceResponse([pb_utils.Tensor("Y", np.cumsum(x, axis=1).astype(np.float32))]))
        return out
'''
USER_CONFIG = """name: "cumsum"
backend: "python"
max_batch_size: 8
input [{ name: "X", data_type: TYPE_FP32, dims: [4] }]
output [{ name: "Y", data_type: TYPE_FP32, dims: [4] }]
"""


def _pod(name: str, image: str, command: list[str], **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": image, "command": command, **spec.pop("container", {})}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [container], **spec},
    }


def _finished(kube: Kube, ns: str, name: str) -> dict[str, Any] | None:
    p: dict[str, Any] = kube.get("pod", "-n", ns, name)
    return p if p["status"].get("phase") in ("Succeeded", "Failed") else None


def test_a_users_numpy_model_loads_from_a_configmap(kube: Kube, cluster: Cluster, namespace: str) -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "user-models"},
          "data": {"cumsum__config.pbtxt": USER_CONFIG, "cumsum__1__model.py": USER_MODEL}}  # fmt: skip
    kube.apply([cm, triton_deployment("user", "cumsum", cm, gpus=0), service("user")], namespace)

    def ready() -> dict[str, Any] | None:
        pods = [p for p in kube.pods(namespace, "app=user") if pod_is_live(p)]
        return pods[0] if pods and pod_is_ready(pods[0]) else None

    pod = wait_for("the user's Triton pod Ready", ready, timeout=240)
    assert pod["spec"]["containers"][0]["image"] == TRITON_IMAGE
    assert pod["status"]["containerStatuses"][0]["imageID"].startswith("nvcr.io/nvidia/tritonserver@sha256:")
    body = json.dumps({"inputs": [{"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]})
    req = ["curl", "-sf", "-m", "30", "-X", "POST", f"http://{pod['status']['podIP']}:8000/v2/models/cumsum/infer", "-d", body]
    out = subprocess.run(cluster.exec_cmd(req), capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["outputs"][0]["data"] == [1.0, 3.0, 6.0, 10.0]


CHECK = """
import json, os, shutil
status = dict(l.split(':', 1) for l in open('/proc/self/status').read().splitlines() if ':' in l)
try:
    open('/root-write-test', 'w'); rootfs = 'writable'
except OSError as e:
    rootfs = e.strerror
open('/scratch/x', 'w').write('ok')
limit = '/sys/fs/cgroup/memory/memory.limit_in_bytes'
print(json.dumps({
    'uid': os.getuid(), 'gid': os.getgid(), 'groups': sorted(os.getgroups()),
    'cap_eff': status['CapEff'].strip(), 'cap_bnd': status['CapBnd'].strip(), 'no_new_privs': status['NoNewPrivs'].strip(),
    'rootfs': rootfs, 'shm_bytes': shutil.disk_usage('/dev/shm').total, 'scratch_gid': os.stat('/scratch/x').st_gid,
    'memory_limit': int(open(limit).read()) if os.path.exists(limit) else None, 'hostname': os.uname().nodename,
}))
"""


def test_the_security_context_volumes_and_limits_hold(kube: Kube, cluster: Cluster, namespace: str) -> None:
    pod = _pod(
        "checks", f"{FORESAIL_IMAGE}:0.1.0", ["python", "-c", CHECK],
        securityContext={"runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000, "runAsNonRoot": True},
        volumes=[{"name": "shm", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}, {"name": "scratch", "emptyDir": {}}],
        container={
            "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            "volumeMounts": [{"name": "shm", "mountPath": "/dev/shm"}, {"name": "scratch", "mountPath": "/scratch"}],
            "resources": {"limits": {"memory": "256Mi"}},
        },
    )  # fmt: skip
    kube.create(pod, namespace)
    done = wait_for("the check pod finished", lambda: _finished(kube, namespace, "checks"), timeout=180)
    log = pod_log(cluster, namespace, "checks")
    assert done["status"]["phase"] == "Succeeded", log
    got = json.loads(log.strip().splitlines()[-1])
    assert (got["uid"], got["gid"]) == (1000, 3000) and 2000 in got["groups"], got
    assert got["cap_eff"] == got["cap_bnd"] == "0000000000000000" and got["no_new_privs"] == "1", got
    assert got["rootfs"] == "Read-only file system", got
    assert got["shm_bytes"] == 64 * 2**20, "/dev/shm is the emptyDir of medium Memory, sized by its sizeLimit"
    assert got["scratch_gid"] == 2000, "volumes belong to the fsGroup"
    assert got["hostname"] == "checks"
    if got["memory_limit"] is not None:  # where the host lets the runtime create cgroups
        assert got["memory_limit"] == 256 * 2**20


def test_run_as_non_root_refuses_a_root_image(kube: Kube, namespace: str) -> None:
    kube.create(_pod("rooted", TRITON_IMAGE, ["tritonserver"], securityContext={"runAsNonRoot": True}), namespace)

    def refused() -> dict[str, Any] | None:
        st = kube.get("pod", "-n", namespace, "rooted")["status"].get("containerStatuses") or [{}]
        w: dict[str, Any] | None = st[0].get("state", {}).get("waiting")
        return w if w and w.get("reason") == "CreateContainerConfigError" else None

    w = wait_for("CreateContainerConfigError", refused, timeout=120)
    assert "runAsNonRoot and image will run as root" in w["message"]


def _pull_secret(name: str) -> dict[str, Any]:
    auth = base64.b64encode(b"$oauthtoken:not-a-real-key").decode()
    config = base64.b64encode(json.dumps({"auths": {"nvcr.io": {"auth": auth}}}).encode()).decode()
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "kubernetes.io/dockerconfigjson",
            "data": {".dockerconfigjson": config}}  # fmt: skip


def test_triton_pods_are_admitted_where_restricted_is_enforced(operator: Kube, cluster: Cluster, namespace: str) -> None:
    operator.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted",
                     "pod-security.kubernetes.io/enforce-version=latest")  # fmt: skip
    operator.apply([_pull_secret("ngc"), {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "triton"}}], namespace)
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    isvc = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    isvc["spec"]["scaling"]["maxReplicas"] = 1
    isvc["spec"]["triton"].update(
        shmSize="256Mi",
        podTemplate={
            "metadata": {"labels": {"team": "vision"}, "annotations": {"example.com/owner": "vision"}},
            "spec": {
                "serviceAccountName": "triton",
                "imagePullSecrets": [{"name": "ngc"}],
                "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}],
                "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
                                               "labelSelector": {"matchLabels": {"foresail.dev/inferenceservice": "emulated"}}}],
                "containers": [{"name": "triton", "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}],
            },
        },
    )  # fmt: skip
    operator.create(isvc, namespace)

    def warm() -> dict[str, Any] | None:
        pods = [p for p in operator.pods(namespace, "foresail.dev/inferenceservice=emulated") if pod_is_live(p)]
        return next((p for p in pods if pod_is_ready(p) and is_condition_true(p, "foresail.dev/warm")), None)

    pod = wait_for("a warm Triton pod in a namespace enforcing restricted", warm, timeout=300)
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "triton" and spec["imagePullSecrets"] == [{"name": "ngc"}]
    assert pod["metadata"]["labels"]["team"] == "vision" and pod["metadata"]["annotations"]["example.com/owner"] == "vision"
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}} in spec["volumes"]
    pids = subprocess.run(["ip", "netns", "pids", Sandbox(pod["metadata"]["uid"]).netns], capture_output=True, text=True, check=True)
    uids = {Path(f"/proc/{p}/status").read_text().split("Uid:")[1].split()[0] for p in pids.stdout.split()}
    assert uids == {"1000"}, f"Triton and its Python backend run as triton-server (1000): {uids}"
    code, _ = http_in_cluster(cluster, f"http://{pod['status']['podIP']}:8000/v2/models/emulated/ready")
    assert code == 200


def test_bad_pod_templates_are_refused_or_reported(operator: Kube, namespace: str) -> None:
    operator.kubectl("apply", "-n", namespace, "-f", str(REPO / "crds/examples/emulated-model.yaml"))
    base = yaml.safe_load((REPO / "crds/examples/inferenceservice.yaml").read_text())
    bad = json.loads(json.dumps(base))
    bad["spec"]["triton"]["podTemplate"] = {"spec": {"containers": [{"name": "triton", "image": "other:1"}]}}
    out = operator.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(bad), check=False)
    assert out.returncode != 0
    assert "spec.triton.podTemplate.spec.containers[0]" in out.stderr and "come from spec.triton" in out.stderr, out.stderr
    odd = json.loads(json.dumps(base))
    odd["metadata"]["name"] = "odd"
    odd["spec"]["triton"]["podTemplate"] = {"spec": {"tolerations": [{"key": "k", "operator": "Maybe"}]}}
    operator.create(odd, namespace)

    def reported() -> dict[str, Any] | None:
        c = condition(operator.get("fisvc", "-n", namespace, "odd"), "Ready")
        return c if c and c["reason"] == "InvalidPodTemplate" else None

    c = wait_for("Ready=False InvalidPodTemplate", reported, timeout=120)
    assert c["status"] == "False" and "tolerations" in c["message"], c


def test_an_oci_archive_pushed_to_a_registry_runs(kube: Kube, cluster: Cluster, namespace: str, tmp_path: Path) -> None:
    img = build_images(("foresail",))["foresail"]
    archive = tmp_path / "foresail.oci.tar"
    write_archive(img.layout, archive, 0)
    target = f"{cluster.network.registry}/team/foresail:{img.tag}"
    skopeo = tools.TOOLS_BY_NAME["oci"].dir / "bin/skopeo"
    digest = tmp_path / "digest"
    out = subprocess.run(
        [str(skopeo), "copy", "--quiet", "--insecure-policy", "--dest-tls-verify=false", "--digestfile", str(digest),
         f"oci-archive:{archive}:{img.tag}", f"docker://{target}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert digest.read_text().strip() == img.digest, "skopeo copy keeps the digest"
    kube.create(_pod("copied", f"{target}@{img.digest}", ["foresail", "version"]), namespace)
    done = wait_for("the pod of the copied image finished", lambda: _finished(kube, namespace, "copied"), timeout=180)
    assert done["status"]["phase"] == "Succeeded"
    assert done["status"]["containerStatuses"][0]["imageID"] == f"{cluster.network.registry}/team/foresail@{img.digest}"
