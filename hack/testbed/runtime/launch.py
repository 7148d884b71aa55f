"""Containers from their images, as a kubelet and its container runtime start them: the image pulled by the
container's ``imagePullPolicy`` (with the pod's image pull secrets, through the cluster's registry mirror),
Events ``Pulling``/``Pulled``/``Failed`` like the kubelet's, the user and the checks of the security context,
the environment (the image's, then the pod's), ``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf`` of
the pod, the volumes, then runc. Failures are ``StartError``s carrying the kubelet's waiting reason."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from hack.testbed.runtime.mounts import Mount
from hack.testbed.runtime.ocispec import ContainerConfigError, identity, runtime_spec
from hack.testbed.runtime.pull import PullError, parse_reference
from hack.testbed.runtime.runc import RuncContainer
from hack.testbed.runtime.store import ImageStore, LocalImage

__all__ = ["ImageLauncher", "StartError", "pod_files", "pull_policy"]

Events = Callable[[dict[str, Any], str, str, str], None]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class StartError(Exception):
    """A container that cannot start now: ``reason`` is its waiting reason (ErrImagePull, InvalidImageName,
    ErrImageNeverPull, CreateContainerConfigError); ``retry`` whether a later attempt may succeed."""

    def __init__(self, reason: str, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.reason, self.message, self.retry = reason, message, retry


def pull_policy(container: dict[str, Any]) -> str:
    """``imagePullPolicy``, else the API's default: Always for ``:latest`` or no tag, IfNotPresent otherwise."""
    if container.get("imagePullPolicy"):
        return str(container["imagePullPolicy"])
    image = str(container["image"])
    name = image.split("@", 1)[0]
    tagged = ":" in name.rsplit("/", 1)[-1]
    return "Always" if "@" not in image and (not tagged or name.endswith(":latest")) else "IfNotPresent"


def pod_files(pod_dir: Path, pod: dict[str, Any], ip: str, services: Sequence[tuple[str, str, str]] = ()) -> list[Mount]:
    """The pod's ``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf``. No cluster DNS here: the
    ``services`` (namespace, name, address: headless Services' endpoints) are hosts entries, by their
    names in the cluster domain."""
    etc = pod_dir / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    name = pod["metadata"]["name"]
    ns = pod["metadata"]["namespace"]
    svc_lines = "".join(f"{a}\t{n}.{s}.svc {n}.{s}.svc.cluster.local\n" for s, n, a in services)
    files = {
        "hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{ip}\t{name}\n{svc_lines}",
        "hostname": f"{name}\n",
        "resolv.conf": f"search {ns}.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
    }
    for f, text in files.items():
        (etc / f).write_text(text)
        (etc / f).chmod(0o644)
    return [Mount(str(etc / f), f"/etc/{f}", is_dir=False) for f in files]


def _passwd(rootfs: Path) -> dict[str, tuple[int, int, str]]:
    """The image's users by name and by uid: (uid, gid, home)."""
    out: dict[str, tuple[int, int, str]] = {}
    try:
        lines = (rootfs / "etc/passwd").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        parts = line.split(":")
        if len(parts) >= 6 and parts[2].isdigit() and parts[3].isdigit():
            entry = (int(parts[2]), int(parts[3]), parts[5])
            out.setdefault(parts[0], entry)
            out.setdefault(parts[2], entry)
    return out


class ImageLauncher:
    def __init__(
        self,
        store: ImageStore,
        runc: Path,
        state: Path,
        events: Events,
        secret: Callable[[str, str], dict[str, Any] | None],
    ) -> None:
        self.store, self.runc, self.state, self.events, self.secret = store, runc, state, events, secret

    def pull(self, pod: dict[str, Any], container: dict[str, Any]) -> LocalImage:
        """The container's image, pulled as its policy says, with the kubelet's Events."""
        image, policy = str(container["image"]), pull_policy(container)
        try:
            ref = parse_reference(image)
        except ValueError as e:
            self.events(pod, "InspectFailed", f'Failed to apply default image tag "{image}": {e}', "Warning")
            raise StartError("InvalidImageName", f'Failed to apply default image tag "{image}": {e}', retry=False) from None
        secrets = []
        for s in pod["spec"].get("imagePullSecrets") or []:
            found = self.secret(pod["metadata"]["namespace"], s.get("name", ""))
            if found is None:
                msg = f'Unable to retrieve some image pull secrets ({s.get("name")}); attempting to pull the image may not succeed.'
                self.events(pod, "FailedToRetrieveImagePullSecret", msg, "Warning")
            else:
                secrets.append(found.get("data") or {})
        present = self.store.present(ref) if policy != "Always" else None
        if present is None and policy != "Never":
            self.events(pod, "Pulling", f'Pulling image "{image}"', "Normal")
        try:
            got = self.store.ensure(image, policy, secrets)
        except PullError as e:
            reason = "ErrImageNeverPull" if policy == "Never" else "ErrImagePull"
            if reason == "ErrImagePull":
                self.events(pod, "Failed", f'Failed to pull image "{image}": rpc error: code = {e.code} desc = {e.message}', "Warning")
            self.events(pod, "Failed", f"Error: {reason}", "Warning")
            raise StartError(reason, e.message) from None
        if got.pulled:
            msg = (f'Successfully pulled image "{image}" in {got.seconds:.3f}s ({got.waited:.3f}s including waiting). '
                   f"Image size: {got.image.size} bytes.")  # fmt: skip
        else:
            msg = f'Container image "{image}" already present on machine'
        self.events(pod, "Pulled", msg, "Normal")
        return got.image

    def start(
        self,
        pod: dict[str, Any],
        container: dict[str, Any],
        image: LocalImage,
        env: dict[str, str],
        mounts: list[Mount],
        bundle: Path,
        cid: str,
        netns: str,
        cgroups_path: str | None,
        log: IO[bytes],
    ) -> RuncContainer:
        """Create and start the container (``env``: the Kubernetes-defined variables; ``mounts``: volumes and
        the pod's files)."""
        cfg = image.config
        try:
            who = identity(pod, container, cfg, _passwd(image.rootfs))
            full_env = dict(e.split("=", 1) for e in cfg.get("Env") or [] if "=" in e)
            full_env.setdefault("PATH", DEFAULT_PATH)
            full_env.setdefault("HOME", who.home)
            spec = runtime_spec(
                pod=pod, container=container, image=cfg, who=who, env={**full_env, **env}, mounts=mounts,
                rootfs=str(image.rootfs), netns=netns, cgroups_path=cgroups_path,
            )  # fmt: skip
        except ContainerConfigError as e:
            self.events(pod, "Failed", f"Error: {e}", "Warning")
            raise StartError("CreateContainerConfigError", str(e)) from None
        ctr = RuncContainer(self.runc, self.state, bundle, cid)
        log.write(f"\n--- starting {' '.join(spec['process']['args'])} as {who.uid}:{who.gid} from {image.digest[:19]}\n".encode())
        log.flush()
        ctr.start(image.rootfs, spec, log)
        self.events(pod, "Created", f"Created container {container['name']}", "Normal")
        return ctr

