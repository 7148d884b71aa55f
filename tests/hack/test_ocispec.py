"""The OCI runtime configuration of a container: command, user, security context, mounts, limits."""

from __future__ import annotations

from typing import Any

import pytest

from hack.testbed.runtime.mounts import Mount
from hack.testbed.runtime.ocispec import (
    ContainerConfigError,
    Identity,
    capabilities,
    command,
    identity,
    quantity,
    resources,
    runtime_spec,
)

PASSWD = {"root": (0, 0, "/root"), "0": (0, 0, "/root"), "foresail": (65532, 65532, "/nonexistent"), "65532": (65532, 65532, "/nonexistent")}


def pod(sc: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ns"}, "spec": {"securityContext": sc or {}, "containers": []}}


@pytest.mark.parametrize(
    ("name", "container", "image", "argv"),
    [
        ("the image's entrypoint and cmd", {}, {"Entrypoint": ["foresail"], "Cmd": ["run"]}, ["foresail", "run"]),
        ("args replace cmd", {"args": ["eval-worker"]}, {"Entrypoint": ["foresail"], "Cmd": ["run"]}, ["foresail", "eval-worker"]),
        ("command replaces both", {"command": ["python", "-c", "1"]}, {"Entrypoint": ["foresail"], "Cmd": ["run"]}, ["python", "-c", "1"]),
        ("no entrypoint: args alone", {"args": ["tritonserver", "--x"]}, {}, ["tritonserver", "--x"]),
    ],
)
def test_command(name: str, container: dict[str, Any], image: dict[str, Any], argv: list[str]) -> None:
    assert command(container, image) == argv, name


@pytest.mark.parametrize(
    ("name", "pod_sc", "container_sc", "image_user", "want"),
    [
        ("the image's numeric user and group", {}, {}, "65532:65532", Identity(65532, 65532, (), "/nonexistent")),
        ("the image's user by name", {}, {}, "foresail", Identity(65532, 65532, (), "/nonexistent")),
        ("runAsUser of the pod, group from passwd", {"runAsUser": 65532}, {}, "", Identity(65532, 65532, (), "/nonexistent")),
        ("the container's settings win", {"runAsUser": 5}, {"runAsUser": 1000, "runAsGroup": 7}, "", Identity(1000, 7, (), "/")),
        ("fsGroup and supplemental groups", {"runAsUser": 1, "fsGroup": 9, "supplementalGroups": [3]}, {}, "", Identity(1, 0, (9, 3), "/")),
        ("root by default", {}, {}, "", Identity(0, 0, (), "/root")),
    ],
)
def test_identity(name: str, pod_sc: dict[str, Any], container_sc: dict[str, Any], image_user: str, want: Identity) -> None:
    assert identity(pod(pod_sc), {"securityContext": container_sc}, {"User": image_user}, PASSWD) == want, name


@pytest.mark.parametrize(
    ("name", "pod_sc", "image_user", "message"),
    [
        ("runAsNonRoot and a root image", {"runAsNonRoot": True}, "", "runAsNonRoot and image will run as root"),
        ("runAsNonRoot and runAsUser 0", {"runAsNonRoot": True, "runAsUser": 0}, "1000", "image will run as root"),
        ("runAsNonRoot and a user name", {"runAsNonRoot": True}, "foresail", r"non-numeric user \(foresail\)"),
        ("a user the image does not have", {}, "nobody2", "unable to find user nobody2"),
    ],
)
def test_identity_refusals(name: str, pod_sc: dict[str, Any], image_user: str, message: str) -> None:
    with pytest.raises(ContainerConfigError, match=message):
        identity(pod(pod_sc), {}, {"User": image_user}, PASSWD)


@pytest.mark.parametrize(
    ("name", "sc", "uid", "bounding", "effective"),
    [
        ("drop ALL", {"capabilities": {"drop": ["ALL"]}}, 1000, [], []),
        ("drop ALL, add one", {"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}, 0, ["CAP_NET_BIND_SERVICE"], ["CAP_NET_BIND_SERVICE"]),
        ("a non-root process keeps only the bounding set", {"capabilities": {"drop": ["NET_RAW"]}}, 1000, None, []),
    ],
)
def test_capabilities(name: str, sc: dict[str, Any], uid: int, bounding: list[str] | None, effective: list[str]) -> None:
    caps = capabilities({"securityContext": sc}, uid)
    if bounding is not None:
        assert caps["bounding"] == bounding, name
    else:
        assert "CAP_NET_RAW" not in caps["bounding"] and "CAP_CHOWN" in caps["bounding"], name
    assert caps["effective"] == caps["permitted"] == effective, name


@pytest.mark.parametrize(("text", "value"), [("1Gi", 2**30), ("512Mi", 2**29), ("500m", 0.5), ("2", 2.0), ("1e3", 1000.0), ("1G", 1e9)])
def test_quantity(text: str, value: float) -> None:
    assert quantity(text) == value


def test_resources_become_cgroup_limits() -> None:
    out = resources({"resources": {"limits": {"memory": "1Gi", "cpu": "500m"}, "requests": {"cpu": "250m"}}})
    assert out["memory"] == {"limit": 2**30}
    assert out["cpu"] == {"quota": 50_000, "period": 100_000, "shares": 256}


def test_runtime_spec_applies_the_security_context_and_mounts() -> None:
    container = {
        "name": "triton",
        "args": ["tritonserver"],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
    }
    mounts = [Mount("/v/cache", "/models/cache"), Mount("/v/models", "/models", read_only=True), Mount("/v/dshm", "/dev/shm")]
    spec = runtime_spec(
        pod=pod(), container=container, image={"WorkingDir": "/opt/tritonserver"}, who=Identity(1000, 1000, (1000,), "/"),
        env={"A": "1"}, mounts=mounts, rootfs="/r", netns="/run/netns/fsp-1", cgroups_path="foresail/c/pod1/x",
    )  # fmt: skip
    proc = spec["process"]
    assert proc["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [1000]}
    assert proc["noNewPrivileges"] is True and proc["capabilities"]["bounding"] == [] and proc["cwd"] == "/opt/tritonserver"
    assert spec["root"] == {"path": "/r", "readonly": True}
    dests = [m["destination"] for m in spec["mounts"]]
    assert dests.count("/dev/shm") == 1, "the pod's /dev/shm replaces the runtime's"
    assert dests.index("/models") < dests.index("/models/cache"), "parents are mounted before children"
    assert next(m for m in spec["mounts"] if m["destination"] == "/models")["options"][-1] == "ro"
    assert {"type": "network", "path": "/run/netns/fsp-1"} in spec["linux"]["namespaces"]
    assert spec["linux"]["cgroupsPath"] == "foresail/c/pod1/x"
    unlimited = runtime_spec(
        pod=pod(), container={"args": ["x"], "resources": {"limits": {"memory": "1Gi"}}}, image={}, who=Identity(0, 0, (), "/"),
        env={}, mounts=[], rootfs="/r", netns="/n", cgroups_path=None,
    )  # fmt: skip
    assert "memory" not in unlimited["linux"]["resources"] and "cgroupsPath" not in unlimited["linux"]
    assert unlimited["process"]["noNewPrivileges"] is False
